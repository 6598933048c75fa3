// Options: the API endpoint (stored in chrome.storage.local) and the host permission for it.
'use strict';

const $ = (id) => document.getElementById(id);

function say(text, state) {
  $('status').textContent = text;
  $('status').dataset.state = state || '';
}

function parseEndpoint(value) {
  let u;
  try {
    u = new URL(value.trim());
  } catch (_) {
    return null;
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return null;
  u.search = '';
  u.hash = '';
  return u.href.replace(/\/+$/, '');
}

const originPattern = (endpoint) => {
  const u = new URL(endpoint);
  return u.protocol + '//' + u.hostname + '/*';
};

async function check() {
  const reply = await chrome.runtime.sendMessage({ type: 'health' });
  if (reply.kind === 'not_connected') say('Not connected. ' + reply.reason, 'error');
  else if (reply.kind === 'network') say('Not connected: ' + reply.message, 'error');
  else if (reply.status === 503) say('Connected to ' + reply.endpoint + ', but it has no model loaded yet.', 'error');
  else if (reply.kind === 'ok') say('Connected to ' + reply.endpoint + ' · model ' + ((reply.json && reply.json.version) || '?'), 'ok');
  else say('Connected to ' + reply.endpoint + ', but /health answered ' + reply.status + '.', 'error');
}

$('form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const endpoint = parseEndpoint($('endpoint').value);
  if (!endpoint) {
    say('Enter an http:// or https:// URL.', 'error');
    return;
  }
  // Must run in the click's user gesture: no await before it.
  const granted = await chrome.permissions.request({ origins: [originPattern(endpoint)] });
  if (!granted) {
    say('Access to ' + endpoint + ' was refused: the extension cannot reach it.', 'error');
    return;
  }
  await chrome.storage.local.set({ endpoint });
  $('endpoint').value = endpoint;
  say('Saved. Checking ' + endpoint + ' …');
  await check();
});

$('disconnect').addEventListener('click', async () => {
  const { endpoint } = await chrome.storage.local.get('endpoint');
  await chrome.storage.local.remove('endpoint');
  if (endpoint) {
    try {
      await chrome.permissions.remove({ origins: [originPattern(endpoint)] });
    } catch (_) {
      /* a permission the manifest grants cannot be removed */
    }
  }
  $('endpoint').value = '';
  say('Disconnected.', 'error');
});

$('save-selectors').addEventListener('click', async () => {
  const text = $('selectors').value.trim();
  if (!text) {
    await chrome.storage.local.remove('selectors');
    say('Selectors reset to the defaults.', 'ok');
    return;
  }
  let value;
  try {
    value = JSON.parse(text);
  } catch (err) {
    say('Selectors are not valid JSON: ' + err.message, 'error');
    return;
  }
  if (!value || typeof value !== 'object' || Array.isArray(value) || Object.values(value).some((v) => typeof v !== 'string')) {
    say('Selectors must be a JSON object of strings.', 'error');
    return;
  }
  await chrome.storage.local.set({ selectors: value });
  say('Selectors saved.', 'ok');
});

(async () => {
  const { endpoint, selectors } = await chrome.storage.local.get(['endpoint', 'selectors']);
  if (endpoint) $('endpoint').value = endpoint;
  if (selectors) $('selectors').value = JSON.stringify(selectors, null, 2);
  if (endpoint) await check();
  else say('Not connected: enter the tagger API endpoint.', 'error');
})();
