// The console's one script: picks the page for the address, marks it in the navigation, shows it.

import { failed, type Main } from './pages/common';
import { batchPage, batchesPage } from './pages/batches';
import { inboxPage } from './pages/inbox';
import { runPage } from './pages/run';
import { runsPage } from './pages/runs';
import { workflowPage, workflowsPage } from './pages/workflows';
import { renderSession } from './session';

type Page = (main: Main, id: string) => Promise<void>;

const ROUTES: Array<[RegExp, Page, string]> = [
  [/^\/$/, runsPage, '/'],
  [/^\/runs\/([^/]+)$/, runPage, '/'],
  [/^\/inbox$/, inboxPage, '/inbox'],
  [/^\/batches$/, batchesPage, '/batches'],
  [/^\/batches\/([^/]+)$/, batchPage, '/batches'],
  [/^\/workflows$/, workflowsPage, '/workflows'],
  [/^\/workflows\/([^/]+)$/, workflowPage, '/workflows'],
];

async function start(): Promise<void> {
  renderSession();
  const main = document.getElementById('main') as Main;
  const path = location.pathname;
  for (const [pattern, page, section] of ROUTES) {
    const match = pattern.exec(path);
    if (!match) continue;
    document.querySelector(`nav a[href="${section}"]`)?.setAttribute('aria-current', 'page');
    try {
      await page(main, decodeURIComponent(match[1] ?? ''));
    } catch (error) {
      failed(main, error);
    }
    return;
  }
  failed(main, new Error(`No console page at ${path}`));
}

void start();
