// Workflows: the list, and one workflow's graph, runs and controls (pause, resume, cancel, rotate
// its webhook secret: the new secret is shown once, here, and never again).

import { rpc } from '../api';
import { h, show } from '../dom';
import { actionButton } from '../forms';
import { when, workflowStatus } from '../format';
import { drawGraph } from '../graph';
import { debounced, live } from '../live';
import type { Execution, Workflow } from '../types';
import { badge, facts, failed, runsTable, workflowLink, type Main } from './common';

export async function workflowsPage(main: Main): Promise<void> {
  const answer = await rpc<{ workflows?: Workflow[] }>('WorkflowService', 'ListWorkflows', { pageSize: 1000 });
  const workflows = answer.workflows ?? [];
  document.title = 'Workflows · runctl';
  show(
    main,
    h('h1', {}, 'Workflows'),
    workflows.length
      ? h(
          'table',
          { class: 'workflows' },
          h('caption', { class: 'visually-hidden' }, 'Workflows'),
          h('thead', {}, h('tr', {}, ['Workflow', 'Id', 'Status', 'Version', 'Updated'].map((name) => h('th', { scope: 'col' }, name)))),
          h(
            'tbody',
            {},
            workflows.map((workflow) =>
              h(
                'tr',
                { 'data-workflow-id': workflow.id },
                h('td', {}, workflowLink(workflow.id, workflow.name)),
                h('td', {}, h('code', {}, workflow.id)),
                h('td', {}, badge(workflowStatus(workflow.status))),
                h('td', {}, String(workflow.version ?? '')),
                h('td', {}, when(workflow.updateTime)),
              ),
            ),
          ),
        )
      : h('p', { class: 'empty' }, 'No workflows yet. Create one with runctl or POST /v1/workflows.'),
  );
}

export async function workflowPage(main: Main, workflowId: string): Promise<void> {
  const header = h('div', {});
  const controls = h('div', { class: 'controls', role: 'group', 'aria-label': 'Workflow controls' });
  const secret = h('div', { id: 'secret' });
  const graphBox = h('div', { class: 'graph-box' });
  const runs = h('div', {});
  let drawn = false;
  let controlsFor = '';

  const rotate = (): HTMLElement => {
    const id = 'overlap-seconds';
    const overlap = h('input', { id, name: id, type: 'number', min: 0, max: 2592000, step: 1, inputmode: 'numeric', 'aria-describedby': `${id}-hint` });
    const button = actionButton('Rotate webhook secret', async () => {
      const request: Record<string, unknown> = { workflowId };
      if (overlap.value !== '') request.overlap = `${Number(overlap.value)}s`;
      const answer = await rpc<{ workflow: Workflow; previousSecretExpireTime?: string }>('WorkflowService', 'RotateWebhookSecret', request);
      show(
        secret,
        h(
          'div',
          { class: 'secret', role: 'region', 'aria-label': 'New webhook secret' },
          h('h2', {}, 'New webhook secret'),
          h('p', {}, 'Copy it now: it is shown only this once.'),
          h('output', { id: 'new-secret', class: 'secret-value' }, answer.workflow.webhookSecret ?? ''),
          h('p', {}, answer.previousSecretExpireTime ? ['The previous secret keeps working until ', when(answer.previousSecretExpireTime), '.'] : 'The previous secret no longer works.'),
        ),
      );
      return 'Webhook secret rotated; the new secret is shown once below the controls';
    }, () => undefined, { confirm: 'Make a new webhook secret for this workflow?' });
    return h(
      'div',
      { class: 'rotate' },
      h('label', { for: id }, 'Old secret keeps working for (seconds)'),
      overlap,
      h('span', { class: 'hint', id: `${id}-hint` }, 'Empty: the server default (24 hours).'),
      button,
    );
  };

  const renderRuns = (list: { executions?: Execution[]; totalSize?: number }): void => {
    show(
      runs,
      h('h2', {}, `Runs (${list.totalSize ?? 0})`),
      runsTable(list.executions ?? [], 'Runs of this workflow, newest first'),
      h('p', {}, h('a', { href: `/?workflow=${encodeURIComponent(workflowId)}` }, 'All runs of this workflow')),
    );
  };

  const load = async (): Promise<void> => {
    try {
      const [{ workflow }, list] = await Promise.all([
        rpc<{ workflow: Workflow }>('WorkflowService', 'GetWorkflow', { workflowId, view: 'WORKFLOW_VIEW_FULL' }),
        rpc<{ executions?: Execution[]; totalSize?: number }>('ExecutionService', 'ListExecutions', { workflowId, pageSize: 25 }),
      ]);
      const status = workflowStatus(workflow.status);
      document.title = `${workflow.name || workflowId} · runctl`;
      document.body.dataset.workflowStatus = status;
      show(
        header,
        h('h1', {}, `${workflow.name || workflowId} `, badge(status)),
        workflow.description ? h('p', {}, workflow.description) : null,
        facts([
          ['Id', h('code', {}, workflow.id)],
          ['Version', String(workflow.version ?? '')],
          ['Created', when(workflow.createTime)],
          ['Updated', when(workflow.updateTime)],
          ['Paused', when(workflow.pauseTime)],
        ]),
      );
      const refresh = (): void => void load();
      // Rebuilt only when the status changes, so a live update never clears what is being typed.
      if (controlsFor !== status) controlsFor = status;
      else return renderRuns(list);
      show(
        controls,
        status === 'active'
          ? actionButton('Pause workflow', async () => {
              await rpc('WorkflowService', 'PauseWorkflow', { workflowId, reason: 'paused from the console' });
              return 'Workflow paused: no new node starts in any of its runs';
            }, refresh)
          : null,
        status === 'paused'
          ? actionButton('Resume workflow', async () => {
              await rpc('WorkflowService', 'ResumeWorkflow', { workflowId });
              return 'Workflow resumed';
            }, refresh, { kind: 'primary' })
          : null,
        status !== 'cancelled'
          ? actionButton('Cancel workflow', async () => {
              await rpc('WorkflowService', 'CancelWorkflow', { workflowId, reason: 'cancelled from the console' });
              return 'Workflow cancelled: its runs are stopped and new starts refused';
            }, refresh, { confirm: 'Cancel this workflow for good? Its runs stop and new runs are refused.', kind: 'danger' })
          : null,
        rotate(),
      );
      if (!drawn) {
        show(graphBox, drawGraph(workflow.definition ?? {}, [], [], null).element);
        drawn = true;
      }
      renderRuns(list);
    } catch (error) {
      failed(main, error);
    }
  };
  show(main, header, controls, secret, h('section', { class: 'graph-section', 'aria-label': 'Graph' }, graphBox), runs);
  await load();
  const reload = debounced(load);
  live({ execution: reload, reconnected: reload });
}
