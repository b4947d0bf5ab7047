// Pieces every page uses: status badges, fact lists, the runs table, progress bars, page errors.

import { ApiError } from '../api';
import { h, show } from '../dom';
import { duration, runStatus, when } from '../format';
import { askForKey } from '../session';
import type { Batch, Execution } from '../types';

export type Main = HTMLElement;

export function badge(status: string): HTMLElement {
  return h('span', { class: 'badge', 'data-status': status }, status);
}

export function facts(rows: Array<[string, Node | string | null | undefined | false]>): HTMLDListElement {
  const list = h('dl', { class: 'facts' });
  for (const [name, value] of rows) {
    if (value === null || value === undefined || value === false || value === '') continue;
    list.append(h('dt', {}, name), h('dd', {}, value));
  }
  return list;
}

export function runLink(id: string): HTMLAnchorElement {
  return h('a', { href: `/runs/${encodeURIComponent(id)}` }, h('code', {}, id));
}

export function workflowLink(id: string | undefined, name?: string): HTMLAnchorElement | string {
  if (!id) return name ?? '';
  return h('a', { href: `/workflows/${encodeURIComponent(id)}` }, name || id);
}

export function batchLink(id: string | undefined): HTMLAnchorElement | string {
  return id ? h('a', { href: `/batches/${encodeURIComponent(id)}` }, h('code', {}, id)) : '';
}

export function runsTable(executions: Execution[], caption: string): HTMLElement {
  if (!executions.length) return h('p', { class: 'empty' }, 'No runs.');
  return h(
    'table',
    { class: 'runs' },
    h('caption', { class: 'visually-hidden' }, caption),
    h('thead', {}, h('tr', {}, ['Run', 'Workflow', 'Status', 'Created', 'Took', 'Nodes done'].map((name) => h('th', { scope: 'col' }, name)))),
    h(
      'tbody',
      {},
      executions.map((run) => {
        const counts = run.nodeCounts ?? {};
        return h(
          'tr',
          { 'data-execution-id': run.id, 'data-status': runStatus(run.status) },
          h('td', {}, runLink(run.id)),
          h('td', {}, workflowLink(run.workflowId, run.workflowName || run.workflowPath)),
          h('td', {}, badge(runStatus(run.status))),
          h('td', {}, when(run.createTime)),
          h('td', {}, duration(run.startTime, run.endTime)),
          h('td', {}, counts.total ? `${counts.completed ?? 0} / ${counts.total}` : ''),
        );
      }),
    ),
  );
}

const SEGMENTS: Array<[keyof Batch, string]> = [
  ['completed', 'completed'],
  ['failed', 'error'],
  ['stopped', 'stopped'],
  ['paused', 'paused'],
  ['running', 'running'],
  ['queued', 'queued'],
];

/** A batch's runs by status as one bar; the numbers are in its label and beside it. */
export function progress(batch: Batch): HTMLElement {
  const total = batch.totalWorkflows ?? 0;
  // `running` counts the paused runs too (both hold a concurrency slot): the bar shows them apart.
  const count = (field: keyof Batch): number =>
    Number(batch[field] ?? 0) - (field === 'running' ? Number(batch.paused ?? 0) : 0);
  const parts = SEGMENTS.map(([field, status]) => [status, count(field)] as const).filter(([, n]) => n > 0);
  const text = `${parts.map(([status, count]) => `${count} ${status}`).join(', ') || 'nothing yet'} of ${total}`;
  const bar = h('div', { class: 'progress', role: 'img', 'aria-label': text });
  for (const [status, count] of parts) {
    const segment = h('span', { class: 'segment', 'data-status': status, title: `${count} ${status}` });
    // CSSOM, not a style attribute: the page's policy allows no inline style.
    segment.style.width = `${total ? (100 * count) / total : 0}%`;
    bar.appendChild(segment);
  }
  const done = (batch.completed ?? 0) + (batch.failed ?? 0) + (batch.stopped ?? 0);
  const wrapper = h('div', { class: 'progress-row', 'data-done': done, 'data-total': total }, bar, h('span', { class: 'progress-text' }, text));
  return wrapper;
}

/** Shows why a page could not load: a key to enter, a missing object, or the server's message. */
export function failed(main: Main, error: unknown): void {
  if (error instanceof ApiError && error.status === 401) {
    askForKey(main, error.message);
    return;
  }
  const title = error instanceof ApiError && error.status === 404 ? 'Not found' : 'Something went wrong';
  const message = error instanceof ApiError ? error.describe() : String(error);
  show(main, h('h1', {}, title), h('p', { class: 'error', role: 'alert' }, message));
}
