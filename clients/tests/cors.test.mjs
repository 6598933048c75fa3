// A page on a second origin (another 127.0.0.1 port) calling `tagger serve`'s /predict: allowed
// with `--cors`, refused by the browser without it. Needs `tagger serve --cors <origin|*>` and the
// CORS behaviour in clients/README.md ("What the server must do").
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { CLIENTS, SHOTS, launchBrowser, quickstartModels, serveStatic, startTagger } from './helpers.mjs';

const TITLE = 'How do I merge two pandas DataFrames on a column?';

// What a browser sends before the page's POST (JSON plus the CloudFront payload hash header).
async function preflight(url, origin) {
  return fetch(url + '/predict', {
    method: 'OPTIONS',
    headers: {
      origin,
      'access-control-request-method': 'POST',
      'access-control-request-headers': 'content-type,x-amz-content-sha256',
    },
  });
}

describe('cross-origin page', () => {
  let other; // the second origin, serving the same page files
  let browser;

  before(async () => {
    other = await serveStatic(path.join(CLIENTS, 'web'));
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await other?.stop();
  });

  async function openOther(api) {
    const page = await browser.newPage();
    await page.goto(other.url + '/?api=' + encodeURIComponent(api));
    await page.locator('#title').fill(TITLE);
    return page;
  }

  test('succeeds with --cors <origin>: preflight answered, chips shown', async () => {
    const server = await startTagger({ model: quickstartModels(), cors: [other.url] });
    try {
      const pre = await preflight(server.url, other.url);
      assert.ok(pre.status === 204 || pre.status === 200, `preflight status ${pre.status}`);
      assert.equal(pre.headers.get('access-control-allow-origin'), other.url);
      assert.match(pre.headers.get('access-control-allow-methods') || '', /POST/i);
      const allowHeaders = (pre.headers.get('access-control-allow-headers') || '').toLowerCase();
      assert.ok(allowHeaders.includes('content-type'), allowHeaders);
      assert.ok(allowHeaders.includes('x-amz-content-sha256'), allowHeaders);
      assert.ok(pre.headers.get('access-control-max-age'), 'max-age set');

      const refused = await preflight(server.url, 'http://127.0.0.1:9');
      assert.equal(refused.headers.get('access-control-allow-origin'), null, 'other origins get no CORS headers');

      const page = await openOther(server.url);
      await page.locator('.chip[data-tag="pandas"]').waitFor({ timeout: 3000 });
      await page.locator('#model[data-state="ok"]').waitFor({ timeout: 3000 });
      await page.screenshot({ path: path.join(SHOTS, 'cors-allowed.png') });
      await page.close();
    } finally {
      await server.stop();
    }
  });

  test('succeeds with --cors "*"', async () => {
    const server = await startTagger({ model: quickstartModels(), cors: ['*'] });
    try {
      const page = await openOther(server.url);
      await page.locator('.chip[data-tag="pandas"]').waitFor({ timeout: 3000 });
      await page.close();
    } finally {
      await server.stop();
    }
  });

  test('fails without --cors: no CORS headers, the page says it cannot reach the API', async () => {
    const server = await startTagger({ model: quickstartModels() });
    try {
      const pre = await preflight(server.url, other.url);
      assert.equal(pre.headers.get('access-control-allow-origin'), null);

      const page = await openOther(server.url);
      await page.locator('#status[data-state="error"]').waitFor({ timeout: 3000 });
      assert.match(await page.locator('#status').textContent(), /Cannot reach the tagger API/);
      assert.equal(await page.locator('.chip').count(), 0);
      await page.close();

      // The same server still answers its own origin.
      const same = await browser.newPage();
      await same.goto(server.url + '/');
      await same.locator('#title').fill(TITLE);
      await same.locator('.chip[data-tag="pandas"]').waitFor({ timeout: 3000 });
      await same.close();
    } finally {
      await server.stop();
    }
  });
});
