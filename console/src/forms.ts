// What a person can do at a pause point: fill an approval's form and approve or reject, resume a wait
// with JSON data, continue or skip a breakpoint, resume an operator's pause. Shared by the inbox and a
// run's page; `done` is called once the server has committed the answer.

import { ApiError, rpc } from './api';
import { announce, h } from './dom';
import { pauseReason } from './format';
import type { FormField, PausePoint } from './types';

interface ResumeAnswer {
  action?: string;
  reason?: string;
}

function problem(error: unknown): string {
  return error instanceof ApiError ? error.describe() : String(error);
}

async function resume(point: PausePoint, values: Record<string, unknown>): Promise<ResumeAnswer> {
  return rpc<ResumeAnswer>('ExecutionService', 'ResumePausePoint', {
    contextId: point.contextId,
    executionId: point.executionId,
    values,
    actor: 'console',
  });
}

function outcome(answer: ResumeAnswer, what: string): void {
  if (answer.action === 'RESUME_ACTION_SKIPPED') announce(`Nothing changed: ${answer.reason ?? 'already handled'}`, 'error');
  else announce(what);
}

function fieldInput(point: PausePoint, field: FormField): { row: HTMLElement; read: () => unknown; mark: (text: string) => void } {
  const id = `${point.contextId}-${field.name}`;
  const errorId = `${id}-error`;
  const error = h('p', { class: 'error', id: errorId, hidden: true });
  const hint = field.description ? h('p', { class: 'hint', id: `${id}-hint` }, field.description) : null;
  const described = [hint ? `${id}-hint` : '', errorId].filter(Boolean).join(' ');
  const labelText = `${field.label || field.name}${field.required ? ' (required)' : ''}`;
  let control: HTMLInputElement | HTMLSelectElement;
  let read: () => unknown;
  const initial = field.defaultValue;
  if (field.type === 'FORM_FIELD_TYPE_BOOLEAN') {
    const box = h('input', { type: 'checkbox', id, name: field.name, 'aria-describedby': described });
    box.checked = initial === true;
    control = box;
    read = () => box.checked;
    const row = h('div', { class: 'field check' }, box, h('label', { for: id }, labelText), hint, error);
    return { row, read, mark: markWith(control, error) };
  }
  if (field.type === 'FORM_FIELD_TYPE_SELECT') {
    const select = h('select', { id, name: field.name, 'aria-describedby': described, required: field.required });
    select.appendChild(h('option', { value: '' }, 'Choose…'));
    for (const option of field.options ?? []) select.appendChild(h('option', { value: option }, option));
    select.value = typeof initial === 'string' ? initial : '';
    control = select;
    read = () => (select.value === '' ? null : select.value);
  } else {
    const number = field.type === 'FORM_FIELD_TYPE_NUMBER';
    const input = h('input', {
      id,
      name: field.name,
      type: 'text',
      inputmode: number ? 'decimal' : null,
      'aria-describedby': described,
      required: field.required,
    });
    input.value = initial === undefined || initial === null ? '' : String(initial);
    control = input;
    read = () => {
      const text = input.value.trim();
      if (text === '') return null;
      // A number field sends a number; anything else is sent as typed, for the server to judge.
      if (number) return Number.isFinite(Number(text)) ? Number(text) : text;
      return input.value;
    };
  }
  const row = h('div', { class: 'field' }, h('label', { for: id }, labelText), control, hint, error);
  return { row, read, mark: markWith(control, error) };
}

function markWith(control: HTMLElement, error: HTMLElement): (text: string) => void {
  return (text: string) => {
    error.textContent = text;
    error.hidden = text === '';
    if (text) control.setAttribute('aria-invalid', 'true');
    else control.removeAttribute('aria-invalid');
  };
}

function approvalForm(point: PausePoint, done: () => void): HTMLElement {
  const fields = (point.response?.formFields ?? []).filter((field) => field.name !== 'approved');
  const inputs = fields.map((field) => ({ field, ...fieldInput(point, field) }));
  const summary = h('p', { class: 'error', role: 'alert' });
  const send = async (approved: boolean, buttons: HTMLButtonElement[]): Promise<void> => {
    const values: Record<string, unknown> = { approved };
    for (const { field, read, mark } of inputs) {
      mark('');
      const value = read();
      if (value !== null) values[field.name] = value;
    }
    summary.textContent = '';
    buttons.forEach((button) => (button.disabled = true));
    try {
      outcome(await resume(point, values), approved ? 'Approved' : 'Rejected');
      done();
    } catch (error) {
      summary.textContent = problem(error);
      if (error instanceof ApiError) {
        for (const detail of error.details) {
          const entry = inputs.find(({ field }) => detail.field === `values.${field.name}`);
          entry?.mark(detail.description ?? '');
        }
        inputs.find(({ row }) => row.querySelector('[aria-invalid=true]'))?.row.querySelector<HTMLElement>('input, select')?.focus();
      }
    } finally {
      buttons.forEach((button) => (button.disabled = false));
    }
  };
  const approve = h('button', { type: 'button', class: 'primary' }, 'Approve');
  const reject = h('button', { type: 'button', class: 'danger' }, 'Reject');
  approve.addEventListener('click', () => void send(true, [approve, reject]));
  reject.addEventListener('click', () => void send(false, [approve, reject]));
  return h(
    'form',
    { class: 'pause-form', 'aria-label': `Answer ${point.response?.displayData?.title || 'the approval'}`, onsubmit: (event: Event) => event.preventDefault() },
    inputs.map(({ row }) => row),
    summary,
    h('div', { class: 'buttons' }, approve, reject),
  );
}

function waitForm(point: PausePoint, done: () => void): HTMLElement {
  const id = `${point.contextId}-data`;
  const area = h('textarea', { id, rows: 4, spellcheck: 'false', 'aria-describedby': `${id}-error` });
  area.value = '{}';
  const error = h('p', { class: 'error', id: `${id}-error`, role: 'alert' });
  const button = h('button', { type: 'button', class: 'primary' }, 'Resume with this data');
  button.addEventListener('click', async () => {
    let values: unknown;
    try {
      values = JSON.parse(area.value);
    } catch (parseError) {
      error.textContent = `Not valid JSON: ${(parseError as Error).message}`;
      area.setAttribute('aria-invalid', 'true');
      area.focus();
      return;
    }
    if (values === null || typeof values !== 'object' || Array.isArray(values)) {
      error.textContent = 'The data must be a JSON object, like {"ok": true}.';
      area.setAttribute('aria-invalid', 'true');
      area.focus();
      return;
    }
    error.textContent = '';
    area.removeAttribute('aria-invalid');
    button.disabled = true;
    try {
      outcome(await resume(point, values as Record<string, unknown>), 'Resumed');
      done();
    } catch (failure) {
      error.textContent = problem(failure);
    } finally {
      button.disabled = false;
    }
  });
  return h(
    'form',
    { class: 'pause-form', 'aria-label': 'Resume the waiting node', onsubmit: (event: Event) => event.preventDefault() },
    h('div', { class: 'field' }, h('label', { for: id }, 'Data (a JSON object)'), area, error),
    h('div', { class: 'buttons' }, button),
  );
}

/** A button that calls `task`, says what happened, and calls `done` when it worked. */
export function actionButton(text: string, task: () => Promise<string>, done: () => void, options: { confirm?: string; kind?: string } = {}): HTMLButtonElement {
  const button = h('button', { type: 'button', class: options.kind ?? '' }, text);
  button.addEventListener('click', async () => {
    if (options.confirm && !window.confirm(options.confirm)) return;
    button.disabled = true;
    try {
      announce(await task());
      done();
    } catch (error) {
      announce(problem(error), 'error');
    } finally {
      button.disabled = false;
    }
  });
  return button;
}

export function pausePointActions(point: PausePoint, done: () => void): HTMLElement {
  const executionId = point.executionId;
  switch (point.reason) {
    case 'PAUSE_REASON_APPROVAL':
      return approvalForm(point, done);
    case 'PAUSE_REASON_WAIT':
      return waitForm(point, done);
    case 'PAUSE_REASON_BREAKPOINT':
      return h(
        'div',
        { class: 'buttons' },
        actionButton('Continue', async () => {
          await rpc('ExecutionService', 'ControlPause', { executionId, action: 'PAUSE_ACTION_CONTINUE' });
          return 'Continued';
        }, done, { kind: 'primary' }),
        actionButton('Skip this node', async () => {
          await rpc('ExecutionService', 'ControlPause', { executionId, action: 'PAUSE_ACTION_SKIP' });
          return 'Skipped';
        }, done),
      );
    case 'PAUSE_REASON_MANUAL':
      return h(
        'div',
        { class: 'buttons' },
        actionButton('Resume the run', async () => {
          await rpc('ExecutionService', 'ResumeExecution', { executionId });
          return 'Resumed';
        }, done, { kind: 'primary' }),
      );
    default:
      return h(
        'p',
        {},
        `Paused by a ${pauseReason(point.reason) || 'pause'}: `,
        point.workflowId ? h('a', { href: `/workflows/${encodeURIComponent(point.workflowId)}` }, 'resume its workflow') : 'resume its workflow',
        '.',
      );
  }
}
