/*!
 * supportbot chat widget — plain JavaScript, no build step, no dependencies.
 *
 * Embed with one tag:
 *   <script src="https://support.example.com/widget.js" defer></script>
 * Options (data attributes on that tag):
 *   data-server  base URL of the supportbot server (default: origin of this script)
 *   data-locale  visitor language hint (default: navigator.language)
 *   data-title   panel title (default: "Chat with us")
 *   data-open    "true" to start with the panel open
 *
 * Talks to the server over one WebSocket (`/ws`), see docs/protocol.md.
 * Everything is rendered inside an open shadow root, so host-page CSS cannot leak in.
 * Message text is only ever set with textContent / DOM APIs, never as HTML.
 */
(function () {
  'use strict';
  if (window.SupportbotWidget) return; // embedded twice: keep the first one

  var MAX_CHARS = 4000;
  var TYPING_MAX_MS = 15000;
  var AGENT_TYPING_MS = 6000;   // an agent's "is typing" lasts this long after their last frame
  var TYPING_EVERY_MS = 2500;   // the visitor's own typing frames, at most this often

  // ---- configuration -------------------------------------------------------

  var script = document.currentScript ||
    [].slice.call(document.querySelectorAll('script[src]')).filter(function (s) {
      return /(widget|supportbot)\.js(\?|#|$)/.test(s.src);
    }).pop() || null;
  var data = (script && script.dataset) || {};

  function baseOf(src) {
    try { return new URL(src, location.href).origin; } catch (e) { return location.origin; }
  }
  var SERVER = (data.server || (script && script.src ? baseOf(script.src) : location.origin)).replace(/\/+$/, '');
  var WS_URL = SERVER.replace(/^http(s?):/i, 'ws$1:') + '/ws';
  var LOCALE = data.locale || navigator.language || 'en';
  var TITLE = data.title || 'Chat with us';
  var TOKEN_KEY = 'supportbot:' + SERVER + ':token';

  // UI strings (English; the bot's own replies come localised from the server).
  var T = {
    open: 'Open chat', close: 'Close chat', send: 'Send', input: 'Your message',
    placeholder: 'Type your message…', sending: 'Sending…', connecting: 'Connecting…',
    reconnecting: 'Reconnecting…', typing: 'Support is typing', unread: 'Open chat (new message)',
    agentTyping: '{name} is typing', queueStatus: 'You\'re number {position} in the queue · about {eta} min',
    queueWaiting: 'You\'re in the queue for a person',
    badEmail: 'Please enter an e-mail address like name@example.com.',
    badPhone: 'Please enter a phone number: 7 to 15 digits, e.g. +44 20 7946 0000.',
    readArticle: 'Read the full article: ', readFaq: 'More in our FAQ: ', related: 'Related articles',
    rateLegend: 'Rate this chat', rateComment: 'Anything you\'d like to add? (optional)', rateSubmit: 'Send rating',
    rateChange: 'Change my rating', rated: 'You rated this chat {score} of 5.', ratePick: 'Please choose a rating from 1 to 5.',
    rateClosed: 'This chat can no longer be rated.', helpfulQ: 'Did this help?', helpfulYes: 'Yes, this helped',
    helpfulNo: 'No, this didn\'t help', feedbackThanks: 'Thanks for your feedback.',
    who: { visitor: 'You', bot: 'Assistant', agent: 'Agent', system: 'Notice' },
    errors: {
      text_too_long: 'That message is too long. Please shorten it and send it again.',
      empty_text: 'Please type a message first.',
      rate_limited: 'You are sending messages very quickly; we will retry in a moment.',
      internal: 'Something went wrong on our side; retrying…',
      unknown_choice: 'That option is no longer available.'
    }
  };

  // Labels in the conversation's language, sent by the server in `welcome` (keys as in
  // flows/messages/<lang>.toml without the `ui_` prefix). A page's data-title still wins.
  var LABEL_KEYS = {
    open: 'open', close: 'close', open_unread: 'unread', input_label: 'input', placeholder: 'placeholder',
    send: 'send', connecting: 'connecting', reconnecting: 'reconnecting', typing: 'typing',
    read_article: 'readArticle', more_faq: 'readFaq', related: 'related', agent_typing: 'agentTyping',
    queue_status: 'queueStatus', queue_waiting: 'queueWaiting', invalid_email: 'badEmail', invalid_phone: 'badPhone',
    rate_legend: 'rateLegend', rate_comment: 'rateComment', rate_submit: 'rateSubmit', rate_change: 'rateChange',
    rated: 'rated', rate_pick: 'ratePick', rate_closed: 'rateClosed', helpful_q: 'helpfulQ', helpful_yes: 'helpfulYes',
    helpful_no: 'helpfulNo', feedback_thanks: 'feedbackThanks'
  };
  function adoptLabels(strings, lang) {
    if (!strings || typeof strings !== 'object') return;
    Object.keys(LABEL_KEYS).forEach(function (k) {
      if (typeof strings[k] === 'string') T[LABEL_KEYS[k]] = strings[k];
    });
    if (typeof strings.bot_name === 'string') T.who.bot = strings.bot_name;
    if (typeof strings.agent_name === 'string') T.who.agent = strings.agent_name;
    if (typeof strings.notice === 'string') T.who.system = strings.notice;
    if (typeof strings.empty_text === 'string') T.errors.empty_text = strings.empty_text;
    if (typeof strings.choice_gone === 'string') T.errors.unknown_choice = strings.choice_gone;
    if (!data.title && typeof strings.title === 'string') TITLE = strings.title;
    if (ui.panel && typeof lang === 'string') ui.panel.setAttribute('lang', lang);
    if (ui.panel) applyLabels();
  }
  function applyLabels() {
    ui.panel.setAttribute('aria-label', TITLE);
    ui.title.textContent = TITLE;
    ui.x.setAttribute('aria-label', T.close);
    ui.launcher.setAttribute('aria-label', isOpen() ? T.close : T.open);
    ui.input.setAttribute('aria-label', T.input);
    ui.input.placeholder = T.placeholder;
    ui.send.setAttribute('aria-label', T.send);
    if (!ui.typing.hidden) showTyping(true, typingName);
    renderQueue();
  }

  // "{name} is typing" → "Ann is typing" (values are plain text, set with textContent).
  function fmt(s, args) {
    return s.replace(/\{(\w+)\}/g, function (m, k) { return args[k] != null ? String(args[k]) : m; });
  }

  // ---- storage (localStorage may be unavailable, e.g. in strict privacy modes) --

  var memToken = null;
  function getToken() {
    try { return localStorage.getItem(TOKEN_KEY); } catch (e) { return memToken; }
  }
  function setToken(t) {
    memToken = t;
    try { localStorage.setItem(TOKEN_KEY, t); } catch (e) { /* memory only */ }
  }

  // Ratings and votes given in this browser, so a reload shows them as given.
  function remember(key, value) {
    try { localStorage.setItem(TOKEN_KEY + ':' + key, JSON.stringify(value)); } catch (e) { /* not kept */ }
  }
  function recall(key) {
    try { return JSON.parse(localStorage.getItem(TOKEN_KEY + ':' + key) || 'null'); } catch (e) { return null; }
  }

  // ---- styles (scoped to the shadow root) -----------------------------------

  var CSS = [
    ':host{all:initial}',
    '*,*::before,*::after{box-sizing:border-box}',
    '[hidden]{display:none!important}',
    '.root{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;color:#1b1f1d;',
    '  -webkit-font-smoothing:antialiased;text-align:left;letter-spacing:normal;text-transform:none}',
    'button,textarea{font:inherit;color:inherit;margin:0}',
    ':focus-visible{outline:3px solid #1a56db;outline-offset:2px}',
    '.sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}',
    // launcher
    '.launcher{position:fixed;right:20px;bottom:20px;z-index:2147483000;width:56px;height:56px;border:0;',
    '  border-radius:50%;background:#1f5f4a;color:#fff;cursor:pointer;display:grid;place-items:center;',
    '  box-shadow:0 4px 14px rgba(0,0,0,.25)}',
    '.launcher:hover{background:#174a39}',
    '.launcher svg{width:26px;height:26px;fill:currentColor}',
    '.launcher .ic-close,.launcher[aria-expanded=true] .ic-chat{display:none}',
    '.launcher[aria-expanded=true] .ic-close{display:block}',
    '.launcher.unread::after{content:"";position:absolute;top:4px;right:4px;width:12px;height:12px;',
    '  border-radius:50%;background:#d92d20;border:2px solid #fff}',
    // panel
    '.panel{position:fixed;right:20px;bottom:88px;z-index:2147483000;width:370px;height:560px;',
    '  max-width:calc(100vw - 24px);max-height:calc(100vh - 108px);display:flex;flex-direction:column;',
    '  background:#fff;border-radius:12px;overflow:hidden;box-shadow:0 12px 40px rgba(0,0,0,.28)}',
    '@media (max-width:480px){.panel{right:0;bottom:0;width:100vw;max-width:100vw;height:100%;',
    '  max-height:100%;border-radius:0}.launcher[aria-expanded=true]{display:none}}',
    'header{display:flex;align-items:center;gap:8px;padding:12px 12px 12px 16px;background:#1f5f4a;color:#fff}',
    'h2{flex:1;margin:0;font-size:16px;font-weight:600;line-height:1.3}',
    '.x{width:32px;height:32px;border:0;border-radius:6px;background:transparent;color:#fff;cursor:pointer;',
    '  font-size:22px;line-height:1}',
    '.x:hover{background:rgba(255,255,255,.15)}',
    '.x:focus-visible{outline-color:#fff}',
    '.status{padding:6px 16px;background:#fff4d6;color:#5c4200;font-size:13px;border-bottom:1px solid #f0dca0}',
    '.scroll{flex:1;overflow-y:auto;padding:14px 12px 6px;background:#fafbfa;overscroll-behavior:contain}',
    '.log,.outbox{display:flex;flex-direction:column;gap:10px}',
    '.outbox:not(:empty){margin-top:10px}',
    // messages
    '.msg{display:flex;flex-direction:column;align-items:flex-start;max-width:100%}',
    '.bubble{max-width:86%;padding:8px 12px;border-radius:14px;border-bottom-left-radius:4px;',
    '  background:#eceeed;overflow-wrap:anywhere}',
    '.text p{margin:0;white-space:pre-wrap}',
    '.text p+p{margin-top:8px}',
    '.bubble a{color:#174a9c}',
    '.from-visitor{align-items:flex-end}',
    '.from-visitor .bubble{background:#1f5f4a;color:#fff;border-radius:14px;border-bottom-right-radius:4px}',
    '.from-visitor .bubble a{color:#fff}',
    '.from-agent .bubble{background:#fff;border:1px solid #1f5f4a;border-left-width:4px}',
    '.who{font-size:12px;font-weight:600;color:#1f5f4a;margin:0 0 2px 4px}',
    '.from-system{align-items:center}',
    '.from-system .bubble{max-width:92%;padding:4px 12px;border-radius:10px;background:#e8ecea;color:#3d4541;',
    '  font-size:13px;text-align:center}',
    '.from-visitor.pending .bubble{background:#3b7a64}',
    '.meta{font-size:12px;color:#5a625e;margin:2px 6px 0}',
    '.src{display:inline-block;margin-top:6px;font-size:13px;font-weight:600}',
    '.arts{margin:6px 0 0;padding:0 0 0 18px;font-size:13px}',
    '.arts-h{margin-top:6px;font-size:12px;font-weight:600}',
    '.qr{display:flex;flex-wrap:wrap;gap:6px;margin-top:6px;max-width:86%}',
    '.qr button{padding:6px 12px;border:1px solid #1f5f4a;border-radius:16px;background:#fff;color:#1f5f4a;',
    '  cursor:pointer;font-size:13px;font-weight:600}',
    '.qr button:hover:not(:disabled){background:#e6f0ec}',
    '.qr button:disabled{cursor:default;opacity:.6}',
    // rating control and "did this help?"
    '.rate-wrap{align-self:stretch}',
    '.rate,.rate-done{display:block;margin-top:6px;width:86%;padding:10px 12px;border:1px solid #cfe0d8;border-radius:12px;background:#fff}',
    '.rate fieldset{border:0;margin:0;padding:0;min-width:0}',
    '.rate legend{padding:0;font-size:13px;font-weight:600;margin-bottom:6px}',
    '.scale{display:flex;gap:4px}',
    '.scale label{flex:1 1 0;min-width:0;position:relative;display:flex}',
    '.scale input{position:absolute;opacity:0;width:1px;height:1px}',
    '.scale span{flex:1;display:flex;align-items:center;justify-content:center;padding:6px 2px;border:1px solid #1f5f4a;border-radius:8px;text-align:center;',
    '  font-size:12px;font-weight:600;color:#1f5f4a;cursor:pointer;line-height:1.25}',
    '.scale input:checked+span{background:#1f5f4a;color:#fff}',
    '.scale input:focus-visible+span{outline:3px solid #1a56db;outline-offset:2px}',
    '.rate-comment{display:block;width:100%;margin-top:8px;padding:7px 10px;border:1px solid #8a938f;border-radius:8px;',
    '  font:inherit;font-size:13px}',
    '.rate .primary{margin-top:8px;padding:6px 14px;border:0;border-radius:8px;background:#1f5f4a;color:#fff;',
    '  font-weight:600;cursor:pointer}',
    '.rate-done .link{padding:0;border:0;background:none;color:#174a9c;text-decoration:underline;cursor:pointer;font-size:13px}',
    '.rate-done p{margin:0 0 2px;font-size:13px}',
    '.rate .rerr{margin:6px 0 0;font-size:13px;color:#b42318}',
    '.rate .rerr:empty{display:none}',
    '.fb{display:flex;align-items:center;gap:4px;margin:3px 4px 0;font-size:12px;color:#5a625e}',
    '.fb button{display:grid;place-items:center;width:28px;height:26px;border:1px solid #c5ccc8;border-radius:6px;',
    '  background:#fff;color:#3d4541;cursor:pointer}',
    '.fb button svg{width:15px;height:15px;fill:currentColor}',
    '.fb .no svg{transform:scaleY(-1)}',
    '.fb button[aria-pressed=true]{background:#1f5f4a;border-color:#1f5f4a;color:#fff}',
    '.fb button:disabled{cursor:default}',
    '.fb button:disabled:not([aria-pressed=true]){opacity:.45}',
    '.notice{margin-top:8px;padding:6px 10px;border-radius:6px;background:#fdecea;color:#8a1c12;font-size:13px}',
    // typing dots
    '.typing{display:inline-flex;gap:4px;margin-top:10px;padding:10px 12px;border-radius:14px;background:#eceeed}',
    '.typing .tl{align-self:center;margin-right:4px;font-size:13px;color:#3d4541}',
    '.typing i{align-self:center;width:7px;height:7px;border-radius:50%;background:#5a625e;animation:sb-dot 1.2s infinite}',
    '.typing i:nth-child(3){animation-delay:.2s}.typing i:nth-child(4){animation-delay:.4s}',
    '@keyframes sb-dot{0%,60%,100%{opacity:.3;transform:none}30%{opacity:1;transform:translateY(-3px)}}',
    '@media (prefers-reduced-motion:reduce){.typing i{animation:none}}',
    // queue status bar, inline input error
    '.qbar{padding:8px 12px;border-top:1px solid #cfe0d8;background:#eef6f2}',
    '.qbar p{margin:0;font-size:13px;font-weight:600;color:#174a39}',
    '.qbar .qr{max-width:none}',
    '.err{padding:8px 12px 0;background:#fff;color:#b42318;font-size:13px}',
    'textarea[aria-invalid=true]{border-color:#b42318}',
    // composer
    'form{display:flex;align-items:flex-end;gap:8px;padding:10px 12px;border-top:1px solid #dfe3e1;background:#fff}',
    'textarea{flex:1;resize:none;min-height:40px;max-height:120px;padding:9px 12px;border:1px solid #8a938f;',
    '  border-radius:10px;background:#fff;line-height:1.45}',
    'textarea:focus-visible{outline-offset:0}',
    '.send{width:40px;height:40px;flex:none;border:0;border-radius:10px;background:#1f5f4a;color:#fff;cursor:pointer;',
    '  display:grid;place-items:center}',
    '.send svg{width:20px;height:20px;fill:currentColor}',
    '.count{padding:0 12px 6px;font-size:12px;color:#5a625e;text-align:right;background:#fff}'
  ].join('\n');

  // Static markup only: no message data ever goes through innerHTML.
  var HTML =
    '<div class="root">' +
    '<div class="panel" role="dialog" hidden>' +
    '<header><h2 class="title"></h2><button type="button" class="x"></button></header>' +
    '<div class="status" role="status" hidden></div>' +
    '<div class="scroll">' +
    '<div class="log" role="log" aria-live="polite"></div>' +
    '<div class="outbox"></div>' +
    '<div class="notices"></div>' +
    '<div class="typing" role="status" hidden><span class="sr"></span>' +
    '<i aria-hidden="true"></i><i aria-hidden="true"></i><i aria-hidden="true"></i></div>' +
    '</div>' +
    '<div class="qbar" hidden><p class="qtext" id="sb-q" role="status" aria-live="polite"></p>' +
    '<div class="qr" role="group" aria-labelledby="sb-q"></div></div>' +
    '<div class="err" id="sb-err" role="alert" hidden></div>' +
    '<form novalidate><textarea rows="1"></textarea>' +
    '<button type="submit" class="send"><svg viewBox="0 0 24 24" aria-hidden="true">' +
    '<path d="M3.4 20.4 21 12 3.4 3.6 3.4 10l12.6 2-12.6 2z"/></svg></button></form>' +
    '<div class="count" hidden></div>' +
    '</div>' +
    '<button type="button" class="launcher" aria-expanded="false">' +
    '<svg class="ic-chat" viewBox="0 0 24 24" aria-hidden="true"><path d="M4 3h16a2 2 0 0 1 2 2v11a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2z"/></svg>' +
    '<svg class="ic-close" viewBox="0 0 24 24" aria-hidden="true"><path d="M6.4 5 12 10.6 17.6 5 19 6.4 13.4 12l5.6 5.6-1.4 1.4-5.6-5.6L6.4 19 5 17.6 10.6 12 5 6.4z"/></svg>' +
    '</button>' +
    '</div>';

  // ---- small DOM helpers ----------------------------------------------------

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text != null) e.textContent = text;
    return e;
  }

  // Parses an http(s) URL (relative ones against the server); null for anything else.
  function safeUrl(raw, base) {
    try {
      var u = new URL(String(raw), base || SERVER + '/');
      return u.protocol === 'http:' || u.protocol === 'https:' ? u.href : null;
    } catch (e) { return null; }
  }

  function link(href, text, cls) {
    var a = el('a', cls, text);
    a.href = href;
    a.target = '_blank';
    a.rel = 'noopener noreferrer';
    return a;
  }

  // Appends text to `parent`, turning bare http(s) URLs into links.
  function appendLinkified(parent, text) {
    var re = /\bhttps?:\/\/[^\s<>"]+/gi, last = 0, m;
    while ((m = re.exec(text))) {
      var url = m[0];
      // Trailing punctuation belongs to the sentence, not the URL.
      while (/[.,;:!?'\]]$/.test(url) ||
             (/\)$/.test(url) && url.split(')').length > url.split('(').length)) {
        url = url.slice(0, -1);
      }
      var href = safeUrl(url);
      if (!href) continue;
      parent.appendChild(document.createTextNode(text.slice(last, m.index)));
      parent.appendChild(link(href, url));
      last = m.index + url.length;
      re.lastIndex = last;
    }
    parent.appendChild(document.createTextNode(text.slice(last)));
  }

  // Plain text → paragraphs (blank lines) with single newlines kept (pre-wrap).
  function renderText(text) {
    var box = el('div', 'text');
    String(text || '').split(/\n[ \t]*\n\s*/).forEach(function (para) {
      var p = el('p');
      appendLinkified(p, para);
      box.appendChild(p);
    });
    return box;
  }

  // ---- state ----------------------------------------------------------------

  var ui = {};           // elements
  var ws = null;         // current socket
  var greeted = false;   // welcome received on the current socket
  var started = false;   // a connection has been wanted at least once
  var attempt = 0;       // reconnect back-off exponent
  var timer = 0;         // reconnect timer
  var lastSeq = 0;       // highest seq rendered (0 on a fresh page: the server replays all)
  var liveFrom = 0;      // welcome.last_seq: messages above it are new, not replayed
  var queue = [];        // unacknowledged outgoing frames: {id, frame, el}
  var activeQr = null;   // quick replies of the newest message
  var typingTimer = 0;
  var typingName = '';   // the agent shown typing ('' = the bot)
  var retryTimer = 0;
  // Human handoff: the queue (from the system line offering leave_queue, then `queue` frames),
  // whether an agent holds the chat, and the offline form's address being asked for.
  var hq = { on: false, pos: 0, eta: 0, acts: null, leaving: null };
  var agentOn = false;
  var expect = null;     // 'email' | 'phone' after the visitor chose contact_email / contact_phone
  var lastTyping = 0;    // when the visitor's last typing frame went out

  // ---- building the UI ------------------------------------------------------

  function build() {
    var host = document.createElement('div');
    host.id = 'supportbot-host';
    var root = host.attachShadow({ mode: 'open' });
    var style = document.createElement('style');
    style.textContent = CSS;
    root.appendChild(style);
    var tpl = document.createElement('template');
    tpl.innerHTML = HTML;
    root.appendChild(tpl.content);
    var q = function (s) { return root.querySelector(s); };
    ui = {
      root: root, panel: q('.panel'), title: q('.title'), x: q('.x'), status: q('.status'),
      scroll: q('.scroll'), log: q('.log'), outbox: q('.outbox'), notices: q('.notices'),
      typing: q('.typing'), form: q('form'), input: q('textarea'), send: q('.send'),
      count: q('.count'), launcher: q('.launcher'), qbar: q('.qbar'), qtext: q('.qtext'),
      qacts: q('.qbar .qr'), err: q('.err')
    };
    ui.x.textContent = '×';
    ui.input.maxLength = MAX_CHARS;
    applyLabels();

    ui.launcher.addEventListener('click', function () { isOpen() ? close() : open(); });
    ui.x.addEventListener('click', close);
    q('.root').addEventListener('keydown', function (e) {
      if (e.key === 'Escape' && isOpen()) { e.preventDefault(); close(); }
    });
    ui.form.addEventListener('submit', function (e) { e.preventDefault(); submit(); });
    ui.input.addEventListener('keydown', function (e) {
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); submit(); }
    });
    ui.input.addEventListener('input', function () { autosize(); showError(''); typing(); });
    document.body.appendChild(host);
  }

  function autosize() {
    var i = ui.input, sc = ui.scroll;
    var atBottom = sc.scrollHeight - sc.scrollTop - sc.clientHeight < 40;
    i.style.height = 'auto';
    i.style.height = Math.min(i.scrollHeight + 2, 120) + 'px';
    if (atBottom) scrollDown(); // the log just got shorter: keep the newest message in view
    var n = i.value.length;
    ui.count.hidden = n < MAX_CHARS * 0.9;
    ui.count.textContent = n + ' / ' + MAX_CHARS;
  }

  function isOpen() { return !ui.panel.hidden; }

  function open() {
    ui.panel.hidden = false;
    ui.launcher.setAttribute('aria-expanded', 'true');
    ui.launcher.setAttribute('aria-label', T.close);
    ui.launcher.classList.remove('unread');
    if (!started) connect();
    scrollDown();
    ui.input.focus();
  }

  function close() {
    var focusInside = !!ui.root.activeElement; // only move focus that is ours
    ui.panel.hidden = true;
    ui.launcher.setAttribute('aria-expanded', 'false');
    ui.launcher.setAttribute('aria-label', T.open);
    if (focusInside) ui.launcher.focus();
  }

  function scrollDown() { ui.scroll.scrollTop = ui.scroll.scrollHeight; }

  function setStatus(text) {
    ui.status.textContent = text;
    ui.status.hidden = !text;
  }

  function notice(text) {
    var n = el('div', 'notice', text);
    n.setAttribute('role', 'alert');
    ui.notices.appendChild(n);
    scrollDown();
  }

  // The bot's dots after the visitor sends (name ''), or "Ann is typing…" for an agent.
  function showTyping(on, name) {
    clearTimeout(typingTimer);
    typingName = name || '';
    var label = typingName ? fmt(T.agentTyping, { name: typingName }) : T.typing;
    var span = ui.typing.firstChild;
    span.className = typingName ? 'tl' : 'sr';
    span.textContent = label + '…';
    ui.typing.setAttribute('aria-label', label);
    ui.typing.hidden = !on;
    if (on) {
      typingTimer = setTimeout(function () { ui.typing.hidden = true; }, typingName ? AGENT_TYPING_MS : TYPING_MAX_MS);
      scrollDown();
    }
  }

  function showError(text) {
    if (ui.err.textContent === text) return;
    ui.err.textContent = text;
    ui.err.hidden = !text;
    if (text) {
      ui.input.setAttribute('aria-invalid', 'true');
      ui.input.setAttribute('aria-describedby', 'sb-err');
    } else {
      ui.input.removeAttribute('aria-invalid');
      ui.input.removeAttribute('aria-describedby');
    }
  }

  // ---- human handoff --------------------------------------------------------

  function renderQueue() {
    ui.qbar.hidden = !hq.on;
    if (!hq.on) return;
    var text = hq.pos ? fmt(T.queueStatus, { position: hq.pos, eta: hq.eta }) : T.queueWaiting;
    if (ui.qtext.textContent !== text) ui.qtext.textContent = text; // unchanged: nothing re-announced
    if (ui.qacts.acts === hq.acts) return;
    ui.qacts.acts = hq.acts;
    ui.qacts.textContent = '';
    (hq.acts || []).forEach(function (r) {
      var btn = el('button', null, r.label || r.value);
      btn.type = 'button';
      btn.addEventListener('click', function () {
        if (hq.leaving) return;
        [].forEach.call(ui.qacts.children, function (x) { x.disabled = true; });
        hq.leaving = sendFrame({ type: 'choice', value: String(r.value) }, r.label || r.value);
        ui.input.focus();
      });
      ui.qacts.appendChild(btn);
    });
    ui.qacts.hidden = !ui.qacts.firstChild;
  }

  function endQueue() {
    if (hq.on && ui.root.activeElement && ui.qbar.contains(ui.root.activeElement)) ui.input.focus();
    hq = { on: false, pos: 0, eta: 0, acts: null, leaving: null };
    renderQueue();
  }

  // What a message means for the handoff state. Returns true when its quick replies are the
  // queue's actions (shown in the status bar, not under the message).
  function handoffState(m, from, qrs) {
    var isQueueLine = from === 'system' && qrs.some(function (r) { return r.value === 'leave_queue'; });
    if (isQueueLine) {
      // "You're number 2 in the Support queue. Estimated wait: about 4 min.": the position and
      // the estimate are the last two numbers in every language's line.
      var n = String(m.text || '').match(/\d+/g) || [];
      hq = { on: true, pos: n.length > 1 ? +n[n.length - 2] : 0, eta: n.length > 1 ? +n[n.length - 1] : 0,
        acts: qrs, leaving: null };
      agentOn = false;
    } else if (from === 'agent') {
      endQueue();
      agentOn = true;
    } else if (from === 'system') {
      expect = null;
      // A line that answers nothing is news (an agent joined, closed, handed back,
      // transferred); one answering the visitor right after they left ends the queue too.
      // "Our team has your conversation" answers a message and keeps the queue.
      if (hq.on && (hq.leaving || !m.reply_to)) {
        agentOn = !hq.leaving;
        endQueue();
      } else if (!m.reply_to) {
        agentOn = false;
      }
    } else if (from === 'bot' && hq.leaving) {
      endQueue(); // "leave my contact details": the bot asks how to reach them
    }
    if (from === 'bot' && qrs.length) expect = null;
    renderQueue();
    setHint();
    return isQueueLine;
  }

  // The input's keyboard hint while the offline form asks for an address or a number.
  function setHint() {
    var i = ui.input, mode = expect === 'email' ? 'email' : expect === 'phone' ? 'tel' : '';
    if ((i.getAttribute('inputmode') || '') === mode) return;
    if (mode) {
      i.setAttribute('inputmode', mode);
      i.setAttribute('autocomplete', mode);
      i.setAttribute('autocapitalize', 'off');
      i.spellcheck = false;
    } else {
      ['inputmode', 'autocomplete', 'autocapitalize', 'spellcheck'].forEach(function (a) { i.removeAttribute(a); });
    }
  }

  // The server's rules (bot/engine/handoff.rs valid_email / valid_phone), never looser.
  function validContact(kind, t) {
    if (kind === 'email') {
      return /^[^\s@]{1,64}@[^\s@.](?:[^\s@]*[^\s@.])?$/.test(t) && /@.+\../.test(t) && t.split('@')[1].length <= 253;
    }
    var digits = t.replace(/\D/g, '').length;
    return /^\+?[\d\s().-]+$/.test(t) && digits >= 7 && digits <= 15;
  }

  // The visitor is typing: tell the person (queued or holding the chat), at most every 2.5 s.
  function typing() {
    var now = Date.now();
    if ((hq.on || agentOn) && ui.input.value.trim() && greeted && ws && ws.readyState === 1 &&
        now - lastTyping >= TYPING_EVERY_MS) {
      lastTyping = now;
      ws.send('{"type":"typing"}');
    }
  }

  // ---- rendering messages ---------------------------------------------------

  function retireQuickReplies() {
    if (activeQr) activeQr.remove();
    activeQr = null;
  }

  function bubble(from, text, name) {
    var wrap = el('div', 'msg from-' + from);
    var b = el('div', 'bubble');
    var who = name || T.who[from] || from;
    b.appendChild(el('span', 'sr', who + ': '));
    b.appendChild(renderText(text));
    if (from === 'agent') wrap.appendChild(el('div', 'who', who));
    wrap.appendChild(b);
    return wrap;
  }

  function render(m) {
    if (typeof m.seq !== 'number' || m.seq <= lastSeq) return; // already shown
    lastSeq = m.seq;
    var from = T.who[m.from] ? m.from : 'system';
    if (m.client_id) ack(m.client_id);
    retireQuickReplies();
    var qrs = (Array.isArray(m.quick_replies) ? m.quick_replies : []).filter(function (r) { return r && r.value != null; });
    if (handoffState(m, from, qrs)) qrs = [];

    var name = from === 'agent' && m.author && typeof m.author.name === 'string' ? m.author.name : '';
    var wrap = bubble(from, m.text, name);
    wrap.setAttribute('data-seq', m.seq);
    var b = wrap.lastChild;
    if (m.at) {
      var d = new Date(m.at);
      if (!isNaN(d)) b.title = d.toLocaleString();
    }

    var src = m.source && safeUrl(m.source.url);
    if (src) {
      var label = (m.source.kind === 'faq' ? T.readFaq : T.readArticle) + (m.source.title || '');
      b.appendChild(link(src, label, 'src'));
    }
    var arts = (Array.isArray(m.articles) ? m.articles : []).filter(function (a) { return a && safeUrl(a.url); });
    if (arts.length) {
      b.appendChild(el('div', 'arts-h', T.related));
      var ul = el('ul', 'arts');
      arts.forEach(function (a) {
        var li = el('li');
        li.appendChild(link(safeUrl(a.url), a.title || a.url));
        ul.appendChild(li);
      });
      b.appendChild(ul);
    }
    if (m.rating === true && from === 'bot') {
      wrap.appendChild(ratingControl(m.seq, qrs));
      qrs = [];
    }
    if (src && from === 'bot') wrap.appendChild(thumbs(m.seq));
    if (qrs.length) {
      var qr = el('div', 'qr');
      qr.setAttribute('role', 'group');
      qrs.forEach(function (r) {
        var btn = el('button', null, r.label || r.value);
        btn.type = 'button';
        btn.addEventListener('click', function () {
          [].forEach.call(qr.querySelectorAll('button'), function (x) { x.disabled = true; });
          expect = r.value === 'contact_email' ? 'email' : r.value === 'contact_phone' ? 'phone' : null;
          setHint();
          ui.input.focus(); // the used buttons go: keep keyboard focus in the widget
          sendFrame({ type: 'choice', value: String(r.value) }, r.label || r.value);
        });
        qr.appendChild(btn);
      });
      wrap.appendChild(qr);
      activeQr = qr;
    }

    ui.log.appendChild(wrap);
    if (from !== 'visitor') showTyping(false);
    if (from === 'bot' || from === 'agent') {
      if (m.seq > liveFrom && !isOpen()) {
        ui.launcher.classList.add('unread');
        ui.launcher.setAttribute('aria-label', T.unread);
      }
    }
    scrollDown();
  }

  // A frame that is not a message (rate, feedback): sent when connected, its error
  // handed to `onFail`. Returns false when it could not go out now.
  var controls = {};
  function sendControl(frame, onFail) {
    if (!(ws && greeted && ws.readyState === 1)) { notice(T.reconnecting); return false; }
    frame.client_id = newClientId();
    controls[frame.client_id] = onFail;
    ws.send(JSON.stringify(frame));
    return true;
  }

  var THUMB = 'M2 21h4V9H2v12zm20-11a2 2 0 0 0-2-2h-6.3l1-4.6v-.3c0-.4-.2-.8-.4-1.1L13.2 1 6.6 7.6C6.2 8 6 8.5 6 9v10a2 2 0 0 0 2 2h9c.8 0 1.5-.5 1.8-1.2l3-7.1c.1-.2.2-.5.2-.7v-2z';
  function icon(path) {
    var NS = 'http://www.w3.org/2000/svg';
    var svg = document.createElementNS(NS, 'svg');
    svg.setAttribute('viewBox', '0 0 24 24');
    svg.setAttribute('aria-hidden', 'true');
    var p = document.createElementNS(NS, 'path');
    p.setAttribute('d', path);
    svg.appendChild(p);
    return svg;
  }

  // "Did this help?" under a knowledge-base answer: one vote, kept in this browser.
  function thumbs(seq) {
    var box = el('div', 'fb');
    box.setAttribute('role', 'group');
    var q = el('span', null, T.helpfulQ);
    box.appendChild(q);
    var said = el('span', 'sr');
    said.setAttribute('role', 'status');
    var key = 'fb:' + getToken() + ':' + seq;
    var buttons = [true, false].map(function (yes) {
      var b = el('button', yes ? 'yes' : 'no');
      b.type = 'button';
      b.setAttribute('aria-label', yes ? T.helpfulYes : T.helpfulNo);
      b.title = yes ? T.helpfulYes : T.helpfulNo;
      b.setAttribute('aria-pressed', 'false');
      b.appendChild(icon(THUMB));
      b.addEventListener('click', function () {
        var sent = sendControl({ type: 'feedback', seq: seq, helpful: yes }, function (f) {
          if (f.code === 'already_voted') return;
          done(null);
          buttons.forEach(function (x) { x.disabled = false; });
          notice(f.message || T.errors.internal);
        });
        if (sent) { remember(key, yes); done(yes); }
      });
      box.appendChild(b);
      return b;
    });
    function done(yes) {
      buttons.forEach(function (x, i) {
        x.disabled = yes !== null;
        x.setAttribute('aria-pressed', String(yes !== null && (i === 0) === yes));
      });
      q.textContent = yes === null ? T.helpfulQ : T.feedbackThanks;
      said.textContent = yes === null ? '' : T.feedbackThanks;
    }
    box.appendChild(said);
    var given = recall(key);
    if (given === true || given === false) done(given);
    return box;
  }

  // The 1–5 rating with an optional comment. After sending, it says what was given and
  // lets the visitor change it for a few minutes (the server refuses later changes).
  var RATE_CHANGE_MS = 5 * 60 * 1000;
  function ratingControl(seq, qrs) {
    var key = 'rated:' + getToken() + ':' + seq;
    var box = el('form', 'rate');
    box.noValidate = true;
    var fs = el('fieldset');
    fs.appendChild(el('legend', null, T.rateLegend));
    var scale = el('div', 'scale');
    var name = 'sb-rate-' + seq;
    var radios = [1, 2, 3, 4, 5].map(function (n) {
      var label = el('label');
      var input = el('input');
      input.type = 'radio';
      input.name = name;
      input.value = String(n);
      label.appendChild(input);
      var r = qrs[n - 1];
      label.appendChild(el('span', null, (r && r.label) || String(n)));
      scale.appendChild(label);
      return input;
    });
    fs.appendChild(scale);
    box.appendChild(fs);
    // One line, so the composer stays the widget's only textarea.
    var comment = el('input', 'rate-comment');
    comment.type = 'text';
    comment.maxLength = 1000;
    comment.placeholder = T.rateComment;
    comment.setAttribute('aria-label', T.rateComment);
    box.appendChild(comment);
    var submit = el('button', 'primary', T.rateSubmit);
    submit.type = 'submit';
    box.appendChild(submit);
    var err = el('p', 'rerr');
    err.setAttribute('role', 'alert');
    box.appendChild(err);
    var doneBox = el('div', 'rate-done');
    var doneText = el('p');
    doneText.setAttribute('role', 'status');
    var change = el('button', 'link', T.rateChange);
    change.type = 'button';
    doneBox.appendChild(doneText);
    doneBox.appendChild(change);
    var outer = el('div', 'rate-wrap');
    outer.appendChild(box);
    outer.appendChild(doneBox);

    function show(given) {
      box.hidden = !!given;
      doneBox.hidden = !given;
      if (!given) return;
      doneText.textContent = fmt(T.rated, { score: given.score });
      change.hidden = Date.now() - given.first > RATE_CHANGE_MS;
    }
    box.addEventListener('submit', function (e) {
      e.preventDefault();
      var picked = radios.filter(function (r) { return r.checked; })[0];
      if (!picked) { err.textContent = T.ratePick; radios[0].focus(); scrollDown(); return; }
      err.textContent = '';
      var score = Number(picked.value);
      var before = recall(key);
      var frame = { type: 'rate', score: score };
      var text = comment.value.trim();
      if (text) frame.comment = text;
      var sent = sendControl(frame, function (f) {
        if (f.code === 'already_rated') {
          show(null);
          box.hidden = true;
          doneBox.hidden = false;
          doneText.textContent = T.rateClosed;
          change.hidden = true;
          return;
        }
        remember(key, before);
        show(before);
        err.textContent = f.message || T.errors.internal;
      });
      if (!sent) return;
      var given = { score: score, first: (before && before.first) || Date.now() };
      remember(key, given);
      show(given);
      change.focus();
    });
    change.addEventListener('click', function () {
      show(null);
      var given = recall(key);
      radios.forEach(function (r) { r.checked = given && Number(r.value) === given.score; });
      (radios.filter(function (r) { return r.checked; })[0] || radios[0]).focus();
    });
    show(recall(key));
    return outer;
  }

  function clearTranscript() {
    ui.log.textContent = '';
    activeQr = null;
    lastSeq = 0;
    agentOn = false;
    expect = null;
    endQueue();
    setHint();
  }

  // ---- outgoing messages ----------------------------------------------------

  function newClientId() {
    return 'c-' + Date.now() + '-' + Math.random().toString(36).slice(2, 8);
  }

  function submit() {
    var text = ui.input.value.trim();
    if (!text) return;
    if (text.length > MAX_CHARS) { notice(T.errors.text_too_long); return; }
    if (expect) {
      // The offline form asked for an address or a number: check its shape here first.
      // Sending the same text again goes through (e.g. "cancel"); the server decides then.
      if (!validContact(expect, text) && ui.err.refused !== text) {
        ui.err.refused = text;
        showError(expect === 'email' ? T.badEmail : T.badPhone);
        ui.input.focus();
        return;
      }
      expect = null;
      setHint();
    }
    ui.err.refused = null;
    showError('');
    ui.input.value = '';
    autosize();
    sendFrame({ type: 'message', text: text }, text);
  }

  // Queues a frame with a fresh client_id, shows it as pending, sends it when possible.
  function sendFrame(frame, shownText) {
    frame.client_id = newClientId();
    var pending = bubble('visitor', shownText);
    pending.classList.add('pending');
    pending.appendChild(el('div', 'meta', T.sending));
    ui.outbox.appendChild(pending);
    ui.notices.textContent = '';
    var item = { id: frame.client_id, frame: frame, el: pending };
    queue.push(item);
    if (!hq.on && !agentOn) showTyping(true); // a person answers in their own time
    if (greeted) transmit(item); else if (!ws) connect();
    return frame.client_id;
  }

  function transmit(item) {
    if (ws && greeted && ws.readyState === 1) ws.send(JSON.stringify(item.frame));
  }

  function flush() { queue.forEach(transmit); }

  // Drops a queued frame (its echo arrived, or the server rejected it for good).
  function ack(id) {
    queue = queue.filter(function (item) {
      if (item.id !== id) return true;
      item.el.remove();
      return false;
    });
  }

  // ---- connection -----------------------------------------------------------

  function connect() {
    clearTimeout(timer);
    timer = 0;
    if (ws) return;
    if (!started) setStatus(T.connecting);
    started = true;
    var sock;
    try { sock = new WebSocket(WS_URL); } catch (e) { reconnectLater(); return; }
    ws = sock;
    sock.onopen = function () {
      var hello = { type: 'hello', last_seq: lastSeq, locale: LOCALE, page_url: location.href };
      // The shop's signed statement of who the visitor is (its server makes it).
      if (data.identity) hello.identity = data.identity;
      var token = getToken();
      if (token) hello.token = token;
      sock.send(JSON.stringify(hello));
    };
    sock.onmessage = function (ev) { if (ws === sock) receive(ev.data); };
    sock.onclose = function () {
      if (ws !== sock) return;
      ws = null;
      greeted = false;
      setStatus(T.reconnecting);
      reconnectLater();
    };
  }

  // Exponential back-off with jitter: 0.5 s doubling up to 30 s.
  function reconnectLater() {
    if (timer) return;
    var max = Math.min(30000, 500 * Math.pow(2, attempt++));
    timer = setTimeout(connect, max / 2 + Math.random() * max / 2);
  }

  // Back on the page or back online: don't wait for the back-off timer.
  function wake() {
    if (started && !ws) { attempt = 0; connect(); }
  }

  function receive(raw) {
    var f;
    try { f = JSON.parse(raw); } catch (e) { return; }
    if (!f || typeof f !== 'object') return;
    if (f.type === 'welcome') {
      // Not resumed = a fresh conversation: what is on screen belongs to another one.
      if (!f.resumed && (lastSeq > 0 || f.token !== getToken())) clearTranscript();
      if (typeof f.token === 'string') setToken(f.token);
      adoptLabels(f.ui, f.lang);
      greeted = true;
      attempt = 0;
      liveFrom = typeof f.last_seq === 'number' ? f.last_seq : 0;
      setStatus('');
      flush();
    } else if (f.type === 'message') {
      render(f);
    } else if (f.type === 'queue') {
      if (typeof f.position === 'number') {
        hq.on = true;
        hq.pos = f.position;
        hq.eta = typeof f.eta_minutes === 'number' ? f.eta_minutes : hq.eta;
        renderQueue();
      }
    } else if (f.type === 'typing') {
      agentOn = true;
      showTyping(true, typeof f.name === 'string' && f.name ? f.name : T.who.agent);
    } else if (f.type === 'error') {
      onError(f);
    }
  }

  function onError(f) {
    if (f.code === 'invalid_token') return; // a fresh welcome follows
    if (f.client_id && controls[f.client_id]) {
      var onFail = controls[f.client_id];
      delete controls[f.client_id];
      onFail(f);
      return;
    }
    var retry = f.code === 'internal' || f.code === 'rate_limited';
    if (f.client_id && !retry) {
      // Rejected for good: drop it, and give its text back for editing.
      queue.forEach(function (item) {
        if (item.id === f.client_id && item.frame.text && !ui.input.value) {
          ui.input.value = item.frame.text.slice(0, MAX_CHARS);
          autosize();
        }
      });
      ack(f.client_id);
      showTyping(false);
      expect = null; // e.g. a contact choice the server no longer offers
      setHint();
      if (f.client_id === hq.leaving) {
        hq.leaving = null; // not left: the actions are stale if the server did not know them
        if (f.code === 'unknown_choice') hq.acts = null;
        ui.qacts.acts = undefined;
        renderQueue();
      }
    }
    if (retry && !retryTimer) {
      retryTimer = setTimeout(function () { retryTimer = 0; flush(); }, 3000);
    }
    notice(T.errors[f.code] || f.message || 'Something went wrong.');
  }

  // ---- start ----------------------------------------------------------------

  function init() {
    build();
    document.addEventListener('visibilitychange', function () {
      if (document.visibilityState === 'visible') wake();
    });
    window.addEventListener('online', wake);
    if (data.open === 'true') open();
    else if (getToken()) connect(); // resume quietly so new replies show as unread
  }

  window.SupportbotWidget = { open: function () { open(); }, close: function () { close(); } };
  if (document.body) init(); else document.addEventListener('DOMContentLoaded', init);
})();
