// tagger extension service worker: the only part that talks to the API. It reaches only the
// endpoint the user set on the options page, and only once the user granted that host.
'use strict';

// The endpoint's host as a match pattern (patterns carry no port: http://127.0.0.1/* covers all).
function originPattern(endpoint) {
  const u = new URL(endpoint);
  return u.protocol + '//' + u.hostname + '/*';
}

async function endpoint() {
  const { endpoint } = await chrome.storage.local.get('endpoint');
  return typeof endpoint === 'string' && endpoint ? endpoint.replace(/\/+$/, '') : null;
}

// Connected = an endpoint is set and its host permission granted.
async function connection() {
  const url = await endpoint();
  if (!url) return { connected: false, reason: 'No tagger API is set: open the extension options.' };
  let granted = false;
  try {
    granted = await chrome.permissions.contains({ origins: [originPattern(url)] });
  } catch (_) {
    granted = false;
  }
  if (!granted) {
    return { connected: false, endpoint: url, reason: 'Access to ' + url + ' was not granted: open the extension options.' };
  }
  return { connected: true, endpoint: url };
}

async function sha256Hex(bytes) {
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('');
}

async function call(path, init) {
  const conn = await connection();
  if (!conn.connected) return { kind: 'not_connected', reason: conn.reason };
  let res;
  try {
    res = await fetch(conn.endpoint + path, { ...init, cache: 'no-store', credentials: 'omit' });
  } catch (e) {
    return { kind: 'network', message: 'Cannot reach ' + conn.endpoint + ' (' + (e && e.message ? e.message : 'network error') + ').' };
  }
  let json = null;
  try {
    json = await res.json();
  } catch (_) {
    json = null;
  }
  return {
    kind: res.ok ? 'ok' : 'http',
    status: res.status,
    json,
    version: res.headers.get('x-model-version'),
    endpoint: conn.endpoint,
  };
}

async function predict(payload) {
  const bytes = new TextEncoder().encode(JSON.stringify(payload));
  const init = {
    method: 'POST',
    // CloudFront's origin access control needs the payload's SHA-256 from the client.
    headers: { 'content-type': 'application/json', 'x-amz-content-sha256': await sha256Hex(bytes) },
    body: bytes,
  };
  const reply = await call('/predict?explain=true&scores=true', init);
  // A model without an explainer still has tags worth showing, without their words.
  const code = reply.json && reply.json.error && reply.json.error.code;
  if (reply.kind === 'http' && (reply.status === 501 || code === 'no_explainer')) {
    return call('/predict?scores=true', init);
  }
  return reply;
}

chrome.runtime.onMessage.addListener((msg, _sender, reply) => {
  if (!msg || typeof msg.type !== 'string') return false;
  let work;
  switch (msg.type) {
    case 'predict':
      work = predict(msg.payload);
      break;
    case 'health':
      work = call('/health', { method: 'GET' });
      break;
    case 'status':
      work = connection();
      break;
    case 'openOptions':
      work = chrome.runtime.openOptionsPage().then(() => ({ kind: 'ok' }));
      break;
    default:
      return false;
  }
  work.then(reply, (e) => reply({ kind: 'network', message: String(e && e.message ? e.message : e) }));
  return true; // reply comes asynchronously
});

chrome.action.onClicked.addListener(() => chrome.runtime.openOptionsPage());
