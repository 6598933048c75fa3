// Shared test plumbing: the tagger binary and its quickstart model, `tagger serve` processes,
// a static file server for second origins and fixtures, and Chromium.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const CLIENTS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const ROOT = path.resolve(CLIENTS, '..');
// Everything the tests write (screenshots, browser profiles, the model) goes here; gitignored.
export const OUT = process.env.TAGGER_TEST_OUTPUT || path.join(CLIENTS, 'test-output');
export const SHOTS = path.join(OUT, 'screenshots');
fs.mkdirSync(SHOTS, { recursive: true });

export const TAGGER_BIN = process.env.TAGGER_BIN || path.join(ROOT, 'target', 'debug', 'tagger');
export const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';

export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

/** The quickstart's published model folder, trained afresh by this binary (a fraction of a
 * second) once per test process, so a changed artifact format never meets a stale model. */
let models = null;
export function quickstartModels() {
  if (models) return models;
  const dir = path.join(OUT, 'quickstart-' + process.pid);
  fs.rmSync(dir, { recursive: true, force: true });
  process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  const r = spawnSync(TAGGER_BIN, ['quickstart', '--no-serve', '--dir', dir], {
    encoding: 'utf8',
    timeout: 300_000,
  });
  if (r.status !== 0) {
    throw new Error(`tagger quickstart failed (${r.status}): ${r.stderr || r.error}`);
  }
  models = path.join(dir, 'bucket', 'models');
  return models;
}

export async function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** Starts `tagger serve` on a free port and waits until it answers. */
export async function startTagger({ model, cors = [] }) {
  const port = await freePort();
  const args = ['serve', '--model', model, '--host', '127.0.0.1', '--port', String(port)];
  for (const c of cors) args.push('--cors', c);
  const child = spawn(TAGGER_BIN, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stdout.on('data', (d) => (log += d));
  child.stderr.on('data', (d) => (log += d));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`tagger serve exited ${child.exitCode}: ${log}`);
    try {
      await fetch(url + '/health');
      break;
    } catch (_) {
      if (Date.now() > deadline) {
        child.kill();
        throw new Error(`tagger serve did not answer on ${url}: ${log}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return {
    url,
    port,
    log: () => log,
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', resolve);
        child.kill('SIGTERM');
      }),
  };
}

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
};

/** A static server for one folder on a free 127.0.0.1 port; `routes` maps URL paths to files. */
export async function serveStatic(root, routes = {}) {
  const server = http.createServer((req, res) => {
    const p = new URL(req.url, 'http://x').pathname;
    const rel = routes[p] || p.replace(/^\/+/, '') || 'index.html';
    const file = path.resolve(root, rel);
    if (!file.startsWith(path.resolve(root)) || !fs.existsSync(file) || !fs.statSync(file).isFile()) {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found');
      return;
    }
    res.writeHead(200, { 'content-type': TYPES[path.extname(file)] || 'application/octet-stream' });
    res.end(fs.readFileSync(file));
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    stop: () => new Promise((r) => server.close(r)),
  };
}

export async function launchBrowser() {
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
}

/** A persistent profile with one unpacked extension loaded (extensions need the new headless). */
export async function launchWithExtension(extensionDir, profileName) {
  const profile = path.join(OUT, 'profiles', profileName + '-' + process.pid);
  fs.rmSync(profile, { recursive: true, force: true });
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: false,
    args: [
      '--headless=new',
      ...CHROMIUM_ARGS,
      `--disable-extensions-except=${extensionDir}`,
      `--load-extension=${extensionDir}`,
    ],
  });
  let worker = context.serviceWorkers()[0];
  if (!worker) worker = await context.waitForEvent('serviceworker', { timeout: 15_000 });
  const id = new URL(worker.url()).host;
  const close = async () => {
    await context.close();
    fs.rmSync(profile, { recursive: true, force: true });
  };
  return { context, worker, id, close };
}

/** Records uncaught page errors so a test can assert there were none. */
export function watchErrors(page) {
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('dialog', (d) => {
    errors.push('dialog: ' + d.message());
    d.dismiss().catch(() => {});
  });
  return errors;
}

export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}
