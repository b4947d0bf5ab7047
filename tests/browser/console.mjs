// Drives the operator console in Debian's headless Chromium, as an operator would, for
// tests/test_console.py: `node console.mjs <scenario> '<json arguments>'`. Prints what it saw as one
// JSON object on stdout and exits non-zero (the reason on stderr) when a step fails. Every wait is for
// a state the page reaches (an attribute, a text), never a fixed sleep.
//
// Arguments every scenario takes: base (the server's HTTP URL), key (an API key), shots (a folder for
// screenshots). Each scenario's own are described beside it.
import { chromium } from 'playwright-core';

const [scenario, rawArgs] = process.argv.slice(2);
const args = JSON.parse(rawArgs ?? '{}');

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  timeout: 30000,
});
const context = await browser.newContext({ viewport: { width: 1360, height: 900 }, reducedMotion: 'reduce' });
const page = await context.newPage();
// Generous: two cores are shared with other test runs. Nothing waits this long when things work.
page.setDefaultTimeout(20000);
const report = { problems: [], unlabelled: [], visited: [] };

// Script errors, and anything the Content-Security-Policy refused. A refused fetch is not a script
// error: the console shows the answer (401 before the key is entered, 404 for a missing run).
await page.addInitScript(() => {
  document.addEventListener('securitypolicyviolation', (event) => {
    console.error(`CSP refused ${event.violatedDirective}: ${event.blockedURI}`);
  });
});
page.on('pageerror', (error) => report.problems.push(`${page.url()}: uncaught ${error.message}`));
page.on('console', (message) => {
  if (message.type() === 'error' && !/Failed to load resource/.test(message.text())) {
    report.problems.push(`${page.url()}: ${message.text()}`);
  }
});
page.on('dialog', (dialog) => dialog.accept());

async function shot(name) {
  if (args.shots) await page.screenshot({ path: `${args.shots}/${name}.png`, fullPage: true });
}

/** Controls without an accessible name: inputs without a label, buttons without text. */
async function unlabelled() {
  return page.evaluate(() => {
    const named = (element) => {
      if (element.getAttribute('aria-label') || element.getAttribute('aria-labelledby')) return true;
      if (['INPUT', 'SELECT', 'TEXTAREA'].includes(element.tagName)) return element.labels.length > 0;
      return element.textContent.trim() !== '';
    };
    return [...document.querySelectorAll('button, input, select, textarea, a[href], [role=button], [tabindex="0"]')]
      .filter((element) => !element.closest('[hidden]') && !named(element))
      .map((element) => element.outerHTML.slice(0, 160));
  });
}

async function visit(path) {
  await page.goto(`${args.base}${path}`);
  await page.locator('main .loading').waitFor({ state: 'detached' });
  report.visited.push(path);
  report.unlabelled.push(...(await unlabelled()).map((html) => `${path}: ${html}`));
}

/** The first visit asks for the key; it is kept in the tab's session storage, never in the URL. */
async function signIn() {
  await page.goto(`${args.base}/`);
  await page.getByLabel('API key').waitFor();
  report.askedForKey = true;
  await page.getByLabel('API key').fill(args.key);
  await page.getByRole('button', { name: 'Use this key' }).click();
  await page.getByRole('heading', { name: 'Runs' }).waitFor();
  report.keyInUrl = page.url().includes(args.key);
}

/** The console API, called from outside the page (another operator, a script). */
async function api(service, method, body) {
  const response = await fetch(`${args.base}/console/api/${service}/${method}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': args.key },
    body: JSON.stringify(body),
  });
  if (!response.ok) throw new Error(`${service}/${method}: ${response.status} ${await response.text()}`);
  return response.json();
}

async function statuses() {
  return page.locator('svg.graph g.node').evaluateAll((nodes) =>
    Object.fromEntries(nodes.map((node) => [node.dataset.nodeId, node.dataset.status])));
}

const node = (id) => page.locator(`svg.graph g.node[data-node-id="${id}"]`);

const scenarios = {
  // A run paused at its first wait node `hold` (args.run): it is resumed from outside the page, and
  // the graph recolours live; the second wait `confirm` is resumed from the page with JSON data.
  async graph() {
    await visit(`/runs/${args.run}`);
    await node('hold').and(page.locator('[data-status=waiting]')).waitFor();
    report.before = await statuses();
    report.laidOut = await node('greet').locator('rect').first().evaluate((rect) => [Number(rect.getAttribute('x')), Number(rect.getAttribute('y'))]);
    await page.evaluate(() => { window.__samePage = true; });
    const [point] = (await api('PausePointService', 'ListPausePoints', { executionId: args.run, resumeStatuses: ['RESUME_STATUS_PAUSED'] })).pausePoints;
    await api('ExecutionService', 'ResumePausePoint', { contextId: point.contextId, values: {} });
    await node('hold').and(page.locator('[data-status=completed]')).waitFor();
    await node('confirm').and(page.locator('[data-status=waiting]')).waitFor();
    report.middle = await statuses();
    await page.getByLabel('Trace logs').check();
    await page.getByRole('status').filter({ hasText: 'Trace logs on' }).waitFor();
    await node('each').locator('rect.iteration[data-status=completed]').nth(2).waitFor();
    report.iterations = await node('each').locator('rect.iteration').evaluateAll((squares) => squares.map((square) => square.dataset.status));
    // The form of the pause point `confirm` waits at (the page shows it once it has read the run).
    const waiting = page.locator('#waiting article.pause-point').filter({ hasText: 'confirm' });
    await waiting.waitFor();
    await shot('run');
    await waiting.getByLabel('Data (a JSON object)').fill('not json');
    await waiting.getByRole('button', { name: 'Resume with this data' }).click();
    report.badJson = (await waiting.locator('.error').first().textContent()).trim();
    await waiting.getByLabel('Data (a JSON object)').fill('{"go": "ahead", "count": 3}');
    await waiting.getByRole('button', { name: 'Resume with this data' }).click();
    await page.locator('body[data-run-status=completed]').waitFor();
    await node('end').and(page.locator('[data-status=completed]')).waitFor();
    report.after = await statuses();
    report.samePage = await page.evaluate(() => window.__samePage === true);
    // Keyboard: Tab goes from the last control to the graph's nodes in order; Enter shows one's details.
    await page.getByLabel('Trace logs').focus();
    for (let step = 0; step < 3; step++) await page.keyboard.press('Tab');
    report.focused = await page.evaluate(() => document.activeElement?.getAttribute('data-node-id'));
    await page.keyboard.press('Enter');
    await page.locator('#node-heading').filter({ hasText: 'greet' }).waitFor();
    report.details = (await page.locator('#node-details').innerText()).replace(/\s+/g, ' ');
    report.timeline = await page.locator('ol.timeline li').evaluateAll((items) => items.map((item) => item.dataset.type));
    await shot('run-completed');
  },

  // A run paused at an approval titled args.title: approved from the inbox with args.note.
  async inbox() {
    await visit('/inbox');
    const item = page.locator('article.pause-point').filter({ has: page.getByRole('heading', { name: args.title }) });
    await item.waitFor();
    report.order = await page.locator('article.pause-point h2').allTextContents();
    report.message = (await item.locator('.message').textContent()).trim();
    report.facts = (await item.locator('dl.facts').innerText()).replace(/\s+/g, ' ');
    await item.getByLabel('Note (required)').fill(args.note);
    await item.getByLabel('Amount').fill('12abc');
    await shot('inbox');
    await item.getByRole('button', { name: 'Approve' }).click();
    await item.locator('[aria-invalid=true]').waitFor();
    report.fieldError = (await item.locator('.field .error:not([hidden])').first().textContent()).trim();
    await item.getByLabel('Amount').fill('250');
    await item.getByLabel('Express').check();
    await item.getByRole('button', { name: 'Approve' }).click();
    await item.waitFor({ state: 'detached' });
    report.announced = (await page.locator('#announce').textContent()).trim();
    report.left = await page.locator('article.pause-point h2').allTextContents();
  },

  // A run in a long delay (args.run): paused and resumed by the operator, then stopped, from its page.
  async stop() {
    await visit(`/runs/${args.run}`);
    await page.locator('body[data-run-status=running]').waitFor();
    await page.getByRole('button', { name: 'Pause', exact: true }).click();
    await page.locator('body[data-run-status=paused]').waitFor();
    report.pausedControls = await page.locator('.controls button').allTextContents();
    await page.getByRole('button', { name: 'Resume', exact: true }).click();
    await page.locator('body[data-run-status=running]').waitFor();
    await page.getByRole('button', { name: 'Stop', exact: true }).click();
    await page.locator('body[data-run-status=stopped]').waitFor();
    report.heading = (await page.locator('main h1').innerText()).replace(/\s+/g, ' ').trim();
    report.controls = await page.locator('.controls button').allTextContents();
  },

  // Runs of two workflows (args.workflowId is one of them): the filters narrow the list, and a run
  // started meanwhile appears without a reload.
  async filters() {
    await visit('/');
    const rows = page.locator('table.runs tbody tr');
    await rows.first().waitFor();
    const seen = async () => rows.evaluateAll((items) => items.map((row) => row.dataset.status));
    report.all = await seen();
    await page.getByLabel('Status').selectOption('paused');
    await page.getByRole('button', { name: 'Apply filters' }).click();
    await page.waitForURL(/status=paused/);
    await page.locator('.summary').filter({ hasText: `of ${args.paused}` }).waitFor();
    report.paused = await seen();
    await page.getByLabel('Status').selectOption('');
    await page.getByLabel('Workflow').selectOption(args.workflowId);
    await page.getByRole('button', { name: 'Apply filters' }).click();
    await page.locator('.summary').filter({ hasText: `of ${args.ofWorkflow}` }).waitFor();
    // The paused list may also have held that many runs: wait for the workflow's own rows.
    await page.waitForFunction((name) => {
      const names = [...document.querySelectorAll('table.runs tbody tr td:nth-child(2)')].map((cell) => cell.textContent);
      return names.length > 0 && names.every((text) => text === name);
    }, args.workflowName);
    report.ofWorkflow = await rows.evaluateAll((items) => items.map((row) => row.querySelector('td:nth-child(2)').textContent));
    await page.evaluate(() => { window.__samePage = true; });
    const started = await fetch(`${args.base}/api/workflows/execute`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': args.key },
      body: JSON.stringify({ workflowId: args.workflowId }),
    }).then((response) => response.json());
    report.startedId = started.executionId;
    await page.locator(`tr[data-execution-id="${started.executionId}"]`).waitFor();
    report.newFirst = await rows.first().getAttribute('data-execution-id');
    report.samePage = await page.evaluate(() => window.__samePage === true);
    await page.getByLabel('Workflow').selectOption('');
    await page.getByLabel('Created from').fill('2099-01-01T00:00:00');
    await page.getByRole('button', { name: 'Apply filters' }).click();
    await page.locator('.summary').filter({ hasText: 'No runs match' }).waitFor();
    report.future = await rows.count();
    await page.goto(`${args.base}/`);
    await rows.first().waitFor();
    await shot('runs');
  },

  // A batch of two runs that each wait (args.batch): the bar moves as each is resumed from outside.
  async batch() {
    await visit(`/batches/${args.batch}`);
    const bar = page.locator('.progress-row');
    await page.locator('.progress-row[data-total="2"][data-done="0"]').waitFor();
    await page.locator('.progress[aria-label="2 paused of 2"]').waitFor();
    report.labelBefore = await page.locator('.progress').getAttribute('aria-label');
    await shot('batch');
    report.progress = [await bar.getAttribute('data-done')];
    const runs = await page.locator('table.runs tbody tr').evaluateAll((rows) => rows.map((row) => row.dataset.executionId));
    for (const [index, executionId] of runs.entries()) {
      const [point] = (await api('PausePointService', 'ListPausePoints', { executionId, resumeStatuses: ['RESUME_STATUS_PAUSED'] })).pausePoints;
      await api('ExecutionService', 'ResumePausePoint', { contextId: point.contextId, values: { n: index } });
      await page.locator(`.progress-row[data-done="${index + 1}"]`).waitFor();
      report.progress.push(await bar.getAttribute('data-done'));
    }
    await page.locator('body[data-batch-status=completed]').waitFor();
    report.label = await page.locator('.progress').getAttribute('aria-label');
    await visit('/batches');
    await page.locator(`tr[data-batch-id="${args.batch}"]`).waitFor();
    await shot('batches');
    await page.getByRole('button', { name: 'Clear finished batches' }).click();
    await page.locator(`tr[data-batch-id="${args.batch}"]`).waitFor({ state: 'detached' });
    report.cleared = (await page.locator('#announce').textContent()).trim();
  },

  // Every page, for script errors and labels; the workflow page's controls (args.workflowId, with
  // runs; args.run one of them).
  async tour() {
    for (const path of ['/', `/runs/${args.run}`, '/inbox', '/batches', `/batches/${args.batch}`, '/workflows']) {
      await visit(path);
    }
    await page.locator(`tr[data-workflow-id="${args.workflowId}"]`).waitFor();
    await shot('workflows');
    await visit(`/workflows/${args.workflowId}`);
    await page.locator('svg.graph g.node').first().waitFor();
    await page.getByRole('button', { name: 'Pause workflow' }).click();
    await page.locator('body[data-workflow-status=paused]').waitFor();
    await page.getByRole('button', { name: 'Resume workflow' }).click();
    await page.locator('body[data-workflow-status=active]').waitFor();
    await page.getByLabel('Old secret keeps working for (seconds)').fill('60');
    await page.getByRole('button', { name: 'Rotate webhook secret' }).click();
    await page.locator('#new-secret').waitFor();
    report.secret = (await page.locator('#new-secret').textContent()).trim();
    report.secretNote = (await page.locator('.secret').innerText()).replace(/\s+/g, ' ');
    report.secretInUrl = page.url().includes(report.secret);
    report.unlabelled.push(...(await unlabelled()).map((html) => `workflow: ${html}`));
    await shot('workflow');
    await visit('/runs/exec_missing');
    report.missing = (await page.locator('main').innerText()).replace(/\s+/g, ' ');
    // Another site frames the console: the browser refuses.
    const framer = await context.newPage();
    const refused = framer.waitForEvent('console', { predicate: (message) => /frame-ancestors/.test(message.text()) });
    await framer.setContent(`<iframe src="${args.base}/"></iframe>`);
    report.framingRefused = /frame-ancestors/.test((await refused).text());
  },
};

try {
  if (!scenarios[scenario]) throw new Error(`unknown scenario ${scenario}`);
  await signIn();
  await scenarios[scenario]();
  console.log(JSON.stringify(report));
} catch (error) {
  await shot(`failed-${scenario}`).catch(() => undefined);
  console.error(`${error.stack ?? error}\nseen so far: ${JSON.stringify(report)}`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
