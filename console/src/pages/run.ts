// A run: its graph with live node states, the selected node's details, what it waits for, its
// controls and its event timeline.

import { ApiError, rpc } from '../api';
import { announce, h, json, show } from '../dom';
import { actionButton, pausePointActions } from '../forms';
import { duration, nodeStatus, pauseReason, runStatus, when } from '../format';
import { drawGraph, type GraphView } from '../graph';
import { debounced, live } from '../live';
import type { Execution, ExecutionEvent, NodeState } from '../types';
import { badge, batchLink, facts, failed, runLink, workflowLink, type Main } from './common';

const FINISHED = new Set(['completed', 'error', 'stopped']);
const HISTORY_PAGES = 10;
// The latest events shown; older ones stay in GetExecutionHistory.
const TIMELINE_SHOWN = 300;

async function getRun(executionId: string): Promise<Execution> {
  const answer = await rpc<{ execution: Execution }>('ExecutionService', 'GetExecution', { executionId, view: 'EXECUTION_VIEW_FULL' });
  return answer.execution;
}

/** The run's events after `afterSequence` (a live page asks only for what it has not seen). */
async function history(executionId: string, afterSequence: string): Promise<ExecutionEvent[]> {
  const events: ExecutionEvent[] = [];
  let pageToken = '';
  for (let page = 0; page < HISTORY_PAGES; page++) {
    const answer = await rpc<{ events?: ExecutionEvent[]; nextPageToken?: string }>('ExecutionService', 'GetExecutionHistory', {
      executionId,
      afterSequence,
      pageSize: 1000,
      pageToken,
    });
    events.push(...(answer.events ?? []));
    pageToken = answer.nextPageToken ?? '';
    if (!pageToken) break;
  }
  return events;
}

function frameText(state: { stack?: Array<{ index?: number; total?: number; parentNodeId?: string }> }): string {
  return (state.stack ?? []).map((frame) => `${frame.parentNodeId} ${(frame.index ?? 0) + 1}/${frame.total ?? '?'}`).join(' › ');
}

function nodeDetails(run: Execution, nodeId: string): HTMLElement {
  const definition = run.definition?.nodes?.find((node) => node.id === nodeId);
  const states = (run.nodes ?? []).filter((state) => state.nodeId === nodeId || state.stack?.[0]?.parentNodeId === nodeId);
  const own = states.find((state) => state.nodeId === nodeId && !state.stack?.length);
  const section = (state: NodeState, heading: string): HTMLElement => {
    const inputs = (state.logs ?? []).filter((log) => log.details && 'input' in log.details).map((log) => log.details?.input);
    return h(
      'section',
      { class: 'node-state', 'aria-label': heading },
      h('h3', {}, heading),
      facts([
        ['Status', badge(nodeStatus(state.status))],
        ['Attempts', String(state.attempts ?? 0)],
        ['Scheduled', when(state.scheduleTime)],
        ['Started', when(state.startTime)],
        ['Ended', when(state.endTime)],
        ['Next attempt', when(state.nextAttemptTime)],
        ['Took', duration(state.startTime, state.endTime)],
      ]),
      inputs.length ? [h('h4', {}, 'Input'), json(inputs[inputs.length - 1])] : null,
      state.output !== undefined ? [h('h4', {}, 'Output'), json(state.output)] : null,
      state.error ? [h('h4', {}, 'Error'), h('p', { class: 'error' }, state.error.message ?? ''), state.error.details ? json(state.error.details) : null] : null,
      state.logs?.length
        ? [
            h('h4', {}, 'Logs'),
            h('ol', { class: 'logs' }, state.logs.map((log) => h('li', {}, when(log.time), ' ', h('span', { class: 'level' }, (log.level ?? '').replace('LOG_LEVEL_', '').toLowerCase()), ' ', log.message ?? '', log.details ? json(log.details) : null))),
          ]
        : null,
    );
  };
  const body = states.filter((state) => state.stack?.length);
  return h(
    'div',
    {},
    h('h2', { id: 'node-heading' }, `Node ${definition?.name || nodeId}`),
    facts([
      ['Id', h('code', {}, nodeId)],
      ['Type', definition?.type ?? own?.type ?? ''],
      ['Breakpoint', definition?.breakpoint ? 'yes' : ''],
    ]),
    definition?.config ? [h('h3', {}, 'Configuration'), json(definition.config)] : null,
    own ? section(own, 'State') : h('p', {}, 'This node has not run.'),
    body.length ? [h('h3', {}, `Loop iterations (${body.length} node runs)`), body.map((state) => section(state, `${state.nodeId} · ${frameText(state)}`))] : null,
  );
}

function timeline(shown: ExecutionEvent[]): HTMLElement {
  return h(
    'ol',
    { class: 'timeline', 'aria-label': 'Events, oldest first' },
    shown.map((event) =>
      h(
        'li',
        { 'data-type': event.type ?? '' },
        when(event.time),
        ' ',
        h('span', { class: 'event-type' }, (event.type ?? '').replace('EVENT_TYPE_', '').toLowerCase().replace(/_/g, ' ')),
        event.nodeId ? [' ', h('code', {}, event.nodeId)] : null,
        event.stack?.length ? ` (${frameText(event)})` : null,
      ),
    ),
  );
}

export async function runPage(main: Main, executionId: string): Promise<void> {
  let run = await getRun(executionId);
  let selected: string | null = null;
  let graph: GraphView | null = null;
  let waitingKey = '';

  const heading = h('h1', {});
  const summary = h('div', { id: 'run-summary' });
  const controls = h('div', { class: 'controls', role: 'group', 'aria-label': 'Run controls' });
  const waiting = h('section', { id: 'waiting', 'aria-labelledby': 'waiting-heading' });
  const graphBox = h('div', { class: 'graph-box' });
  const details = h('aside', { id: 'node-details', 'aria-live': 'polite', 'aria-labelledby': 'node-heading' }, h('p', { class: 'hint' }, 'Select a node (click it, or Tab to it and press Enter) to see its input, output, logs, attempts and error.'));
  const data = h('div', { id: 'run-data' });
  const events = h('div', { id: 'timeline' });

  const select = (nodeId: string): void => {
    selected = nodeId;
    graph?.select(nodeId);
    show(details, nodeDetails(run, nodeId));
  };

  const renderControls = (): void => {
    const status = runStatus(run.status);
    const refresh = (): void => void reload();
    const pausedAt = run.pauseReason;
    const toggle = h('input', { type: 'checkbox', id: 'trace-logs', name: 'trace-logs' });
    toggle.checked = Boolean(run.traceLogs);
    toggle.disabled = FINISHED.has(status);
    toggle.addEventListener('change', async () => {
      try {
        await rpc('ExecutionService', 'SetTraceLogs', { executionId, enabled: toggle.checked });
        announce(toggle.checked ? 'Trace logs on' : 'Trace logs off');
      } catch (error) {
        toggle.checked = !toggle.checked;
        announce(error instanceof ApiError ? error.describe() : String(error), 'error');
      }
      refresh();
    });
    show(
      controls,
      !FINISHED.has(status)
        ? actionButton('Stop', async () => {
            await rpc('ExecutionService', 'StopExecution', { executionId, reason: 'stopped from the console' });
            return 'Stopped';
          }, refresh, { confirm: 'Stop this run? Nodes in flight are cancelled; a stopped run cannot go on.', kind: 'danger' })
        : null,
      status === 'running' || status === 'queued'
        ? actionButton('Pause', async () => {
            await rpc('ExecutionService', 'PauseExecution', { executionId, reason: 'paused from the console' });
            return 'Paused';
          }, refresh)
        : null,
      status === 'paused' && pausedAt === 'PAUSE_REASON_MANUAL'
        ? actionButton('Resume', async () => {
            await rpc('ExecutionService', 'ResumeExecution', { executionId });
            return 'Resumed';
          }, refresh, { kind: 'primary' })
        : null,
      status === 'paused' && pausedAt === 'PAUSE_REASON_BREAKPOINT'
        ? [
            actionButton('Continue', async () => {
              await rpc('ExecutionService', 'ControlPause', { executionId, action: 'PAUSE_ACTION_CONTINUE' });
              return 'Continued';
            }, refresh, { kind: 'primary' }),
            actionButton('Skip node', async () => {
              await rpc('ExecutionService', 'ControlPause', { executionId, action: 'PAUSE_ACTION_SKIP' });
              return 'Skipped the paused node';
            }, refresh),
            actionButton('Continue without breakpoints', async () => {
              await rpc('ExecutionService', 'ControlPause', { executionId, action: 'PAUSE_ACTION_CONTINUE_WITHOUT_BREAKPOINT' });
              return 'Continued; no further breakpoint stops this run';
            }, refresh),
          ]
        : null,
      h('span', { class: 'toggle' }, toggle, h('label', { for: 'trace-logs' }, 'Trace logs')),
    );
  };

  const renderWaiting = (): void => {
    const open = (run.pausePoints ?? []).filter((point) => point.resumeStatus === 'RESUME_STATUS_PAUSED');
    const key = open.map((point) => point.contextId).join(',');
    if (key === waitingKey) return; // keep what a person is typing
    waitingKey = key;
    if (!open.length) {
      show(waiting);
      return;
    }
    show(
      waiting,
      h('h2', { id: 'waiting-heading' }, 'Waiting'),
      open.map((point) =>
        h(
          'article',
          { class: 'pause-point', 'data-context-id': point.contextId },
          h('h3', {}, point.response?.displayData?.title || `Paused at a ${pauseReason(point.reason)}`),
          point.response?.displayData?.message ? h('p', { class: 'message' }, point.response.displayData.message) : null,
          facts([
            ['Node', point.nodeId ? h('code', {}, point.nodeId) : ''],
            ['Since', when(point.createTime)],
            ['Deadline', when(point.expireTime)],
          ]),
          pausePointActions({ ...point, executionId }, () => void reload()),
        ),
      ),
    );
  };

  const render = (): void => {
    const status = runStatus(run.status);
    document.title = `${run.workflowName || 'Run'} ${status} · runctl`;
    heading.textContent = `${run.workflowName || run.workflowPath || 'Run'} `;
    heading.appendChild(badge(status));
    document.body.dataset.runStatus = status;
    show(
      summary,
      facts([
        ['Run', runLink(run.id)],
        ['Workflow', workflowLink(run.workflowId, run.workflowName ? `${run.workflowName} v${run.workflowVersion ?? ''}` : undefined)],
        ['Batch', batchLink(run.batchId)],
        ['Created', when(run.createTime)],
        ['Started', when(run.startTime)],
        ['Ended', when(run.endTime)],
        ['Took', duration(run.startTime, run.endTime)],
        ['Paused at', run.pausedNodeId ? `${run.pausedNodeId} (${pauseReason(run.pauseReason)})` : ''],
        ['Error', run.error?.message ? h('span', { class: 'error' }, run.error.message) : ''],
      ]),
    );
    renderControls();
    renderWaiting();
    const focused = (document.activeElement as Element | null)?.getAttribute('data-node-id');
    graph = drawGraph(run.definition ?? {}, run.nodes ?? [], run.edges ?? [], select);
    show(graphBox, graph.element);
    if (selected) select(selected);
    if (focused) graphBox.querySelector<SVGGElement>(`[data-node-id="${CSS.escape(focused)}"]`)?.focus();
    show(data, h('h2', {}, 'Input'), json(run.input ?? {}), run.output !== undefined ? [h('h2', {}, 'Output'), json(run.output)] : null);
  };

  const seen: ExecutionEvent[] = [];
  const renderTimeline = async (): Promise<void> => {
    const last = seen.length ? (seen[seen.length - 1].sequence ?? '0') : '0';
    const fresh = await history(executionId, last);
    if (seen.length && !fresh.length) return;
    seen.push(...fresh);
    seen.splice(0, Math.max(0, seen.length - TIMELINE_SHOWN));
    show(events, h('h2', {}, 'Timeline'), timeline(seen));
  };

  const reload = async (): Promise<void> => {
    try {
      run = await getRun(executionId);
      render();
      await renderTimeline();
    } catch (error) {
      failed(main, error);
    }
  };

  show(
    main,
    heading,
    summary,
    controls,
    waiting,
    h('div', { class: 'run-body' }, h('section', { class: 'graph-section', 'aria-label': 'Graph' }, graphBox), details),
    data,
    events,
  );
  render();
  await renderTimeline();

  const later = debounced(reload, 200);
  const socket = live({
    execution: (update) => update.executionId === executionId && later(),
    node: (update) => {
      if (update.executionId !== executionId) return;
      graph?.setStatus(update.nodeId, update.status, update.stack);
      later();
    },
    reconnected: later,
  });
  socket.on('connect', () => socket.emit('subscribe', { executionId }));
}
