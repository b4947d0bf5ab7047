// Drives the approval page (the uiUrl of a paused approval) in Debian's headless Chromium, as a person
// would: reads the request, sends a bad number once, fixes it and approves, opens the spent link. Run by
// tests/test_approval_page.py as `node approval.mjs <uiUrl>`; prints what it saw as one JSON object
// on stdout, and exits non-zero (with the reason on stderr) when a step fails.
//
// The workflow it expects is the test's: an approval titled "Ship order 1042?" with the fields
// Note (text, required), Amount (number), Express (boolean) and Tier (select: standard, priority).
import { chromium } from 'playwright-core';

const uiUrl = process.argv[2];
if (!uiUrl) {
  console.error('usage: node approval.mjs <uiUrl>');
  process.exit(2);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
  ],
  timeout: 15000,
});
const report = {};
try {
  const page = await browser.newPage();
  page.setDefaultTimeout(5000);
  // Anything the page's Content-Security-Policy refused (its own stylesheet must not be among them).
  const refusals = [];
  page.on('console', (message) => {
    if (/Content Security Policy/i.test(message.text())) refusals.push(message.text());
  });

  // 1. The request as the page shows it.
  const opened = await page.goto(uiUrl);
  report.openStatus = opened.status();
  report.title = (await page.locator('h1').textContent()).trim();
  report.documentTitle = await page.title();
  report.message = (await page.locator('.message').textContent()).trim();
  report.facts = (await page.locator('dl.facts').innerText()).replace(/\s+/g, ' ').trim();
  report.legend = (await page.locator('fieldset legend').textContent()).trim();
  report.styled = await page.evaluate(
    () => getComputedStyle(document.documentElement).getPropertyValue('--accent').trim(),
  );

  // 2. Fill the form by its labels. Enter in a field must not send it (no accidental decision).
  await page.getByLabel('Note').fill('Ship it <fast>');
  await page.getByLabel('Express').check();
  await page.getByLabel('Tier').selectOption('priority');
  await page.evaluate(() => { window.__samePage = true; });
  await page.getByLabel('Note').press('Enter');
  await page.waitForTimeout(300);
  report.enterKeptThePage = await page.evaluate(() => window.__samePage === true);

  // 3. A bad number: a number input refuses letters, so type where a text input would let a person
  // (an old browser, a pasted value) and let the server judge it.
  const amount = page.getByLabel('Amount');
  await amount.evaluate((input) => { input.type = 'text'; });
  await amount.fill('12abc');
  await page.getByRole('button', { name: 'Approve' }).click();
  await page.locator('.errors li').first().waitFor();
  report.errorSummary = (await page.getByRole('alert').first().innerText()).replace(/\s+/g, ' ').trim();
  const invalid = page.getByLabel('Amount');
  report.amountInvalid = await invalid.getAttribute('aria-invalid');
  report.focused = await page.evaluate(() => document.activeElement?.getAttribute('name'));
  const describedBy = (await invalid.getAttribute('aria-describedby')) ?? '';
  report.amountError = describedBy
    ? (await page.locator(`[id="${describedBy.split(' ').pop()}"]`).textContent()).trim()
    : '';
  report.keptNote = await page.getByLabel('Note').inputValue();
  report.keptAmount = await invalid.inputValue();
  report.keptExpress = await page.getByLabel('Express').isChecked();
  report.keptTier = await page.getByLabel('Tier').inputValue();

  // 4. Fix it and approve.
  await invalid.fill('1500');
  await page.getByRole('button', { name: 'Approve' }).click();
  await page.locator('section.outcome h1').waitFor();
  report.outcome = (await page.locator('section.outcome h1').textContent()).trim();
  report.outcomeText = (await page.locator('section.outcome').innerText()).replace(/\s+/g, ' ').trim();

  // 5. The same link again: it is spent, so it is refused and says why.
  const again = await page.goto(uiUrl);
  report.afterwardsStatus = again.status();
  report.afterwards = (await page.locator('h1').textContent()).trim();
  report.afterwardsText = (await page.locator('main').innerText()).replace(/\s+/g, ' ').trim();
  report.refusals = refusals;

  // 6. Another site frames the link (to trick a person into clicking): the browser refuses to show it.
  const framer = await browser.newPage();
  const framerMessages = [];
  framer.on('console', (message) => framerMessages.push(message.text()));
  await framer.setContent(`<iframe src="${uiUrl}" width="800" height="600"></iframe>`);
  await framer.waitForTimeout(1500);
  const framed = framer.frames().find((frame) => frame !== framer.mainFrame());
  report.framedText = framed
    ? await framed.evaluate(() => document.body?.innerText ?? '').catch(() => '')
    : '';
  report.framingRefused = framerMessages.some((text) => /frame-ancestors/.test(text));
  console.log(JSON.stringify(report));
} catch (error) {
  console.error(`${error.stack ?? error}\nseen so far: ${JSON.stringify(report)}`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
