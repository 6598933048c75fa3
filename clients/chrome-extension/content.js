// tagger content script for Stack Overflow / Stack Exchange ask pages: reads the draft (title and
// body, Markdown textarea or rich-text editor), asks the service worker for tags while the user
// types, shows them beside the tag field, and adds one to the question's tags on click.
// Page text is only ever written into the page with textContent.
'use strict';

(function () {
  if (window.__taggerExtension) return;
  window.__taggerExtension = true;

  const DEBOUNCE_MS = 300;

  // Where the ask page keeps its fields. Overridable from the options page (chrome.storage
  // "selectors") when the site's markup changes.
  const DEFAULT_SELECTORS = {
    title: '#title, input[name="title"], .js-post-title-field',
    // The Markdown editor's textarea (also kept in sync by the rich-text editor on some pages).
    markdown: '#wmd-input, textarea[name="post-text"], textarea.js-post-body-field',
    // Stacks Editor's rich-text mode: a ProseMirror contenteditable.
    richText: '.js-stacks-editor-container .ProseMirror[contenteditable="true"], .s-prose.ProseMirror[contenteditable="true"], [contenteditable="true"].ProseMirror',
    // The visible input of the tag editor, where a tag is typed.
    tagInput: '#tageditor-replacing-tagnames--input, .js-tag-editor input[type="text"], .tag-editor input[type="text"], input.js-tag-editor',
    // The form field that holds the question's tags (space-separated).
    tagField: '#tagnames, input[name="tagnames"], input[name="tags"]',
    // The box the suggestions go after.
    tagContainer: '.js-tag-editor-container, .js-tag-editor, .tag-editor, #tag-editor',
  };
  let selectors = { ...DEFAULT_SELECTORS };

  // The first element matching a selector list, trying the alternatives in the order given (not
  // document order), so the most specific one wins.
  function first(selectorList) {
    for (const selector of String(selectorList).split(',')) {
      try {
        const found = document.querySelector(selector);
        if (found) return found;
      } catch (_) {
        /* a bad selector from the options page */
      }
    }
    return null;
  }

  function visible(node) {
    return !!node && node.getClientRects().length > 0 && getComputedStyle(node).visibility !== 'hidden';
  }

  // The draft as the API wants it: the rich-text editor's HTML when it is the one shown, else the
  // Markdown text.
  function readDraft() {
    const titleEl = first(selectors.title);
    const title = titleEl ? titleEl.value || '' : '';
    const rich = first(selectors.richText);
    const md = first(selectors.markdown);
    let payload;
    let key;
    if (rich && visible(rich) && !(md && visible(md))) {
      const html = rich.innerHTML;
      if (!title.trim() && !(rich.textContent || '').trim()) return null;
      payload = { html: '<h1>' + escapeHtml(title) + '</h1>\n' + html };
      key = title + '\u0000' + html;
    } else {
      const body = md ? md.value || '' : '';
      if (!title.trim() && !body.trim()) return null;
      payload = { question: title + '\n\n' + body };
      key = title + '\u0000' + body;
    }
    return { payload, key };
  }

  function escapeHtml(s) {
    return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  }

  function currentTags() {
    const field = first(selectors.tagField);
    const tags = new Set();
    if (field && field.value) for (const t of field.value.split(/[\s,;]+/)) if (t) tags.add(t.toLowerCase());
    return tags;
  }

  // ------------------------------------------------------------------------------------------
  // The panel beside the tag field

  let panel = null;
  const ui = {};

  function ensurePanel() {
    if (panel && panel.isConnected) return panel;
    panel = document.createElement('section');
    panel.className = 'tagger-ext';
    panel.setAttribute('aria-label', 'Suggested tags from tagger');
    const head = document.createElement('div');
    head.className = 'tagger-ext-head';
    const name = document.createElement('strong');
    name.textContent = 'tagger';
    ui.status = document.createElement('span');
    ui.status.className = 'tagger-ext-status';
    ui.status.setAttribute('role', 'status');
    ui.status.setAttribute('aria-live', 'polite');
    head.append(name, ui.status);
    ui.chips = document.createElement('div');
    ui.chips.className = 'tagger-ext-chips';
    ui.chips.setAttribute('aria-live', 'polite');
    ui.words = document.createElement('div');
    ui.words.className = 'tagger-ext-words';
    ui.connect = document.createElement('button');
    ui.connect.type = 'button';
    ui.connect.className = 'tagger-ext-connect';
    ui.connect.textContent = 'Set the tagger API…';
    ui.connect.hidden = true;
    ui.connect.addEventListener('click', () => chrome.runtime.sendMessage({ type: 'openOptions' }));
    panel.append(head, ui.chips, ui.words, ui.connect);

    const anchor = first(selectors.tagContainer) || (first(selectors.tagInput) || {}).parentElement;
    if (anchor && anchor.parentElement) {
      anchor.insertAdjacentElement('afterend', panel);
    } else {
      panel.classList.add('tagger-ext-floating');
      document.body.appendChild(panel);
    }
    return panel;
  }

  function setStatus(text, state) {
    ensurePanel();
    ui.status.textContent = text;
    panel.dataset.state = state;
    ui.connect.hidden = state !== 'not-connected';
  }

  let explanations = {};

  function showTags(json) {
    ensurePanel();
    explanations = json.explanations || {};
    const scores = json.scores || {};
    const have = currentTags();
    ui.chips.replaceChildren();
    ui.words.textContent = '';
    for (const tag of json.tags) {
      const b = document.createElement('button');
      b.type = 'button';
      b.className = 'tagger-ext-chip';
      b.dataset.tag = tag;
      const e = explanations[tag];
      const p = e && typeof e.probability === 'number' ? e.probability : scores[tag];
      const label = document.createElement('span');
      label.textContent = tag;
      b.appendChild(label);
      if (typeof p === 'number') {
        const pct = document.createElement('small');
        pct.textContent = Math.round(p * 100) + '%';
        b.appendChild(pct);
      }
      const added = have.has(tag.toLowerCase());
      b.disabled = added;
      b.title = added ? tag + ' is already in your tags' : 'Add ' + tag + ' to your tags';
      b.addEventListener('mouseenter', () => showWords(tag));
      b.addEventListener('focus', () => showWords(tag));
      b.addEventListener('mouseleave', () => showWords(null));
      b.addEventListener('blur', () => showWords(null));
      b.addEventListener('click', () => {
        if (addTag(tag)) {
          b.disabled = true;
          b.title = tag + ' is already in your tags';
        }
      });
      ui.chips.appendChild(b);
    }
    setStatus(
      json.tags.length ? 'suggests (click to add):' : 'no confident tag yet: keep typing',
      'ok'
    );
  }

  function showWords(tag) {
    ui.words.replaceChildren();
    const e = tag ? explanations[tag] : null;
    if (!e) return;
    const list = (label, cls, pairs) => {
      if (!pairs || !pairs.length) return;
      const line = document.createElement('div');
      line.textContent = label + ' ';
      for (const [w] of pairs.slice(0, 5)) {
        const s = document.createElement('span');
        s.className = cls;
        s.textContent = w;
        line.appendChild(s);
      }
      ui.words.appendChild(line);
    };
    list(tag + ' ↑', 'tagger-ext-up', e.positive);
    list('↓', 'tagger-ext-down', e.negative);
  }

  // Types the tag into the tag editor's input and sends the events its key handlers listen to
  // (input, then Enter), so the site's own code adds it as if the user had typed it.
  function addTag(tag) {
    const input = first(selectors.tagInput);
    if (!input) {
      setStatus('cannot find the tag field (see the selectors in the extension options)', 'error');
      return false;
    }
    input.focus();
    const setter = Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, 'value').set;
    setter.call(input, tag);
    input.dispatchEvent(new InputEvent('input', { bubbles: true, inputType: 'insertText', data: tag }));
    const key = { key: 'Enter', code: 'Enter', keyCode: 13, which: 13, bubbles: true, cancelable: true };
    input.dispatchEvent(new KeyboardEvent('keydown', key));
    input.dispatchEvent(new KeyboardEvent('keypress', key));
    input.dispatchEvent(new KeyboardEvent('keyup', key));
    if (!currentTags().has(tag.toLowerCase()) && input.value.trim() === tag) {
      // Editors that commit on a separator rather than Enter.
      setter.call(input, tag + ' ');
      input.dispatchEvent(new InputEvent('input', { bubbles: true, inputType: 'insertText', data: ' ' }));
    }
    return true;
  }

  // ------------------------------------------------------------------------------------------
  // Requests: debounced, one in flight, answers to superseded drafts dropped.

  let timer = null;
  let inFlight = false;
  let draftSeq = 0;
  let lastKey = null;

  function onEdit(event) {
    const t = event.target;
    if (!(t instanceof Element)) return;
    if (panel && panel.contains(t)) return;
    let inDraft = false;
    try {
      inDraft = !!t.closest(selectors.title + ',' + selectors.markdown + ',' + selectors.richText);
    } catch (_) {
      inDraft = false; // a bad selector from the options page
    }
    if (!inDraft) return;
    draftSeq += 1;
    clearTimeout(timer);
    timer = setTimeout(fire, DEBOUNCE_MS);
  }

  function fire() {
    timer = null;
    if (inFlight) return;
    const draft = readDraft();
    if (!draft) {
      lastKey = null;
      if (panel) {
        ui.chips.replaceChildren();
        ui.words.textContent = '';
        setStatus('type your question to see tags', 'idle');
      }
      return;
    }
    if (draft.key === lastKey) return;
    send(draft, draftSeq);
  }

  async function send(draft, seq) {
    inFlight = true;
    lastKey = draft.key;
    ensurePanel();
    if (panel.dataset.state !== 'ok') setStatus('asking…', 'busy');
    let reply;
    try {
      reply = await chrome.runtime.sendMessage({ type: 'predict', payload: draft.payload });
    } catch (e) {
      reply = { kind: 'network', message: 'The extension was reloaded: reload this page.' };
    }
    inFlight = false;
    if (seq !== draftSeq || timer !== null) {
      if (timer === null) fire();
      return;
    }
    render(reply);
  }

  function render(reply) {
    if (!reply) reply = { kind: 'network', message: 'no answer from the extension' };
    if (reply.kind === 'ok' && reply.json && Array.isArray(reply.json.tags)) {
      showTags(reply.json);
      return;
    }
    ui.chips && ui.chips.replaceChildren();
    lastKey = null; // retry this draft on the next edit
    if (reply.kind === 'not_connected') {
      setStatus('not connected. ' + reply.reason, 'not-connected');
    } else if (reply.kind === 'network') {
      setStatus('not connected: ' + reply.message, 'not-connected');
    } else if (reply.status === 503) {
      setStatus('the tagger API has no model loaded yet', 'error');
    } else {
      const err = (reply.json && reply.json.error) || {};
      setStatus('the tagger API answered ' + reply.status + ': ' + (err.message || 'no reason given'), 'error');
    }
  }

  document.addEventListener('input', onEdit, true);

  chrome.storage.onChanged.addListener((changes, area) => {
    if (area !== 'local') return;
    if (changes.selectors) selectors = { ...DEFAULT_SELECTORS, ...(changes.selectors.newValue || {}) };
    lastKey = null;
    clearTimeout(timer);
    timer = setTimeout(fire, 0);
  });

  chrome.storage.local.get('selectors').then(({ selectors: custom }) => {
    if (custom && typeof custom === 'object') selectors = { ...DEFAULT_SELECTORS, ...custom };
    // A draft restored by the site, or typed before this script ran.
    if (readDraft()) fire();
    else if (first(selectors.title) || first(selectors.markdown)) {
      chrome.runtime.sendMessage({ type: 'status' }).then((s) => {
        if (s && !s.connected) setStatus('not connected. ' + s.reason, 'not-connected');
        else setStatus('type your question to see tags', 'idle');
      }, () => {});
    }
  });
})();
