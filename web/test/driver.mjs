// Drive the page in a real Chromium for the tests (and export/webgpu_check.py): Debian's
// /usr/bin/chromium, headless, through npm's playwright-core (pinned in web/package.json;
// its own browser download is never used). Python cannot import Playwright without a second,
// pip-installed copy with its own driver, so the tests write a plan as JSON and run this.
//
//     node web/test/driver.mjs PLAN.json > RESULT.json
//
// PLAN: {"browser": "/usr/bin/chromium", "webgpu": true, "viewport": [w, h], "mobile": false,
//        "timeout": ms, "steps": [...]}; each step is one of
//   {"goto": url}                           {"setFiles": [selector, [paths]]}
//   {"select": [selector, value]}           {"fill": [selector, value]}   (also range inputs)
//   {"click": selector}                     {"tap": [selector, fx, fy]}   (fractions of its box)
//   {"waitState": ["done", ...]}            (body[data-state] becomes one of these)
//   {"waitRenders": n}                      (window.bokehPage.renders reaches n)
//   {"eval": js, "as": name}                (a JS expression, awaited; its JSON value kept)
//   {"text": selector, "as": name}          {"download": [selector, path], "as": name}
//   {"screenshot": path, "fullPage": bool}
// RESULT: {"ok": bool, "error": str, "values": {...}, "requests": [url...], "console": [...],
//          "pageErrors": [...], "states": [...]}. Exit 0 when the plan ran, 1 when a step failed.
import {readFileSync} from 'node:fs';
import {chromium} from 'playwright-core';

const plan = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const result = {ok: false, error: '', values: {}, requests: [], console: [], pageErrors: [], states: []};
const args = ['--headless=new', '--no-sandbox', '--disable-dev-shm-usage', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-default-apps',
  '--disable-domain-reliability', '--metrics-recording-only', '--no-pings'];
if (plan.webgpu !== false) args.push('--enable-unsafe-webgpu', '--enable-features=Vulkan', '--use-webgpu-adapter=swiftshader');
let browser;
try {
  browser = await chromium.launch({executablePath: plan.browser || '/usr/bin/chromium', args, headless: true,
    timeout: 60000});
  const context = await browser.newContext({
    viewport: plan.viewport ? {width: plan.viewport[0], height: plan.viewport[1]} : {width: 1280, height: 900},
    deviceScaleFactor: plan.scale || 1,
    isMobile: !!plan.mobile,
    hasTouch: !!plan.mobile,
    acceptDownloads: true,
  });
  const page = await context.newPage();
  const timeout = plan.timeout || 120000;
  page.setDefaultTimeout(timeout);
  context.on('request', (r) => result.requests.push(r.url()));
  page.on('console', (m) => result.console.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => result.pageErrors.push(String(e.message || e)));
  for (const step of plan.steps) {
    if (step.goto) {
      await page.goto(step.goto, {waitUntil: 'load'});
    } else if (step.setFiles) {
      await page.setInputFiles(step.setFiles[0], step.setFiles[1]);
    } else if (step.select) {
      await page.selectOption(step.select[0], step.select[1]);
    } else if (step.fill) {
      await page.$eval(step.fill[0], (el, v) => {
        el.value = v;
        el.dispatchEvent(new Event('input', {bubbles: true}));
        el.dispatchEvent(new Event('change', {bubbles: true}));
      }, String(step.fill[1]));
    } else if (step.click) {
      await page.click(step.click);
    } else if (step.tap) {
      const box = await page.locator(step.tap[0]).boundingBox();
      const x = box.x + box.width * step.tap[1], y = box.y + box.height * step.tap[2];
      if (plan.mobile) await page.touchscreen.tap(x, y);
      else await page.mouse.click(x, y);
    } else if (step.waitState) {
      await page.waitForFunction((states) => states.includes(document.body.dataset.state), step.waitState,
        {timeout: step.timeout || timeout});
      result.states.push(await page.evaluate(() => document.body.dataset.state));
    } else if (step.waitRenders) {
      await page.waitForFunction((n) => window.bokehPage && (window.bokehPage.renders >= n || window.bokehPage.error),
        step.waitRenders, {timeout: step.timeout || timeout});
      await page.waitForFunction(() => ['done', 'error'].includes(document.body.dataset.state));
    } else if (step.eval) {
      result.values[step.as || 'eval'] = await page.evaluate(`(async () => (${step.eval}))()`);
    } else if (step.text) {
      result.values[step.as || step.text] = await page.locator(step.text).innerText();
    } else if (step.download) {
      const [download] = await Promise.all([page.waitForEvent('download'), page.click(step.download[0])]);
      await download.saveAs(step.download[1]);
      result.values[step.as || 'download'] = download.suggestedFilename();
    } else if (step.screenshot) {
      await page.screenshot({path: step.screenshot, fullPage: !!step.fullPage});
    } else {
      throw new Error(`unknown step ${JSON.stringify(step)}`);
    }
  }
  result.ok = true;
} catch (e) {
  result.error = String(e.message || e).split('\n').slice(0, 6).join('\n');
} finally {
  if (browser) await browser.close().catch(() => {});
}
process.stdout.write(JSON.stringify(result));
process.exit(result.ok ? 0 : 1);
