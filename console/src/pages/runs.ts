// Runs: newest first, filtered by status, workflow, batch and creation time, paged, kept current
// by the live stream. The filters live in the address, so a filtered list can be bookmarked.

import { ApiError, rpc } from '../api';
import { h, show } from '../dom';
import { debounced, live } from '../live';
import type { Execution, Workflow } from '../types';
import { failed, runsTable, type Main } from './common';

const STATUSES = ['queued', 'running', 'paused', 'completed', 'error', 'stopped'];
const PAGE_SIZE = 25;

interface ListAnswer {
  executions?: Execution[];
  nextPageToken?: string;
  totalSize?: number;
}

interface Filters {
  status: string;
  workflow: string;
  batch: string;
  after: string;
  before: string;
}

function readFilters(): Filters {
  const query = new URLSearchParams(location.search);
  return {
    status: query.get('status') ?? '',
    workflow: query.get('workflow') ?? '',
    batch: query.get('batch') ?? '',
    after: query.get('after') ?? '',
    before: query.get('before') ?? '',
  };
}

function writeFilters(filters: Filters): void {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(filters)) if (value) query.set(name, value);
  const search = query.toString();
  history.replaceState(null, '', search ? `/?${search}` : '/');
}

/** A datetime-local value (the browser's local time) as RFC 3339. */
function instant(local: string): string | undefined {
  const time = Date.parse(local);
  return Number.isNaN(time) ? undefined : new Date(time).toISOString();
}

function select(id: string, labelText: string, options: Array<[string, string]>, value: string): [HTMLLabelElement, HTMLSelectElement] {
  const control = h('select', { id, name: id }, options.map(([optionValue, text]) => h('option', { value: optionValue }, text)));
  control.value = value;
  return [h('label', { for: id }, labelText), control];
}

export async function runsPage(main: Main): Promise<void> {
  let filters = readFilters();
  const tokens: string[] = ['']; // the token of each page shown so far; the last is the current one
  const workflows = await rpc<{ workflows?: Workflow[] }>('WorkflowService', 'ListWorkflows', { pageSize: 1000 });

  const [statusLabel, status] = select('filter-status', 'Status', [['', 'Any status'], ...STATUSES.map((word): [string, string] => [word, word])], filters.status);
  const [workflowLabel, workflow] = select(
    'filter-workflow',
    'Workflow',
    [['', 'Any workflow'], ...(workflows.workflows ?? []).map((item): [string, string] => [item.id, item.name || item.id])],
    filters.workflow,
  );
  const batch = h('input', { id: 'filter-batch', name: 'filter-batch', type: 'text', placeholder: 'batch id', value: filters.batch });
  const after = h('input', { id: 'filter-after', name: 'filter-after', type: 'datetime-local', step: 1, value: filters.after });
  const before = h('input', { id: 'filter-before', name: 'filter-before', type: 'datetime-local', step: 1, value: filters.before });
  const summary = h('p', { class: 'summary', role: 'status', 'aria-live': 'polite' });
  const results = h('div', { id: 'runs-results' });
  const newer = h('button', { type: 'button' }, '← Newer');
  const older = h('button', { type: 'button' }, 'Older →');

  const load = async (): Promise<void> => {
    const request: Record<string, unknown> = { pageSize: PAGE_SIZE, pageToken: tokens[tokens.length - 1] };
    if (filters.status) request.statuses = [`EXECUTION_STATUS_${filters.status.toUpperCase()}`];
    if (filters.workflow) request.workflowId = filters.workflow;
    if (filters.batch) request.batchId = filters.batch;
    if (filters.after) request.createTimeAfter = instant(filters.after);
    if (filters.before) request.createTimeBefore = instant(filters.before);
    try {
      const answer = await rpc<ListAnswer>('ExecutionService', 'ListExecutions', request);
      const total = answer.totalSize ?? 0;
      const first = (tokens.length - 1) * PAGE_SIZE;
      const shown = answer.executions?.length ?? 0;
      summary.textContent = total ? `Runs ${first + 1}–${first + shown} of ${total}` : 'No runs match.';
      show(results, runsTable(answer.executions ?? [], 'Runs, newest first'));
      newer.disabled = tokens.length <= 1;
      older.disabled = !answer.nextPageToken;
      older.dataset.token = answer.nextPageToken ?? '';
    } catch (error) {
      // A refused key replaces the page; anything else leaves the last good list in place.
      if (error instanceof ApiError && error.status !== 401) summary.textContent = error.describe();
      else failed(main, error);
    }
  };

  const form = h(
    'form',
    {
      class: 'filters',
      'aria-label': 'Filter runs',
      onsubmit: (event: Event) => {
        event.preventDefault();
        filters = { status: status.value, workflow: workflow.value, batch: batch.value.trim(), after: after.value, before: before.value };
        writeFilters(filters);
        tokens.splice(1);
        void load();
      },
    },
    h('div', { class: 'field' }, statusLabel, status),
    h('div', { class: 'field' }, workflowLabel, workflow),
    h('div', { class: 'field' }, h('label', { for: 'filter-batch' }, 'Batch'), batch),
    h('div', { class: 'field' }, h('label', { for: 'filter-after' }, 'Created from'), after),
    h('div', { class: 'field' }, h('label', { for: 'filter-before' }, 'Created before'), before),
    h('div', { class: 'buttons' }, h('button', { type: 'submit', class: 'primary' }, 'Apply filters'), h('a', { href: '/', class: 'button' }, 'Clear')),
  );
  newer.addEventListener('click', () => {
    tokens.pop();
    void load();
  });
  older.addEventListener('click', () => {
    tokens.push(older.dataset.token ?? '');
    void load();
  });
  document.title = 'Runs · runctl';
  show(main, h('h1', {}, 'Runs'), form, summary, results, h('nav', { class: 'pager', 'aria-label': 'Pages of runs' }, newer, older));
  await load();
  const reload = debounced(load);
  live({ execution: reload, reconnected: reload });
}
