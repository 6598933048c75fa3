// The Chrome extension, loaded unpacked into Chromium, on a fixture page that reproduces the
// Stack Overflow ask page, talking to `tagger serve`.
//
// The test loads a *test build*: a copy of clients/chrome-extension whose manifest also matches
// http://127.0.0.1/* (where the fixture is served) and grants that host up front, so the options
// page's permission request is answered without a prompt a headless browser cannot click. The
// shipped manifest is otherwise unchanged.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import {
  CLIENTS,
  OUT,
  SHOTS,
  launchWithExtension,
  quickstartModels,
  serveStatic,
  startTagger,
  watchErrors,
} from './helpers.mjs';

const LOCAL = 'http://127.0.0.1/*';

export function testBuild() {
  const dir = path.join(OUT, 'extension-test-build');
  fs.rmSync(dir, { recursive: true, force: true });
  fs.cpSync(path.join(CLIENTS, 'chrome-extension'), dir, { recursive: true });
  const manifestPath = path.join(dir, 'manifest.json');
  const manifest = JSON.parse(fs.readFileSync(manifestPath, 'utf8'));
  manifest.content_scripts[0].matches.push(LOCAL);
  manifest.host_permissions = [LOCAL];
  fs.writeFileSync(manifestPath, JSON.stringify(manifest, null, 2));
  return dir;
}

describe('chrome extension on the ask page fixture', () => {
  let server;
  let fixture;
  let ext;

  before(async () => {
    server = await startTagger({ model: quickstartModels() });
    fixture = await serveStatic(path.join(CLIENTS, 'tests', 'fixtures', 'ask'), {
      '/questions/ask': 'index.html',
    });
    ext = await launchWithExtension(testBuild(), 'extension');
  });
  after(async () => {
    await ext?.close();
    await fixture?.stop();
    await server?.stop();
  });

  test('the shipped manifest asks for no host up front and does not run on 127.0.0.1', () => {
    const manifest = JSON.parse(fs.readFileSync(path.join(CLIENTS, 'chrome-extension', 'manifest.json'), 'utf8'));
    assert.equal(manifest.manifest_version, 3);
    assert.equal(manifest.host_permissions, undefined);
    assert.deepEqual(manifest.optional_host_permissions, ['http://*/*', 'https://*/*']);
    assert.ok(manifest.content_scripts[0].matches.every((m) => m.startsWith('https://')));
  });

  test('before an endpoint is set the panel says "not connected"', async () => {
    const page = await ext.context.newPage();
    await page.setViewportSize({ width: 1000, height: 800 });
    await page.goto(fixture.url + '/questions/ask');
    await page.locator('#title').fill('How do I merge two pandas DataFrames on a column?');
    const panel = page.locator('.tagger-ext');
    await panel.locator('.tagger-ext-status', { hasText: /not connected/i }).waitFor({ timeout: 5000 });
    assert.equal(await panel.getAttribute('data-state'), 'not-connected');
    assert.ok(await panel.locator('.tagger-ext-connect').isVisible());
    await page.screenshot({ path: path.join(SHOTS, 'extension-not-connected.png') });
    await page.close();
  });

  test('options page connects to tagger serve; typing suggests tags; a click adds one', async () => {
    const options = await ext.context.newPage();
    await options.goto(`chrome-extension://${ext.id}/options.html`);
    await options.locator('#endpoint').fill(server.url);
    await options.locator('#save').click();
    await options.locator('#status[data-state="ok"]', { hasText: 'Connected to ' + server.url }).waitFor({ timeout: 5000 });
    assert.match(await options.locator('#status').textContent(), /model /);
    await options.screenshot({ path: path.join(SHOTS, 'extension-options.png') });
    await options.close();

    const page = await ext.context.newPage();
    const errors = watchErrors(page);
    await page.setViewportSize({ width: 1000, height: 800 });
    await page.goto(fixture.url + '/questions/ask');
    await page.locator('#title').pressSequentially('How do I merge two pandas DataFrames', { delay: 10 });
    await page.locator('#wmd-input').fill('I want a left join on the id column, keeping every row of df1.');
    const chip = page.locator('.tagger-ext-chip[data-tag="pandas"]');
    await chip.waitFor({ timeout: 3000 });

    await chip.hover();
    const words = await page.locator('.tagger-ext-words .tagger-ext-up').allTextContents();
    assert.ok(words.length > 0, 'hover shows the words that pushed the tag up');
    await page.screenshot({ path: path.join(SHOTS, 'extension-suggestions.png') });

    await chip.click();
    await page.waitForFunction(() => document.getElementById('tagnames').value.split(' ').includes('pandas'));
    assert.deepEqual(await page.locator('.js-rendered-tags .s-tag').allTextContents(), ['pandas']);
    assert.equal(await page.locator('#tageditor-replacing-tagnames--input').inputValue(), '');
    assert.ok(await chip.isDisabled(), 'an added tag cannot be added twice');
    await page.screenshot({ path: path.join(SHOTS, 'extension-added.png') });

    // The rich-text editor: its HTML is what the extension sends.
    await page.locator('.js-mode-richtext').click();
    await page.locator('#title').fill('');
    await page.locator('.ProseMirror').click();
    await page.keyboard.type('How do I plot a histogram with matplotlib and add a colorbar to the axes?');
    await page.locator('.tagger-ext-chip[data-tag="matplotlib"]').waitFor({ timeout: 3000 });
    assert.deepEqual(errors, []);
    await page.close();
  });
});
