// Words and times as people read them.

/** `EXECUTION_STATUS_RUNNING` -> `running`. */
export function word(value: string | undefined, prefix: string): string {
  if (!value) return '';
  return value.replace(prefix, '').toLowerCase().replace(/_/g, ' ');
}

export const runStatus = (value?: string): string => word(value, 'EXECUTION_STATUS_') || 'unknown';
export const nodeStatus = (value?: string): string => word(value, 'NODE_STATUS_') || 'idle';
export const pauseReason = (value?: string): string => word(value, 'PAUSE_REASON_');
export const batchStatus = (value?: string): string => word(value, 'BATCH_STATUS_') || 'unknown';
export const workflowStatus = (value?: string): string => word(value, 'WORKFLOW_STATUS_') || 'unknown';

const stamp = new Intl.DateTimeFormat(undefined, {
  year: 'numeric',
  month: 'short',
  day: 'numeric',
  hour: '2-digit',
  minute: '2-digit',
  second: '2-digit',
});

/** A <time> with the local time shown and the exact instant in `datetime`. */
export function when(iso: string | undefined): HTMLTimeElement | string {
  if (!iso) return '';
  const time = document.createElement('time');
  time.dateTime = iso;
  time.textContent = stamp.format(new Date(iso));
  time.title = iso;
  return time;
}

export function duration(startIso?: string, endIso?: string): string {
  if (!startIso) return '';
  const end = endIso ? Date.parse(endIso) : Date.now();
  let seconds = Math.max(0, (end - Date.parse(startIso)) / 1000);
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 1 : 0)} s`;
  const hours = Math.floor(seconds / 3600);
  seconds -= hours * 3600;
  const minutes = Math.floor(seconds / 60);
  return hours ? `${hours} h ${minutes} min` : `${minutes} min ${Math.round(seconds - minutes * 60)} s`;
}
