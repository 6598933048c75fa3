// tagger page: suggests tags while a question is typed, and shows which words drove each tag.
// Question text is only ever put into the page with textContent: never as HTML.
'use strict';

(function () {
  const DEBOUNCE_MS = 300;
  // Past this many characters the highlighted copy shows only the start (the request is whole).
  const PREVIEW_CHARS = 20000;
  // Matches the tokenizer's words: letters, digits, _, #, +, . and - (c#, c++, .net, scikit-learn).
  const WORD = /[\p{L}\p{N}_#+.-]+/gu;

  const $ = (id) => document.getElementById(id);
  const el = {
    title: $('title'),
    body: $('body'),
    status: $('status'),
    tags: $('tags'),
    near: $('near'),
    model: $('model'),
    preview: $('preview'),
    whyTag: $('why-tag'),
    whyWords: $('why-words'),
  };

  // The API lives on this origin unless ?api=<url> names another one (which must allow this
  // origin by CORS).
  const api = apiBase();
  function apiBase() {
    const given = new URLSearchParams(location.search).get('api');
    if (given) {
      try {
        const u = new URL(given, location.href);
        if (u.protocol === 'http:' || u.protocol === 'https:') {
          return u.href.replace(/\/+$/, '');
        }
      } catch (_) {
        /* fall through to same origin */
      }
    }
    return new URL('.', location.href).href.replace(/\/+$/, '');
  }

  // ------------------------------------------------------------------------------------------
  // Requests: debounced, at most one in flight, answers to superseded drafts dropped.

  let timer = null;
  let inFlight = false;
  let sentSeq = 0; // the draft version last sent
  let draftSeq = 0; // the draft version on screen
  let lastSentKey = null;

  function onEdit() {
    draftSeq += 1;
    clearTimeout(timer);
    timer = setTimeout(fire, DEBOUNCE_MS);
  }

  function fire() {
    timer = null;
    if (inFlight) return; // the answer's handler sends the newest draft
    const draft = currentDraft();
    if (!draft) {
      lastSentKey = null;
      renderIdle();
      return;
    }
    if (draft.key === lastSentKey && draftSeq === sentSeq) return;
    send(draft, draftSeq);
  }

  function currentDraft() {
    const title = el.title.value;
    const body = el.body.value;
    if (!title.trim() && !body.trim()) return null;
    let payload;
    if (looksLikeHtml(body)) {
      payload = { html: '<h1>' + escapeHtml(title) + '</h1>\n' + body };
    } else {
      payload = { question: title + '\n\n' + body };
    }
    const text = title + '\n\n' + (payload.html !== undefined ? htmlToText(body) : body);
    return { payload, text, key: title + '\u0000' + body };
  }

  async function send(draft, seq) {
    inFlight = true;
    sentSeq = seq;
    lastSentKey = draft.key;
    el.status.textContent = 'Asking…';
    el.status.dataset.state = 'busy';
    let outcome;
    try {
      outcome = await postPredict(draft.payload);
    } catch (e) {
      outcome = { kind: 'network', error: e };
    }
    inFlight = false;
    if (seq !== draftSeq || timer !== null) {
      // The draft changed while this was in flight: drop the answer, ask about the newest draft.
      if (timer === null) fire();
      return;
    }
    render(outcome, draft);
  }

  // Cleared when the server cannot explain (a model without an explainer background, or a build
  // without the explainer): tags are still worth showing without their words.
  let explain = true;

  async function postPredict(payload) {
    const outcome = await postOnce(payload);
    if (explain && outcome.kind === 'http' && cannotExplain(outcome)) {
      explain = false;
      return postOnce(payload);
    }
    return outcome;
  }

  function cannotExplain(outcome) {
    const code = outcome.json && outcome.json.error && outcome.json.error.code;
    return outcome.status === 501 || code === 'no_explainer';
  }

  async function postOnce(payload) {
    const bytes = new TextEncoder().encode(JSON.stringify(payload));
    const headers = { 'content-type': 'application/json' };
    // CloudFront's origin access control signs the request to the function URL and needs the
    // payload's hash from the client. crypto.subtle exists on https and on localhost.
    if (window.crypto && crypto.subtle) {
      headers['x-amz-content-sha256'] = await sha256Hex(bytes);
    }
    const res = await fetch(api + '/predict?scores=true' + (explain ? '&explain=true' : ''), {
      method: 'POST',
      headers,
      body: bytes,
      cache: 'no-store',
    });
    const version = res.headers.get('x-model-version');
    if (version) showVersion(version);
    let json = null;
    try {
      json = await res.json();
    } catch (_) {
      json = null;
    }
    if (res.ok && json && Array.isArray(json.tags)) return { kind: 'ok', json };
    return { kind: 'http', status: res.status, json };
  }

  async function sha256Hex(bytes) {
    const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
    let hex = '';
    for (const b of digest) hex += b.toString(16).padStart(2, '0');
    return hex;
  }

  // ------------------------------------------------------------------------------------------
  // Rendering

  let explanations = {};
  let selected = null; // tag pinned by click / Enter
  let hovered = null; // tag under the pointer or focus

  function renderIdle() {
    el.status.textContent = 'Type a question to see suggested tags.';
    el.status.dataset.state = 'idle';
    clearChips();
    renderPreview('');
  }

  function clearChips() {
    el.tags.replaceChildren();
    el.near.hidden = true;
    explanations = {};
    selected = null;
    hovered = null;
    showWords();
  }

  function render(outcome, draft) {
    if (outcome.kind === 'network') {
      clearChips();
      el.status.dataset.state = 'error';
      el.status.textContent =
        'Cannot reach the tagger API at ' + api + ' (network failure, or this origin is not allowed by CORS).';
      return;
    }
    if (outcome.kind === 'http') {
      clearChips();
      el.status.dataset.state = 'error';
      const err = (outcome.json && outcome.json.error) || {};
      if (outcome.status === 503) {
        el.status.textContent = 'No model is loaded on the server yet: train and publish one, then try again.';
        showVersion(null);
      } else if (outcome.status >= 400 && outcome.status < 500) {
        el.status.textContent =
          'The server refused the question (' + outcome.status + (err.code ? ' ' + err.code : '') + '): ' +
          (err.message || 'no reason given') + '.';
      } else {
        el.status.textContent =
          'The server failed (' + outcome.status + '): ' + (err.message || 'no reason given') + '.';
      }
      return;
    }
    const json = outcome.json;
    explanations = json.explanations || {};
    const scores = json.scores || {};
    const keep = json.tags.includes(selected) ? selected : null;
    el.tags.replaceChildren();
    selected = keep;
    hovered = null;
    for (const tag of json.tags) el.tags.appendChild(chip(tag, probabilityOf(tag, scores)));
    el.status.dataset.state = 'ok';
    if (json.tags.length === 0) {
      el.status.textContent = 'No tag is confident enough yet: keep typing.';
    } else {
      // The chips list is itself a live region: the status gives the count only, so screen
      // readers do not hear each tag twice.
      el.status.textContent = json.tags.length + (json.tags.length === 1 ? ' tag suggested.' : ' tags suggested.');
    }
    showNear(json.tags, scores);
    renderPreview(draft.text);
    showWords();
  }

  function probabilityOf(tag, scores) {
    const e = explanations[tag];
    if (e && typeof e.probability === 'number') return e.probability;
    return typeof scores[tag] === 'number' ? scores[tag] : null;
  }

  // Attributions are small: keep two decimals unless that rounds to zero.
  function signed(v) {
    const a = Math.abs(v);
    return (v < 0 ? '\u2212' : '+') + a.toFixed(a !== 0 && a < 0.005 ? 3 : 2);
  }

  function percent(p) {
    return p === null ? '' : Math.round(p * 100) + '%';
  }

  function chip(tag, p) {
    const li = document.createElement('li');
    const b = document.createElement('button');
    b.type = 'button';
    b.className = 'chip';
    b.dataset.tag = tag;
    b.setAttribute('aria-pressed', String(tag === selected));
    const name = document.createElement('span');
    name.className = 'chip-name';
    name.textContent = tag;
    const prob = document.createElement('span');
    prob.className = 'chip-p';
    prob.textContent = percent(p);
    b.append(name, prob);
    b.setAttribute('aria-label', tag + (p === null ? '' : ', probability ' + percent(p)));
    b.addEventListener('mouseenter', () => setHovered(tag));
    b.addEventListener('mouseleave', () => setHovered(null));
    b.addEventListener('focus', () => setHovered(tag));
    b.addEventListener('blur', () => setHovered(null));
    b.addEventListener('click', () => {
      selected = selected === tag ? null : tag;
      for (const other of el.tags.querySelectorAll('.chip')) {
        other.setAttribute('aria-pressed', String(other.dataset.tag === selected));
      }
      showWords();
    });
    li.appendChild(b);
    return li;
  }

  function setHovered(tag) {
    hovered = tag;
    showWords();
  }

  function showNear(tags, scores) {
    const rest = Object.entries(scores)
      .filter(([t]) => !tags.includes(t))
      .sort((a, b) => b[1] - a[1])
      .slice(0, 3);
    if (rest.length === 0) {
      el.near.hidden = true;
      return;
    }
    el.near.hidden = false;
    el.near.textContent = 'Next: ' + rest.map(([t, p]) => t + ' ' + percent(p)).join(', ');
  }

  // The highlighted copy: one span per word, so a tag's words can be marked without re-rendering.
  function renderPreview(text) {
    el.preview.replaceChildren();
    if (!text.trim()) return;
    const shown = text.length > PREVIEW_CHARS ? text.slice(0, PREVIEW_CHARS) : text;
    const frag = document.createDocumentFragment();
    let last = 0;
    for (const m of shown.matchAll(WORD)) {
      const word = trimJoiners(m[0]);
      if (!word) continue;
      const start = m.index + m[0].indexOf(word);
      if (start > last) frag.appendChild(document.createTextNode(shown.slice(last, start)));
      const span = document.createElement('span');
      span.className = 'w';
      span.dataset.w = word.toLowerCase();
      span.textContent = word;
      frag.appendChild(span);
      last = start + word.length;
    }
    if (last < shown.length) frag.appendChild(document.createTextNode(shown.slice(last)));
    if (shown.length < text.length) {
      const more = document.createElement('span');
      more.className = 'truncated';
      more.textContent = '\n… (' + (text.length - shown.length).toLocaleString() + ' more characters not shown)';
      frag.appendChild(more);
    }
    el.preview.appendChild(frag);
  }

  function trimJoiners(w) {
    return w.replace(/[.-]+$/, '').replace(/^-+/, '').replace(/^\.+(?=\.)/, '');
  }

  function showWords() {
    const tag = hovered || selected;
    const e = tag ? explanations[tag] : null;
    const up = new Map();
    const down = new Map();
    if (e) {
      for (const [w, v] of e.positive || []) for (const part of String(w).toLowerCase().split(/\s+/)) up.set(part, v);
      for (const [w, v] of e.negative || []) for (const part of String(w).toLowerCase().split(/\s+/)) down.set(part, v);
    }
    for (const span of el.preview.querySelectorAll('span.w')) {
      const w = span.dataset.w;
      span.classList.toggle('up', up.has(w));
      span.classList.toggle('down', !up.has(w) && down.has(w));
    }
    el.whyTag.textContent = tag || '';
    el.whyWords.replaceChildren();
    if (!e) return;
    const list = (label, cls, pairs) => {
      if (!pairs || pairs.length === 0) return;
      const p = document.createElement('span');
      p.className = 'why-list';
      const l = document.createElement('span');
      l.className = 'why-label';
      l.textContent = label;
      p.appendChild(l);
      for (const [w, v] of pairs) {
        const s = document.createElement('span');
        s.className = cls;
        s.textContent = w + ' ' + signed(Number(v));
        p.appendChild(s);
      }
      el.whyWords.appendChild(p);
    };
    list('up', 'up', e.positive);
    list('down', 'down', e.negative);
  }

  // ------------------------------------------------------------------------------------------
  // HTML bodies: sent as HTML (the server strips it); shown as their text.

  function looksLikeHtml(s) {
    return /<\/?(p|div|pre|code|br|h[1-6]|ul|ol|li|a|b|i|em|strong|span|blockquote|table|img|script|style)\b[^>]*>/i.test(s);
  }

  function escapeHtml(s) {
    return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  }

  // DOMParser documents are inert: nothing in them runs or loads.
  function htmlToText(html) {
    const doc = new DOMParser().parseFromString(html, 'text/html');
    for (const n of doc.querySelectorAll('script, style, template, noscript')) n.remove();
    for (const n of doc.querySelectorAll('p, div, pre, li, br, h1, h2, h3, h4, h5, h6, tr, blockquote')) {
      n.append(doc.createTextNode('\n'));
    }
    return (doc.body ? doc.body.textContent : '').replace(/\n{3,}/g, '\n\n');
  }

  // ------------------------------------------------------------------------------------------
  // Model version

  function showVersion(version) {
    el.model.textContent = version ? 'model ' + version : 'no model loaded';
    el.model.dataset.state = version ? 'ok' : 'none';
  }

  async function loadModel() {
    try {
      const res = await fetch(api + '/model', { cache: 'no-store' });
      if (res.status === 503) {
        showVersion(null);
        el.status.dataset.state = 'error';
        el.status.textContent = 'No model is loaded on the server yet: train and publish one, then try again.';
        return;
      }
      const json = await res.json();
      if (res.ok && json.version) {
        const n = Array.isArray(json.labels) ? json.labels.length : 0;
        el.model.textContent = 'model ' + json.version + (n ? ' · ' + n + ' tags' : '');
        el.model.dataset.state = 'ok';
      } else {
        el.model.textContent = 'model: unknown (' + res.status + ')';
      }
    } catch (_) {
      el.model.textContent = 'model: cannot reach ' + api;
      el.model.dataset.state = 'none';
    }
  }

  // Say where the text goes, since ?api= can point elsewhere.
  $('api').textContent = api;
  el.title.addEventListener('input', onEdit);
  el.body.addEventListener('input', onEdit);
  document.getElementById('form').addEventListener('submit', (e) => {
    e.preventDefault();
    clearTimeout(timer);
    fire();
  });
  loadModel();
  if (currentDraft()) onEdit();
})();
