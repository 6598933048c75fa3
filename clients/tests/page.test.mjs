// The page served by `tagger serve` at GET /, in Chromium, against the quickstart model.
// Needs the server side described in clients/README.md ("What the server must do"): GET / and
// GET /app.js, /app.css from the binary. Without it every test here fails at the first page load.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  SHOTS,
  launchBrowser,
  median,
  quickstartModels,
  startTagger,
  watchErrors,
} from './helpers.mjs';

const PANDAS_TITLE = 'How do I merge two pandas DataFrames on a column?';
const PANDAS_BODY = 'I have two DataFrames with an id column and want a left join, like SQL, keeping every row of df1.';

describe('page from tagger serve', () => {
  let server;
  let browser;

  before(async () => {
    server = await startTagger({ model: quickstartModels() });
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  test('GET / serves the page and its assets with their content types', async () => {
    const page = await fetch(server.url + '/');
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type'), /^text\/html/);
    const html = await page.text();
    assert.match(html, /<script src="app\.js"/);
    for (const [asset, type] of [
      ['app.js', /^(text|application)\/javascript/],
      ['app.css', /^text\/css/],
    ]) {
      const r = await fetch(server.url + '/' + asset);
      assert.equal(r.status, 200, asset);
      assert.match(r.headers.get('content-type'), type, asset);
    }
  });

  test('typing a pandas question shows a pandas chip within 2 s; hovering it highlights its words', async () => {
    const page = await browser.newPage({ viewport: { width: 1000, height: 900 } });
    const errors = watchErrors(page);
    await page.goto(server.url + '/');
    await page.locator('#model[data-state="ok"]').waitFor();
    await page.locator('#title').pressSequentially(PANDAS_TITLE, { delay: 5 });
    const typed = Date.now();
    const chip = page.locator('.chip[data-tag="pandas"]');
    await chip.waitFor({ timeout: 2000 });
    assert.ok(Date.now() - typed < 2000);
    assert.match(await chip.textContent(), /pandas\s*\d+%/);

    await page.locator('#body').fill(PANDAS_BODY);
    await page.waitForFunction(
      () => document.querySelector('#preview')?.textContent.includes('left join'),
      null,
      { timeout: 2000 },
    );
    await page.locator('.chip[data-tag="pandas"]').hover();
    const up = await page.locator('#preview span.w.up').allTextContents();
    assert.ok(up.length > 0, 'hovering pandas highlights words that pushed it up');
    const question = (PANDAS_TITLE + ' ' + PANDAS_BODY).toLowerCase();
    for (const w of up) assert.ok(question.includes(w.toLowerCase()), `highlighted ${w} is in the question`);
    assert.equal(await page.locator('#why-tag').textContent(), 'pandas');
    await page.screenshot({ path: path.join(SHOTS, 'page-pandas-hover.png'), fullPage: true });

    // Keyboard: Tab to the chip, Enter pins it; the highlight stays when the pointer leaves.
    await page.mouse.move(0, 0);
    await page.locator('#body').focus();
    for (let i = 0; i < 6; i++) {
      await page.keyboard.press('Tab');
      if ((await page.evaluate(() => document.activeElement.dataset.tag)) === 'pandas') break;
    }
    assert.equal(await page.evaluate(() => document.activeElement.dataset.tag), 'pandas');
    await page.keyboard.press('Enter');
    assert.equal(await page.locator('.chip[data-tag="pandas"]').getAttribute('aria-pressed'), 'true');
    await page.keyboard.press('Tab');
    assert.ok((await page.locator('#preview span.w.up').count()) > 0);
    assert.deepEqual(errors, []);
    await page.close();
  });

  test('readable at phone width (375 px): nothing overflows sideways', async () => {
    const page = await browser.newPage({ viewport: { width: 375, height: 800 }, deviceScaleFactor: 2 });
    await page.goto(server.url + '/');
    await page.locator('#title').fill(PANDAS_TITLE);
    await page.locator('#body').fill(PANDAS_BODY);
    await page.locator('.chip[data-tag="pandas"]').waitFor({ timeout: 3000 });
    await page.locator('.chip[data-tag="pandas"]').hover();
    const width = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(width <= 375, `page is ${width} px wide`);
    await page.screenshot({ path: path.join(SHOTS, 'page-phone.png'), fullPage: true });
    await page.close();
  });

  test('works under a strict CSP (default-src self): no inline script or style', async () => {
    const page = await browser.newPage();
    const violations = [];
    page.on('console', (m) => {
      if (/Content Security Policy/i.test(m.text())) violations.push(m.text());
    });
    await page.route(server.url + '/', async (route) => {
      const response = await route.fetch();
      await route.fulfill({
        response,
        headers: { ...response.headers(), 'content-security-policy': "default-src 'self'" },
      });
    });
    await page.goto(server.url + '/');
    await page.locator('#title').fill(PANDAS_TITLE);
    await page.locator('.chip[data-tag="pandas"]').waitFor({ timeout: 3000 });
    assert.deepEqual(violations, []);
    await page.close();
  });

  test('HTML with scripts is never run or rendered as HTML; a 1 MB paste does not break the page', async () => {
    const page = await browser.newPage();
    const errors = watchErrors(page);
    await page.goto(server.url + '/');
    const evilTitle = 'pandas <img src=x onerror="window.__pwned=1"> merge';
    await page.locator('#title').fill(evilTitle);
    await page.locator('#body').fill(
      '<p>How do I merge two DataFrames in pandas?</p><script>window.__pwned=2</script>' +
        '<img src="x" onerror="window.__pwned=3"><iframe src="javascript:parent.__pwned=4"></iframe>' +
        '<pre><code>df1.merge(df2, on="id")</code></pre>',
    );
    await page.locator('.chip[data-tag="pandas"]').waitFor({ timeout: 3000 });
    const preview = page.locator('#preview');
    assert.equal(await preview.locator('img, script, iframe').count(), 0);
    const text = await preview.textContent();
    assert.ok(text.includes(evilTitle), 'the title is shown as typed, markup and all');
    assert.ok(text.includes('df1.merge(df2, on="id")'));
    assert.ok(!text.includes('__pwned=2'), 'script bodies are dropped from the text');
    assert.equal(await page.evaluate(() => window.__pwned), undefined);
    await page.screenshot({ path: path.join(SHOTS, 'page-html.png'), fullPage: true });

    // 1 MB paste: the server refuses it (413) or answers; either way the page says so and keeps working.
    const big = 'How do I merge DataFrames in pandas? '.repeat(Math.ceil(1_048_576 / 37));
    await page.locator('#body').fill(big);
    await page.waitForFunction(
      () => {
        const s = document.querySelector('#status');
        return s.dataset.state === 'error' || (s.dataset.state === 'ok' && document.querySelector('.chip'));
      },
      null,
      { timeout: 10_000 },
    );
    const status = await page.locator('#status').textContent();
    if ((await page.locator('#status').getAttribute('data-state')) === 'error') {
      assert.match(status, /refused the question \(413/);
    }
    assert.ok((await preview.textContent()).length < 25_000, 'the preview shows the start only');
    await page.locator('#body').fill(PANDAS_BODY);
    await page.locator('.chip[data-tag="pandas"]').waitFor({ timeout: 3000 });

    // Empty: no request, back to the prompt.
    await page.locator('#title').fill('');
    await page.locator('#body').fill('');
    await page.waitForFunction(() => document.querySelector('#status').dataset.state === 'idle');
    assert.equal(await page.locator('.chip').count(), 0);
    assert.equal(await page.evaluate(() => window.__pwned), undefined);
    assert.deepEqual(errors, []);
    await page.close();
  });

  test('one request in flight; the answer to a superseded draft is dropped', async () => {
    const page = await browser.newPage();
    let active = 0;
    let maxActive = 0;
    const bodies = [];
    const hashes = [];
    // Hold every answer for 700 ms so that an edit happens while a request is in flight.
    await page.route('**/predict?*', async (route) => {
      active += 1;
      maxActive = Math.max(maxActive, active);
      bodies.push(route.request().postData());
      hashes.push([
        route.request().headers()['x-amz-content-sha256'],
        crypto.createHash('sha256').update(route.request().postDataBuffer()).digest('hex'),
      ]);
      await new Promise((r) => setTimeout(r, 700));
      const response = await route.fetch();
      await route.fulfill({ response });
      active -= 1;
    });
    await page.goto(server.url + '/');
    await page.evaluate(() => {
      window.__shown = [];
      new MutationObserver(() => {
        for (const c of document.querySelectorAll('#tags .chip')) window.__shown.push(c.dataset.tag);
      }).observe(document.getElementById('tags'), { childList: true });
    });
    await page.locator('#title').fill('How do I merge two pandas DataFrames on a column?');
    await page.waitForTimeout(450); // the first request is now in flight
    await page.locator('#title').fill('How do I plot a histogram with matplotlib and add a colorbar?');
    await page.waitForTimeout(150);
    await page.locator('#title').fill('How do I plot a histogram with matplotlib and add a colorbar to the axes?');
    await page.locator('.chip[data-tag="matplotlib"]').waitFor({ timeout: 5000 });
    await page.waitForTimeout(500);
    assert.equal(maxActive, 1, 'at most one request in flight');
    for (const [sent, actual] of hashes) assert.equal(sent, actual, 'x-amz-content-sha256 is the SHA-256 of the body');
    assert.equal(bodies.length, 2, 'the edits made while waiting were sent once, as the newest draft');
    assert.match(JSON.parse(bodies[1]).question, /to the axes\?/);
    const shown = await page.evaluate(() => window.__shown);
    assert.ok(!shown.includes('pandas'), `the pandas answer was dropped, shown: ${shown}`);
    await page.close();
  });

  test('a server that cannot explain still gets its tags shown', async () => {
    const page = await browser.newPage();
    // What the API answers for a model stored without an explainer background.
    await page.route('**/predict?*explain=true*', (route) =>
      route.fulfill({
        status: 422,
        contentType: 'application/json',
        body: JSON.stringify({ error: { code: 'no_explainer', message: 'the model has no explainer background' } }),
      }),
    );
    await page.goto(server.url + '/');
    await page.locator('#title').fill(PANDAS_TITLE);
    await page.locator('.chip[data-tag="pandas"]').waitFor({ timeout: 3000 });
    await page.locator('.chip[data-tag="pandas"]').hover();
    assert.equal(await page.locator('#preview span.w.up').count(), 0);
    await page.close();
  });

  test('latency: chips visible after the last keystroke, median over 20 edits (target <= 500 ms)', async () => {
    const page = await browser.newPage();
    await page.goto(server.url + '/');
    await page.locator('#model[data-state="ok"]').waitFor();
    // In-page clocks: the last input event, and when chips were last (re)drawn.
    await page.evaluate(() => {
      window.__lastInput = 0;
      window.__chipsAt = 0;
      for (const id of ['title', 'body']) {
        document.getElementById(id).addEventListener('input', () => (window.__lastInput = performance.now()));
      }
      // Visible = the next frame after the chips enter the DOM.
      new MutationObserver(() => {
        if (document.querySelector('#tags .chip')) {
          requestAnimationFrame(() => (window.__chipsAt = performance.now()));
        }
      }).observe(document.getElementById('tags'), { childList: true });
    });
    const questions = [
      'How do I merge two pandas DataFrames on a column?',
      'How do I plot a histogram with matplotlib?',
      'How do I reshape a numpy array to 2D?',
      'How do I train a keras Sequential model?',
      'How do I fit a scikit-learn pipeline with a grid search?',
      'How do I group a pandas DataFrame by two columns?',
      'How do I add a colorbar to a matplotlib subplot?',
      'How do I compute the mean of a numpy array along an axis?',
      'How do I save a tensorflow model?',
      'How do I one-hot encode a pandas column?',
    ];
    const times = [];
    for (let i = 0; i < 20; i++) {
      await page.locator('#title').fill('');
      await page.waitForFunction(() => document.querySelector('#status').dataset.state === 'idle');
      await page.evaluate(() => (window.__chipsAt = 0));
      await page.locator('#title').pressSequentially(questions[i % questions.length], { delay: 10 });
      await page.waitForFunction(() => window.__chipsAt > window.__lastInput, null, { timeout: 5000 });
      times.push(await page.evaluate(() => window.__chipsAt - window.__lastInput));
    }
    const m = median(times);
    const sorted = [...times].sort((a, b) => a - b);
    console.log(
      `# latency last keystroke -> chips (20 edits, 300 ms debounce included): median ${m.toFixed(0)} ms, ` +
        `min ${sorted[0].toFixed(0)} ms, max ${sorted[sorted.length - 1].toFixed(0)} ms`,
    );
    fs.writeFileSync(
      path.join(SHOTS, '..', 'latency.json'),
      JSON.stringify({ median_ms: m, times_ms: times }, null, 1),
    );
    assert.ok(m <= 500, `median ${m} ms`);
    await page.close();
  });
});

describe('page from tagger serve with no model', () => {
  let server;
  let browser;
  let empty;

  before(async () => {
    empty = fs.mkdtempSync(path.join(os.tmpdir(), 'tagger-empty-'));
    server = await startTagger({ model: empty });
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await server?.stop();
    fs.rmSync(empty, { recursive: true, force: true });
  });

  test('says plainly that no model is loaded (503)', async () => {
    const page = await browser.newPage({ viewport: { width: 900, height: 700 } });
    await page.goto(server.url + '/');
    await page.locator('#model[data-state="none"]').waitFor();
    await page.locator('#title').fill(PANDAS_TITLE);
    await page.locator('#status[data-state="error"]').waitFor({ timeout: 3000 });
    assert.match(await page.locator('#status').textContent(), /No model is loaded/);
    assert.equal(await page.locator('.chip').count(), 0);
    await page.screenshot({ path: path.join(SHOTS, 'page-no-model.png') });
    await page.close();
  });

  test('says plainly when the server cannot be reached', async () => {
    const page = await browser.newPage();
    await page.goto(server.url + '/');
    await page.locator('#model[data-state="none"]').waitFor();
    await server.stop();
    await page.locator('#title').fill(PANDAS_TITLE);
    await page
      .locator('#status[data-state="error"]', { hasText: 'Cannot reach the tagger API' })
      .waitFor({ timeout: 3000 });
    await page.close();
  });
});
