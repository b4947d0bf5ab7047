// Inbox: every pause point waiting in the workspace, oldest first, each with what it asks for and the
// means to answer it right here.

import { rpc } from '../api';
import { h, show } from '../dom';
import { pausePointActions } from '../forms';
import { pauseReason, when } from '../format';
import { debounced, live } from '../live';
import type { PausePoint } from '../types';
import { facts, failed, runLink, workflowLink, type Main } from './common';

const MAX_PAGES = 10;

async function waitingPoints(): Promise<PausePoint[]> {
  const points: PausePoint[] = [];
  let pageToken = '';
  for (let page = 0; page < MAX_PAGES; page++) {
    const answer = await rpc<{ pausePoints?: PausePoint[]; nextPageToken?: string }>('PausePointService', 'ListPausePoints', {
      resumeStatuses: ['RESUME_STATUS_PAUSED'],
      pageSize: 1000,
      pageToken,
    });
    points.push(...(answer.pausePoints ?? []));
    pageToken = answer.nextPageToken ?? '';
    if (!pageToken) break;
  }
  // The API answers newest first; the inbox serves whoever has waited longest first.
  return points.sort((a, b) => Date.parse(a.createTime ?? '') - Date.parse(b.createTime ?? ''));
}

function item(point: PausePoint, done: () => void): HTMLElement {
  const display = point.response?.displayData;
  const headingId = `title-${point.contextId}`;
  return h(
    'article',
    { class: 'pause-point', 'data-context-id': point.contextId, 'data-reason': pauseReason(point.reason), 'aria-labelledby': headingId },
    h('h2', { id: headingId }, display?.title || `Paused at a ${pauseReason(point.reason)}`),
    display?.message ? h('p', { class: 'message' }, display.message) : null,
    facts([
      ['Run', point.executionId ? runLink(point.executionId) : ''],
      ['Workflow', workflowLink(point.workflowId)],
      ['Node', point.nodeId ? h('code', {}, point.nodeId) : ''],
      ['Kind', pauseReason(point.reason)],
      ['Waiting since', when(point.createTime)],
      ['Deadline', when(point.expireTime)],
    ]),
    pausePointActions(point, done),
  );
}

export async function inboxPage(main: Main): Promise<void> {
  const count = h('p', { class: 'summary', role: 'status', 'aria-live': 'polite' });
  const list = h('div', { class: 'inbox' });
  let shownKey: string | null = null;

  const load = async (): Promise<void> => {
    try {
      const points = await waitingPoints();
      count.textContent = points.length === 1 ? '1 pause point is waiting.' : `${points.length} pause points are waiting.`;
      document.title = `Inbox (${points.length}) · runctl`;
      const key = points.map((point) => point.contextId).join(',');
      if (key === shownKey) return; // nothing came or went: keep what a person is typing
      shownKey = key;
      // Items still waiting keep their element (and whatever was typed in it).
      const kept = new Map([...list.querySelectorAll<HTMLElement>('article[data-context-id]')].map((element) => [element.dataset.contextId, element]));
      show(list, points.map((point) => kept.get(point.contextId) ?? item(point, reload)));
      if (!points.length) show(list, h('p', { class: 'empty' }, 'Nothing is waiting.'));
    } catch (error) {
      failed(main, error);
    }
  };
  const reload = debounced(load);

  show(main, h('h1', {}, 'Inbox'), count, list);
  await load();
  live({ execution: reload, reconnected: reload });
}
