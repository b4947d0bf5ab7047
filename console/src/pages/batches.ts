// Batches: each batch's progress by status, its runs, stop and clear.

import { rpc } from '../api';
import { h, show } from '../dom';
import { actionButton } from '../forms';
import { batchStatus, duration, runStatus, when } from '../format';
import { debounced, live } from '../live';
import type { Batch } from '../types';
import { badge, batchLink, facts, failed, progress, runLink, workflowLink, type Main } from './common';

function stopButton(batch: Batch, done: () => void): HTMLButtonElement | null {
  if (batch.status !== 'BATCH_STATUS_RUNNING') return null;
  const button = actionButton('Stop batch', async () => {
    await rpc('BatchService', 'StopBatch', { batchId: batch.batchId, reason: 'stopped from the console' });
    return `Stopped batch ${batch.batchId}`;
  }, done, { confirm: 'Stop this batch? Its running runs are stopped and its queued runs cancelled.', kind: 'danger' });
  button.setAttribute('aria-label', `Stop batch ${batch.batchId}`);
  return button;
}

export async function batchesPage(main: Main): Promise<void> {
  const list = h('div', { id: 'batches' });
  const load = async (): Promise<void> => {
    try {
      const answer = await rpc<{ batches?: Batch[]; totalSize?: number }>('BatchService', 'ListBatches', { pageSize: 100 });
      const batches = answer.batches ?? [];
      if (!batches.length) {
        show(list, h('p', { class: 'empty' }, 'No batches.'));
        return;
      }
      show(
        list,
        h(
          'table',
          { class: 'batches' },
          h('caption', { class: 'visually-hidden' }, 'Batches, newest first'),
          h('thead', {}, h('tr', {}, ['Batch', 'Status', 'Progress', 'Started', 'Took', ''].map((name) => h('th', { scope: 'col' }, name)))),
          h(
            'tbody',
            {},
            batches.map((batch) =>
              h(
                'tr',
                { 'data-batch-id': batch.batchId, 'data-status': batchStatus(batch.status) },
                h('td', {}, batchLink(batch.batchId)),
                h('td', {}, badge(batchStatus(batch.status))),
                h('td', {}, progress(batch)),
                h('td', {}, when(batch.startTime)),
                h('td', {}, duration(batch.startTime, batch.endTime)),
                h('td', {}, stopButton(batch, reload)),
              ),
            ),
          ),
        ),
      );
    } catch (error) {
      failed(main, error);
    }
  };
  const reload = debounced(load);
  const clear = actionButton('Clear finished batches', async () => {
    const answer = await rpc<{ batchesDeleted?: number; executionsDeleted?: number }>('BatchService', 'ClearBatches', {});
    const counted = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : word.endsWith('h') ? 'es' : 's'}`;
    return `Cleared ${counted(answer.batchesDeleted ?? 0, 'batch')} and ${counted(answer.executionsDeleted ?? 0, 'run')}`;
  }, reload, { confirm: 'Delete every finished batch and its runs? This cannot be undone.' });
  document.title = 'Batches · runctl';
  show(main, h('h1', {}, 'Batches'), h('div', { class: 'controls' }, clear), list);
  await load();
  live({ batch: reload, execution: reload, reconnected: reload });
}

export async function batchPage(main: Main, batchId: string): Promise<void> {
  const body = h('div', {});
  const load = async (): Promise<void> => {
    try {
      const { batch } = await rpc<{ batch: Batch }>('BatchService', 'GetBatch', { batchId });
      const status = batchStatus(batch.status);
      document.title = `Batch ${batchId} ${status} · runctl`;
      document.body.dataset.batchStatus = status;
      const runs = batch.executions ?? [];
      show(
        body,
        h('h1', {}, `Batch ${batchId} `, badge(status)),
        progress(batch),
        facts([
          ['Source', batch.folderPath || (batch.sourceType ?? '').replace('BATCH_SOURCE_TYPE_', '').toLowerCase()],
          ['Concurrency', String(batch.concurrency ?? '')],
          ['Started', when(batch.startTime)],
          ['Ended', when(batch.endTime)],
          ['Took', duration(batch.startTime, batch.endTime)],
        ]),
        h('div', { class: 'controls' }, stopButton(batch, reload)),
        h('h2', {}, `Runs (${runs.length})`),
        h(
          'table',
          { class: 'runs' },
          h('caption', { class: 'visually-hidden' }, 'Runs of this batch'),
          h('thead', {}, h('tr', {}, ['Run', 'Workflow', 'Status', 'At node', 'Error'].map((name) => h('th', { scope: 'col' }, name)))),
          h(
            'tbody',
            {},
            runs.map((item) =>
              h(
                'tr',
                { 'data-execution-id': item.executionId ?? '', 'data-status': runStatus(item.status) },
                h('td', {}, item.executionId ? runLink(item.executionId) : 'not started'),
                h('td', {}, item.workflowFileName || item.workflowPath || workflowLink(item.workflowId)),
                h('td', {}, badge(runStatus(item.status))),
                h('td', {}, item.currentNodeId ? h('code', {}, item.currentNodeId) : ''),
                h('td', { class: 'failure' }, item.error ?? ''),
              ),
            ),
          ),
        ),
      );
    } catch (error) {
      failed(main, error);
    }
  };
  const reload = debounced(load);
  show(main, body);
  await load();
  const socket = live({ batch: reload, execution: reload, reconnected: reload });
  socket.on('connect', () => socket.emit('subscribe', { batchId }));
}
