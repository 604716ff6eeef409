// The agent console (/agent): plain JavaScript, no build step, no framework.
// Protocol: docs/protocol.md ("Agent protocol"). Everything a visitor or an agent typed is
// rendered with textContent, never as HTML.
(function () {
  'use strict';

  // ---------------------------------------------------------------- small helpers
  var $ = function (id) { return document.getElementById(id); };
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function store(kind) {
    return {
      get: function (k) { try { return window[kind].getItem(k); } catch (e) { return null; } },
      set: function (k, v) { try { window[kind].setItem(k, v); } catch (e) { /* full or blocked */ } },
      del: function (k) { try { window[kind].removeItem(k); } catch (e) { /* blocked */ } },
    };
  }
  var ss = store('sessionStorage');
  var ls = store('localStorage');
  var KEY = { token: 'sbc.token', outbox: 'sbc.outbox', muted: 'sbc.muted', draft: 'sbc.draft.' };

  function uid() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    var b = new Uint8Array(16);
    crypto.getRandomValues(b);
    return Array.prototype.map.call(b, function (x) { return (x + 256).toString(16).slice(1); }).join('');
  }
  function pad(n) { return n < 10 ? '0' + n : String(n); }
  function clock(ms) { var d = new Date(ms); return pad(d.getHours()) + ':' + pad(d.getMinutes()); }
  function dur(s) {
    s = Math.max(0, Math.floor(s));
    var h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
    return h ? h + ':' + pad(m) + ':' + pad(r) : m + ':' + pad(r);
  }
  function safeUrl(u) { return typeof u === 'string' && /^(https?:\/\/|\/(?!\/))/i.test(u) ? u : null; }
  function link(url, text) {
    var ok = safeUrl(url);
    if (!ok) return el('span', null, text || url || '');
    var a = el('a', null, text || url);
    a.href = ok; a.target = '_blank'; a.rel = 'noopener noreferrer';
    return a;
  }
  function human(s) { return s ? String(s).replace(/_/g, ' ') : ''; }
  function short(id) { return String(id).slice(0, 8); }

  // ---------------------------------------------------------------- state
  var token = ss.get(KEY.token);
  var me = null;                 // the agent, from `ready`
  var chats = new Map();         // conversation -> {id, packet, msgs: Map(seq -> msg), maxSeq, unread, typingUntil, last}
  var offers = new Map();        // conversation -> {conversation, team, until, packet}
  var queue = { offline_requests: [], items: [], agents: [], teams: [] };
  var current = null;            // the open chat's id
  var outbox = [];               // {conversation, client_id, kind, text, error}
  var canned = [];
  var cannedLoaded = false;
  var noteMode = false;
  var skew = 0;                  // server clock minus ours, ms (from the packets' waited_seconds)
  var openOnAssign = new Set();  // chats to open as soon as they are assigned (our accept/claim)
  var lastTypingSent = 0;
  var muted = ls.get(KEY.muted) === '1';

  try { outbox = JSON.parse(ss.get(KEY.outbox) || '[]') || []; } catch (e) { outbox = []; }
  function saveOutbox() { ss.set(KEY.outbox, JSON.stringify(outbox)); }
  function now() { return Date.now() + skew; }

  // ---------------------------------------------------------------- announcements, title, sound, notifications
  // Live regions re-announce only when their text changes, so each is cleared first and
  // filled a moment later; texts that arrive in the same moment are read together rather
  // than the last one silently replacing the others.
  var spoken = { 'sr-polite': [], 'sr-alert': [] };
  function speak(region, text) {
    if (spoken[region].push(text) > 1) return;
    $(region).textContent = '';
    setTimeout(function () { $(region).textContent = spoken[region].join(' '); spoken[region] = []; }, 30);
  }
  function announce(text) { speak('sr-polite', text); }
  function alertText(text) { speak('sr-alert', text); }
  function updateTitle() {
    var n = offers.size;
    chats.forEach(function (c) { if (c.unread) n++; });
    document.title = (n ? '(' + n + ') ' : '') + 'Agent console';
  }
  var audio = null;
  function unlockAudio() {
    if (audio || !(window.AudioContext || window.webkitAudioContext)) return;
    try { audio = new (window.AudioContext || window.webkitAudioContext)(); } catch (e) { audio = null; }
  }
  function beep() {
    if (muted || !audio) return;
    try {
      if (audio.state === 'suspended') audio.resume();
      var t = audio.currentTime, o = audio.createOscillator(), g = audio.createGain();
      o.type = 'sine';
      o.frequency.setValueAtTime(880, t);
      o.frequency.setValueAtTime(1175, t + 0.09);
      g.gain.setValueAtTime(0.0001, t);
      g.gain.exponentialRampToValueAtTime(0.12, t + 0.02);
      g.gain.exponentialRampToValueAtTime(0.0001, t + 0.25);
      o.connect(g); g.connect(audio.destination);
      o.start(t); o.stop(t + 0.27);
    } catch (e) { /* no sound, no harm */ }
  }
  function notify(text, tag) {
    beep();
    announce(text);
    updateTitle();
    if (window.Notification && Notification.permission === 'granted' && (document.hidden || !document.hasFocus())) {
      try {
        var n = new Notification('Agent console', { body: text, tag: tag || 'sbc' });
        n.onclick = function () { window.focus(); n.close(); };
      } catch (e) { /* some browsers only allow it from a service worker */ }
    }
  }
  function renderSoundButton() {
    var b = $('btn-sound');
    b.setAttribute('aria-pressed', muted ? 'false' : 'true');
    b.textContent = muted ? 'Sound off' : 'Sound on';
  }
  function renderNotifyButton() {
    $('btn-notify').hidden = !(window.Notification && Notification.permission === 'default');
  }

  // ---------------------------------------------------------------- HTTP API
  function api(method, path, body) {
    var headers = { 'Accept': 'application/json' };
    if (token) headers.Authorization = 'Bearer ' + token;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    return fetch(path, { method: method, headers: headers, body: body === undefined ? undefined : JSON.stringify(body), cache: 'no-store' })
      .then(function (res) {
        if (res.status === 204) return null;
        return res.text().then(function (t) {
          var data = null;
          try { data = t ? JSON.parse(t) : null; } catch (e) { data = null; }
          if (res.ok) return data;
          var err = new Error((data && data.message) || ('HTTP ' + res.status));
          err.code = (data && data.error) || String(res.status);
          err.status = res.status;
          err.retryAfter = Number(res.headers.get('Retry-After')) || 0;
          if (res.status === 401 && path !== '/api/agent/login') sessionEnded();
          throw err;
        });
      });
  }

  // ---------------------------------------------------------------- login / logout / expiry
  function showLogin(note) {
    $('app').hidden = true;
    $('login-view').hidden = false;
    $('login-note').hidden = !note;
    $('login-note').textContent = note || '';
    $('login-error').hidden = true;
    $('login-password').value = '';
    var email = $('login-email');
    (email.value ? $('login-password') : email).focus();
  }
  function showApp() {
    $('login-view').hidden = true;
    $('app').hidden = false;
    renderAll();
  }
  function sessionEnded() {
    if (!token) return;
    token = null;
    ss.del(KEY.token);
    dropSocket();
    setConn('off');
    // Chats, drafts and unsent messages stay: the same agent logging in again resumes them.
    showLogin('Your session has ended. Log in again — your drafts and unsent messages are kept.');
    alertText('Session ended; log in again.');
  }
  $('login-form').addEventListener('submit', function (e) {
    e.preventDefault();
    unlockAudio();
    var email = $('login-email').value.trim(), password = $('login-password').value;
    var err = $('login-error');
    if (!email || !password) { err.textContent = 'Enter your e-mail and password.'; err.hidden = false; return; }
    var button = e.target.querySelector('button[type=submit]');
    button.disabled = true;
    api('POST', '/api/agent/login', { email: email, password: password }).then(function (res) {
      token = res.token;
      ss.set(KEY.token, token);
      if (me && res.agent && res.agent.id !== me.id) resetState();
      showApp();
      connect(true);
      loadCanned();
      focusInput();
    }, function (ex) {
      err.textContent = ex.code === 'bad_credentials' ? 'Wrong e-mail or password.'
        : ex.code === 'rate_limited' ? 'Too many attempts. Try again in ' + (ex.retryAfter || 60) + ' s.'
          : ex.code === 'account_disabled' ? 'This account is disabled.'
            : 'Could not log in: ' + ex.message;
      err.hidden = false;
    }).then(function () { button.disabled = false; });
  });
  function resetState() {
    chats.clear(); offers.clear(); outbox = []; saveOutbox(); current = null; me = null;
  }
  $('btn-logout').addEventListener('click', function () {
    var unsent = outbox.length;
    var go = unsent ? confirmDialog('Log out?', unsent + ' message(s) are not delivered yet and will be lost.', 'Log out') : Promise.resolve(true);
    go.then(function (ok) {
      if (!ok) return;
      var t = token;
      token = null;
      ss.del(KEY.token);
      dropSocket();
      if (t) fetch('/api/agent/logout', { method: 'POST', headers: { Authorization: 'Bearer ' + t } }).catch(function () {});
      chats.forEach(function (c) { ls.del(KEY.draft + c.id); });
      resetState();
      setConn('off');
      showLogin('You are logged out.');
    });
  });

  // ---------------------------------------------------------------- the socket
  var ws = null;
  var ready = false;
  var attempt = 0;
  var retryTimer = 0;
  var retryAt = 0;
  var pingTimer = 0;
  var refs = new Map();   // ref -> {resolve, reject, timer}
  var refN = 0;

  function setConn(state) {
    var c = $('conn');
    c.className = 'conn ' + state;
    c.textContent = state === 'online' ? 'Connected'
      : state === 'connecting' ? 'Connecting…'
        : state === 'reconnecting' ? 'Reconnecting…' + (retryAt > Date.now() ? ' (retry in ' + Math.ceil((retryAt - Date.now()) / 1000) + ' s)' : '')
          : '';
    document.body.classList.toggle('offline', state === 'reconnecting');
    renderPending();
  }
  function connect(fresh) {
    clearTimeout(retryTimer);
    retryAt = 0;
    if (!token) return;
    if (ws) return;
    setConn(fresh && !attempt ? 'connecting' : 'reconnecting');
    var s;
    try {
      s = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/ws/agent');
    } catch (e) { scheduleReconnect(); return; }
    ws = s;
    ready = false;
    s.onopen = function () {
      if (ws !== s) return;
      var resume = {};
      chats.forEach(function (c) { if (c.maxSeq > 0) resume[c.id] = c.maxSeq; });
      s.send(JSON.stringify({ type: 'auth', token: token, resume: resume }));
    };
    s.onmessage = function (e) {
      if (ws !== s) return;
      var f;
      try { f = JSON.parse(e.data); } catch (ex) { return; }
      if (f && typeof f.type === 'string') onFrame(f);
    };
    s.onclose = function (e) {
      if (ws !== s) return;
      lost();
      if (e.code === 4401) sessionEnded(); else scheduleReconnect();
    };
  }
  /** Forgets the socket now (its late events are ignored) and fails what waited on it. */
  function lost() {
    var s = ws;
    ws = null;
    ready = false;
    clearInterval(pingTimer);
    refs.forEach(function (p) { clearTimeout(p.timer); p.reject(Object.assign(new Error('Connection lost; try again.'), { code: 'disconnected' })); });
    refs.clear();
    if (s) { try { s.close(); } catch (e) { /* already closed */ } }
  }
  function dropSocket() { lost(); clearTimeout(retryTimer); }
  function scheduleReconnect() {
    if (!token) return;
    clearTimeout(retryTimer);
    var base = Math.min(10000, 500 * Math.pow(2, attempt));
    var delay = Math.round(base / 2 + Math.random() * base / 2);
    attempt++;
    retryAt = Date.now() + delay;
    setConn('reconnecting');
    retryTimer = setTimeout(function () { connect(false); }, delay);
  }
  window.addEventListener('offline', function () { if (ws) { lost(); scheduleReconnect(); } });
  window.addEventListener('online', function () { if (!ws && token) { attempt = 0; connect(false); } });

  function sendFrame(f) {
    if (!ws || !ready || ws.readyState !== 1) return false;
    try { ws.send(JSON.stringify(f)); return true; } catch (e) { return false; }
  }
  /** A frame that takes a `ref`: resolves on `ok` (or its answer frame), rejects on `error`. */
  function request(f, timeoutMs) {
    return new Promise(function (resolve, reject) {
      var ref = 'r' + (++refN);
      f.ref = ref;
      if (!sendFrame(f)) { reject(Object.assign(new Error('Not connected; try again in a moment.'), { code: 'disconnected' })); return; }
      var timer = setTimeout(function () {
        refs.delete(ref);
        reject(Object.assign(new Error('No answer from the server.'), { code: 'timeout' }));
      }, timeoutMs || 15000);
      refs.set(ref, { resolve: resolve, reject: reject, timer: timer });
    });
  }
  // The protocol has no ping the page can see: every 20 s ask for what we already have
  // (an empty `history`); no answer within 10 s means the connection is dead.
  function startPings() {
    clearInterval(pingTimer);
    pingTimer = setInterval(function () {
      var s = ws;
      if (!s || !ready) return;
      var chat = chats.values().next().value;
      var conv = chat ? chat.id : '00000000-0000-0000-0000-000000000000';
      request({ type: 'history', conversation: conv, after: chat ? chat.maxSeq : 0 }, 10000).then(function (f) {
        if (f && f.messages) mergeMessages(f.conversation, f.messages, true);
      }, function (e) {
        if (e.code === 'timeout' && ws === s) { lost(); scheduleReconnect(); }
      });
    }, 20000);
  }

  // ---------------------------------------------------------------- frames from the server
  function onFrame(f) {
    if (f.ref && refs.has(f.ref)) {
      var p = refs.get(f.ref);
      refs.delete(f.ref);
      clearTimeout(p.timer);
      if (f.type === 'error') p.reject(Object.assign(new Error(f.message || f.code), { code: f.code }));
      else p.resolve(f);
      if (f.type === 'ok' || f.type === 'error') return;
    }
    switch (f.type) {
      case 'ready': onReady(f); break;
      case 'resumed': break;
      case 'assigned': onAssigned(f.conversation, f.packet); break;
      case 'message': addMessage(f.conversation, f.message, true); break;
      case 'typing': onTyping(f.conversation); break;
      case 'queue': queue = f; renderQueue(); renderTransferTargets(); break;
      case 'offer': onOffer(f); break;
      case 'offer_withdrawn': onOfferWithdrawn(f); break;
      case 'released': onReleased(f.conversation, f.why); break;
      case 'presence': renderPresence(f.status); break;
      case 'packet': if (f.packet) setPacket(f.conversation, f.packet); break;
      case 'history': mergeMessages(f.conversation, f.messages || [], true); break;
      case 'ack': onAck(f.conversation, f.client_id); break;
      case 'error': onError(f); break;
      default: break;
    }
  }

  function onReady(f) {
    me = f.agent;
    ready = true;
    attempt = 0;
    setConn('online');
    $('me').textContent = me.name;
    renderPresence(f.presence);
    var held = new Set(f.chats || []);
    // Chats we show that are no longer ours went elsewhere while we were away.
    Array.from(chats.keys()).forEach(function (id) { if (!held.has(id)) removeChat(id, 'gone'); });
    (f.chats || []).forEach(function (id) { if (!chats.has(id)) newChat(id); });
    // Offers are re-sent after `ready`.
    offers.clear();
    renderOffers();
    // Unacknowledged messages go again, with the same client_id (the server dedupes).
    outbox.forEach(function (m) {
      if (!held.has(m.conversation)) { if (!m.error) m.error = 'The chat is no longer yours; not sent.'; return; }
      if (!m.error) sendFrame({ type: m.kind, conversation: m.conversation, client_id: m.client_id, text: m.text });
    });
    saveOutbox();
    startPings();
    renderAll();
  }

  function newChat(id) {
    var c = { id: id, packet: null, msgs: new Map(), maxSeq: 0, unread: 0, typingUntil: 0, last: '' };
    chats.set(id, c);
    return c;
  }
  function chatName(c) {
    var p = c && c.packet;
    if (p && p.identity && p.identity.name) return p.identity.name;
    if (p && p.contact && p.contact.email) return p.contact.email;
    return 'Visitor ' + short(c ? c.id : '');
  }
  function packetName(p, id) {
    if (p && p.identity && p.identity.name) return p.identity.name;
    if (p && p.contact && p.contact.email) return p.contact.email;
    return 'Visitor ' + short(id);
  }
  function learnSkew(p) {
    if (!p || !p.queued_at || typeof p.waited_seconds !== 'number') return;
    var est = Date.parse(p.queued_at) + p.waited_seconds * 1000 + 500 - Date.now();
    skew = Math.abs(est) > 2000 ? est : 0;
  }
  function setPacket(id, p) {
    var c = chats.get(id);
    if (!c) return;
    learnSkew(p);
    c.packet = p;
    mergeMessages(id, p.transcript || [], false);
    if (id === current) { renderPacket(); renderChatHead(); }
    renderMine();
  }
  function onAssigned(id, packet) {
    var isNew = !chats.has(id);
    var c = chats.get(id) || newChat(id);
    offers.delete(id);
    renderOffers();
    if (packet) setPacket(id, packet);
    var mine = openOnAssign.delete(id);
    if (mine || !current) {
      openChat(id, mine);
    } else if (isNew) {
      c.unread = Math.max(c.unread, 1);
      notify('New chat assigned to you: ' + chatName(c), 'assigned-' + id);
    }
    renderMine();
    updateTitle();
  }
  function onReleased(id, why) {
    var c = chats.get(id);
    if (!c) return;
    var words = { closed: 'closed', handed_back: 'handed back to the bot', transferred: 'transferred',
      requeued: 'back in the queue', deleted: 'deleted' };
    var name = chatName(c);
    if (why === 'closed' || why === 'transferred' || why === 'handed_back' || why === 'deleted') ls.del(KEY.draft + id);
    removeChat(id, why);
    announce('Chat with ' + name + ' ' + (words[why] || why) + '.');
  }
  function removeChat(id, why) {
    chats.delete(id);
    outbox = outbox.filter(function (m) { return m.conversation !== id || !!m.error; });
    outbox.forEach(function (m) { if (m.conversation === id && !m.error) m.error = 'Chat ended; not sent.'; });
    outbox = outbox.filter(function (m) { return m.conversation !== id; });
    saveOutbox();
    if (current === id) {
      current = null;
      var note = why === 'closed' ? 'Chat closed.' : why === 'transferred' ? 'Chat transferred.'
        : why === 'handed_back' ? 'Chat handed back to the bot.' : why === 'requeued' ? 'The chat went back to the queue.'
          : why === 'deleted' ? 'The conversation was deleted.' : 'This chat is no longer yours.';
      $('chat-empty').firstElementChild.textContent = note;
    }
    renderAll();
  }

  function mergeMessages(id, list, live) {
    for (var i = 0; i < list.length; i++) addMessage(id, list[i], live && false);
  }
  function addMessage(id, m, live) {
    var c = chats.get(id);
    if (!c || !m || typeof m.seq !== 'number' || c.msgs.has(m.seq)) return;
    c.msgs.set(m.seq, m);
    var newest = m.seq > c.maxSeq;
    if (newest) {
      c.maxSeq = m.seq;
      c.last = (m.private ? 'Note: ' : m.from === 'agent' ? 'You: ' : m.from === 'bot' ? 'Bot: ' : '') + m.text;
      if (me && m.from === 'agent' && m.author && m.author.id !== me.id) c.last = m.author.name + ': ' + m.text;
    }
    if (m.from === 'visitor') c.typingUntil = 0;
    if (m.client_id) {
      var before = outbox.length;
      outbox = outbox.filter(function (o) { return !(o.conversation === id && o.client_id === m.client_id); });
      if (outbox.length !== before) { saveOutbox(); if (id === current) renderPending(); }
    }
    if (id === current) {
      insertMessage(m);
      renderTyping();
    }
    if (live && newest && m.from === 'visitor') {
      if (id !== current || document.hidden) {
        c.unread++;
        updateTitle();
        if (id !== current) announce('New message from ' + chatName(c) + ': ' + m.text);
      }
    }
    renderMine();
  }
  function onAck(id, cid) {
    var before = outbox.length;
    outbox = outbox.filter(function (o) { return !(o.conversation === id && o.client_id === cid); });
    if (outbox.length !== before) { saveOutbox(); if (id === current) renderPending(); }
  }
  function onError(f) {
    if (f.code === 'unauthorized') { sessionEnded(); return; }
    if (f.client_id) {
      var m = outbox.find(function (o) { return o.client_id === f.client_id; });
      if (!m) return;
      if (f.code === 'busy' || f.code === 'internal') {
        setTimeout(function () {
          if (outbox.indexOf(m) >= 0) sendFrame({ type: m.kind, conversation: m.conversation, client_id: m.client_id, text: m.text });
        }, 1500);
        return;
      }
      m.error = f.code === 'not_found' ? 'The chat is no longer yours; not sent.'
        : f.code === 'text_too_long' ? 'Too long; shorten it.' : (f.message || f.code);
      saveOutbox();
      renderPending();
      alertText('Message not sent: ' + m.error);
      return;
    }
    if (f.code === 'rate_limited') {
      // A dropped frame: anything unacknowledged goes again shortly.
      setTimeout(function () {
        outbox.forEach(function (o) { if (!o.error) sendFrame({ type: o.kind, conversation: o.conversation, client_id: o.client_id, text: o.text }); });
      }, 2000);
    }
  }
  function onTyping(id) {
    var c = chats.get(id);
    if (!c) return;
    c.typingUntil = Date.now() + 6000;
    if (id === current) renderTyping();
  }
  function onOffer(f) {
    learnSkew(f.packet);
    var until = Date.parse(f.expires_at) - skew;
    var isNew = !offers.has(f.conversation);
    offers.set(f.conversation, { conversation: f.conversation, team: f.team, until: isNaN(until) ? Date.now() + 30000 : until, packet: f.packet });
    renderOffers();
    if (isNew) {
      var p = f.packet || {};
      notify('New chat offered: ' + packetName(p, f.conversation) + (p.reason ? ' — ' + p.reason : '') + '. Alt+A accepts.', 'offer-' + f.conversation);
    }
  }
  function onOfferWithdrawn(f) {
    if (!offers.delete(f.conversation)) return;
    renderOffers();
    updateTitle();
    var why = { expired: 'expired', declined: 'declined', taken: 'taken by a colleague', left: 'the visitor left',
      away: 'you are away', transferred: 'moved to another team' };
    if (!openOnAssign.has(f.conversation)) announce('Offer withdrawn: ' + (why[f.why] || f.why) + '.');
  }

  // ---------------------------------------------------------------- actions
  function toast(text) {
    var t = $('toast');
    if (!t) { t = el('div', 'toast'); t.id = 'toast'; t.setAttribute('role', 'status'); document.body.appendChild(t); }
    t.textContent = text;
    t.hidden = false;
    clearTimeout(toast.timer);
    toast.timer = setTimeout(function () { t.hidden = true; }, 5000);
  }
  function accept(id) {
    openOnAssign.add(id);
    request({ type: 'accept', conversation: id }).catch(function (e) {
      if (e.code === 'offer_gone' && queue.items.some(function (q) { return q.conversation === id; })) return claim(id);
      openOnAssign.delete(id);
      offers.delete(id);
      renderOffers();
      toast(e.code === 'offer_gone' ? 'That offer is gone.' : 'Could not accept: ' + e.message);
    });
  }
  function decline(id) {
    request({ type: 'decline', conversation: id }).catch(function () {});
    offers.delete(id);
    renderOffers();
    updateTitle();
  }
  function claim(id) {
    openOnAssign.add(id);
    return request({ type: 'claim', conversation: id }).catch(function (e) {
      openOnAssign.delete(id);
      toast(e.code === 'taken' ? 'A colleague took that chat.' : 'Could not claim: ' + e.message);
    });
  }
  function offlineDone(id) {
    request({ type: 'offline_done', id: id }).catch(function (e) {
      toast(e.code === 'no_such_request' ? 'Already handled.' : 'Could not mark it done: ' + e.message);
    });
  }
  function sendText(text, kind) {
    if (!current) return;
    var m = { conversation: current, client_id: uid(), kind: kind, text: text };
    outbox.push(m);
    saveOutbox();
    renderPending();
    sendFrame({ type: kind, conversation: m.conversation, client_id: m.client_id, text: m.text });
  }
  function chatAction(type, label) {
    var id = current;
    if (!id) return;
    var c = chats.get(id);
    var texts = {
      close: ['Close this chat?', 'The visitor is told the chat is closed; if they write again, the bot answers.', 'Close chat'],
      hand_back: ['Hand back to the bot?', 'The bot answers the visitor again.', 'Hand back'],
    };
    confirmDialog(texts[type][0], texts[type][1], texts[type][2]).then(function (ok) {
      if (!ok) return;
      request({ type: type, conversation: id }).then(function () {
        announce(label + ': ' + chatName(c));
      }, function (e) { toast('Could not ' + label.toLowerCase() + ': ' + e.message); });
    });
  }

  // ---------------------------------------------------------------- rendering: side bar
  function renderAll() {
    renderOffers();
    renderMine();
    renderQueue();
    renderChat();
    updateTitle();
  }
  function badge(text, cls) { return el('span', 'tag' + (cls ? ' ' + cls : ''), text); }

  function renderOffers() {
    var ul = $('offers');
    ul.textContent = '';
    var list = Array.from(offers.values()).sort(function (a, b) { return a.until - b.until; });
    list.forEach(function (o, i) {
      var p = o.packet || {};
      var li = el('li', 'offer');
      var top = el('div', 'row');
      top.appendChild(el('strong', null, packetName(p, o.conversation)));
      if (p.lang) top.appendChild(badge(p.lang));
      if (o.team) top.appendChild(badge(o.team));
      var cd = el('span', 'countdown');
      cd.dataset.until = String(o.until);
      cd.setAttribute('aria-label', 'time left to accept');
      top.appendChild(cd);
      li.appendChild(top);
      if (p.reason) li.appendChild(el('p', 'reason', p.reason));
      var bar = el('div', 'bar'); var fill = el('span'); fill.dataset.bar = String(o.until); bar.appendChild(fill);
      li.appendChild(bar);
      var btns = el('div', 'row btns');
      var a = el('button', 'primary accept', 'Accept');
      a.type = 'button';
      if (i === 0) a.setAttribute('aria-keyshortcuts', 'Alt+A');
      a.addEventListener('click', function () { accept(o.conversation); });
      var d = el('button', 'ghost decline', 'Decline');
      d.type = 'button';
      d.addEventListener('click', function () { decline(o.conversation); });
      btns.appendChild(a); btns.appendChild(d);
      li.appendChild(btns);
      ul.appendChild(li);
    });
    $('offers-box').hidden = list.length === 0;
    tick();
    updateTitle();
  }

  function renderMine() {
    var ul = $('mine');
    var focused = document.activeElement && ul.contains(document.activeElement) ? document.activeElement.dataset.id : null;
    ul.textContent = '';
    chats.forEach(function (c) {
      var li = el('li');
      var b = el('button', 'chat-item' + (c.id === current ? ' current' : '') + (c.unread ? ' has-unread' : ''));
      b.type = 'button';
      b.dataset.id = c.id;
      if (c.id === current) b.setAttribute('aria-current', 'true');
      var top = el('span', 'row');
      top.appendChild(el('span', 'name', chatName(c)));
      if (c.packet && c.packet.lang) top.appendChild(badge(c.packet.lang));
      if (c.unread) {
        var u = el('span', 'unread', c.unread);
        u.setAttribute('aria-label', c.unread + ' unread');
        top.appendChild(u);
      }
      b.appendChild(top);
      b.appendChild(el('span', 'last', c.last || ' '));
      b.addEventListener('click', function () { openChat(c.id, true); });
      li.appendChild(b);
      ul.appendChild(li);
      if (focused === c.id) b.focus();
    });
    $('mine-count').textContent = chats.size ? String(chats.size) : '';
    $('mine-empty').hidden = chats.size > 0;
    updateTitle();
  }

  var lastQueueCount = -1;
  function renderQueue() {
    var off = $('offline'), ul = $('queue');
    var focusKey = document.activeElement && document.activeElement.dataset ? document.activeElement.dataset.key : null;
    off.textContent = '';
    ul.textContent = '';
    (queue.offline_requests || []).forEach(function (r) {
      var li = el('li', 'offline-req');
      var top = el('div', 'row');
      top.appendChild(badge('Contact later', 'warn'));
      if (r.lang) top.appendChild(badge(r.lang));
      if (r.team) top.appendChild(badge(r.team));
      var since = el('span', 'since');
      since.dataset.since = String(Date.parse(r.at));
      top.appendChild(since);
      li.appendChild(top);
      var contact = el('p', 'contact');
      contact.appendChild(el('span', 'muted', (r.channel === 'phone' ? 'Phone' : 'E-mail') + ': '));
      contact.appendChild(el('strong', null, r.contact || '—'));
      li.appendChild(contact);
      if (r.details) li.appendChild(el('p', 'details', r.details));
      if (r.reason) li.appendChild(el('p', 'reason muted', r.reason));
      var b = el('button', 'ghost', 'Done');
      b.type = 'button';
      b.dataset.key = 'off-' + r.id;
      b.setAttribute('aria-label', 'Mark the request from ' + (r.contact || 'the visitor') + ' as done');
      b.addEventListener('click', function () { offlineDone(r.id); });
      var row = el('div', 'row btns'); row.appendChild(b); li.appendChild(row);
      off.appendChild(li);
    });
    var agents = {};
    (queue.agents || []).forEach(function (a) { agents[a.id] = a.name; });
    (queue.items || []).forEach(function (q) {
      var li = el('li', 'qitem');
      var top = el('div', 'row');
      top.appendChild(el('strong', null, '#' + q.position));
      if (q.lang) top.appendChild(badge(q.lang));
      if (q.team) top.appendChild(badge(q.team));
      var since = el('span', 'since');
      since.dataset.since = String(Date.parse(q.queued_at));
      since.title = 'waiting';
      top.appendChild(since);
      li.appendChild(top);
      li.appendChild(el('p', 'reason', q.reason || '—'));
      var row = el('div', 'row btns');
      if (q.offered_to) row.appendChild(el('span', 'muted small', me && q.offered_to === me.id ? 'Offered to you' : 'Offered to ' + (agents[q.offered_to] || 'a colleague')));
      var b = el('button', 'ghost', 'Claim');
      b.type = 'button';
      b.dataset.key = 'q-' + q.conversation;
      b.setAttribute('aria-label', 'Claim chat #' + q.position + ' of ' + q.team + ': ' + (q.reason || ''));
      b.addEventListener('click', function () { claim(q.conversation); });
      row.appendChild(b);
      li.appendChild(row);
      ul.appendChild(li);
    });
    var n = (queue.items || []).length, o = (queue.offline_requests || []).length;
    $('queue-count').textContent = [n ? String(n) + ' waiting' : '', o ? o + ' to contact' : ''].filter(Boolean).join(' + ');
    $('queue-empty').hidden = n + o > 0;
    if (lastQueueCount >= 0 && n !== lastQueueCount) announce(n === 1 ? '1 chat waiting.' : n + ' chats waiting.');
    lastQueueCount = n;
    if (focusKey) {
      var again = document.querySelector('[data-key="' + CSS.escape(focusKey) + '"]');
      if (again) again.focus();
    }
    tick();
  }

  // ---------------------------------------------------------------- rendering: the open chat
  function openChat(id, focus) {
    if (!chats.has(id)) return;
    saveDraft();
    current = id;
    var c = chats.get(id);
    c.unread = 0;
    setMode(false);
    var d = loadDraft(id);
    $('input').value = d.text;
    if (d.note) setMode(true);
    $('chat-empty').firstElementChild.textContent = 'No chat open.';
    renderChat();
    renderMine();
    updateTitle();
    if (focus) focusInput();
    // Fresh order statuses and anything we may have missed.
    request({ type: 'packet', conversation: id }).then(function (f) { if (f.packet) setPacket(id, f.packet); }, function () {});
  }
  function renderChat() {
    var c = current && chats.get(current);
    $('chat-empty').hidden = !!c;
    $('chat-main').hidden = !c;
    if (!c) return;
    renderChatHead();
    var ol = $('transcript');
    ol.textContent = '';
    Array.from(c.msgs.keys()).sort(function (a, b) { return a - b; }).forEach(function (s) { ol.appendChild(messageNode(c.msgs.get(s))); });
    renderPending();
    renderTyping();
    renderPacket();
    scrollDown(true);
  }
  function renderChatHead() {
    var c = chats.get(current);
    if (!c) return;
    $('chat-title').textContent = chatName(c);
    var p = c.packet || {};
    var bits = [];
    if (p.lang) bits.push(p.lang);
    if (p.team) bits.push(p.team);
    if (p.reason) bits.push(p.reason);
    $('chat-sub').textContent = bits.join(' · ');
  }
  function who(m) {
    if (m.from === 'visitor') return 'Visitor';
    if (m.from === 'bot') return 'Bot';
    if (m.from === 'system') return '';
    if (m.from === 'agent') return m.author ? (me && m.author.id === me.id ? 'You' : m.author.name) : 'Agent';
    return m.from;
  }
  function messageNode(m) {
    var li = el('li', 'msg ' + (m.private ? 'note' : 'from-' + m.from));
    li.dataset.seq = String(m.seq);
    var meta = el('div', 'meta');
    if (m.private) meta.appendChild(el('span', 'private', 'Private note'));
    var w = who(m);
    if (w) meta.appendChild(el('span', 'who', w));
    var at = Date.parse(m.at);
    if (!isNaN(at)) {
      var t = el('time', null, clock(at));
      t.dateTime = m.at;
      meta.appendChild(t);
    }
    li.appendChild(meta);
    var body = el('div', 'text', m.text);
    li.appendChild(body);
    if (m.source && m.source.title) {
      var src = el('div', 'extra');
      src.appendChild(el('span', 'muted', 'From the knowledge base: '));
      src.appendChild(link(m.source.url, m.source.title));
      li.appendChild(src);
    }
    if (m.articles && m.articles.length) {
      var ar = el('div', 'extra');
      ar.appendChild(el('span', 'muted', 'Related: '));
      m.articles.forEach(function (a, i) { if (i) ar.appendChild(document.createTextNode(' · ')); ar.appendChild(link(a.url, a.title)); });
      li.appendChild(ar);
    }
    if (m.quick_replies && m.quick_replies.length) {
      li.appendChild(el('div', 'extra muted', 'Buttons: ' + m.quick_replies.map(function (q) { return q.label; }).join(' · ')));
    }
    return li;
  }
  function nearBottom() {
    var s = $('scroll');
    return s.scrollHeight - s.scrollTop - s.clientHeight < 80;
  }
  function scrollDown(force) {
    var s = $('scroll');
    if (force || nearBottom()) s.scrollTop = s.scrollHeight;
  }
  function insertMessage(m) {
    var ol = $('transcript');
    var stick = nearBottom();
    var node = messageNode(m);
    var after = ol.lastElementChild;
    while (after && Number(after.dataset.seq) > m.seq) after = after.previousElementSibling;
    ol.insertBefore(node, after ? after.nextSibling : ol.firstChild);
    if (stick || (m.from === 'agent' && me && m.author && m.author.id === me.id)) scrollDown(true);
  }
  function renderPending() {
    var ol = $('pending');
    if (!ol) return;
    ol.textContent = '';
    if (!current) return;
    outbox.forEach(function (m) {
      if (m.conversation !== current) return;
      var li = el('li', 'msg ' + (m.kind === 'note' ? 'note' : 'from-agent') + ' pending' + (m.error ? ' failed' : ''));
      var meta = el('div', 'meta');
      if (m.kind === 'note') meta.appendChild(el('span', 'private', 'Private note'));
      meta.appendChild(el('span', 'who', 'You'));
      meta.appendChild(el('span', 'state', m.error ? 'Not sent' : ready ? 'Sending…' : 'Waiting for the connection…'));
      li.appendChild(meta);
      li.appendChild(el('div', 'text', m.text));
      if (m.error) {
        li.appendChild(el('div', 'extra', m.error));
        var row = el('div', 'row btns');
        var edit = el('button', 'ghost', 'Edit');
        edit.type = 'button';
        edit.addEventListener('click', function () {
          outbox.splice(outbox.indexOf(m), 1); saveOutbox();
          $('input').value = m.text; setMode(m.kind === 'note'); saveDraft(); renderPending(); focusInput();
        });
        var retry = el('button', 'ghost', 'Retry');
        retry.type = 'button';
        retry.addEventListener('click', function () {
          m.error = null; saveOutbox(); renderPending();
          sendFrame({ type: m.kind, conversation: m.conversation, client_id: m.client_id, text: m.text });
        });
        var drop = el('button', 'ghost', 'Discard');
        drop.type = 'button';
        drop.addEventListener('click', function () { outbox.splice(outbox.indexOf(m), 1); saveOutbox(); renderPending(); });
        row.appendChild(retry); row.appendChild(edit); row.appendChild(drop);
        li.appendChild(row);
      }
      ol.appendChild(li);
    });
    scrollDown(false);
  }
  function renderTyping() {
    var c = current && chats.get(current);
    var on = !!(c && c.typingUntil > Date.now());
    var t = $('typing');
    var want = on ? 'Visitor is typing…' : '';
    if (t.textContent !== want) t.textContent = want;
    t.classList.toggle('on', on);
  }

  function section(title, nodes) {
    var s = el('section', 'psec');
    s.appendChild(el('h3', null, title));
    nodes.forEach(function (n) { if (n) s.appendChild(n); });
    return s;
  }
  function dl(rows) {
    var d = el('dl');
    var any = false;
    rows.forEach(function (r) {
      if (r[1] === null || r[1] === undefined || r[1] === '') return;
      any = true;
      d.appendChild(el('dt', null, r[0]));
      var dd = el('dd');
      if (r[1] instanceof Node) dd.appendChild(r[1]); else dd.textContent = String(r[1]);
      d.appendChild(dd);
    });
    return any ? d : null;
  }
  function renderPacket() {
    var box = $('packet');
    box.textContent = '';
    var c = chats.get(current);
    var p = c && c.packet;
    if (!p) { box.appendChild(el('p', 'muted', 'Loading the handoff details…')); return; }
    box.appendChild(section('Handoff', [
      dl([
        ['Reason', p.reason || '—'],
        ['Language', p.lang],
        ['Team', p.team],
        ['Waited', typeof p.waited_seconds === 'number' ? dur(p.waited_seconds) : null],
        ['Page', p.page_url ? link(p.page_url) : null],
        ['Started', p.started_at ? new Date(p.started_at).toLocaleString() : null],
      ]),
    ]));
    var id = p.identity || {}, ct = p.contact || {};
    var vid = id.visitor_id ? id.visitor_id + (id.verified ? ' (verified)' : ' (not verified)') : null;
    box.appendChild(section('Visitor', [
      dl([['Name', id.name], ['Customer id', vid], ['E-mail', ct.email], ['Phone', ct.phone]]) || el('p', 'muted', 'Anonymous visitor; nothing proved yet.'),
    ]));
    if (p.orders && p.orders.length) {
      box.appendChild(section('Orders', p.orders.map(function (o) {
        var d = dl([
          ['Order', o.id],
          ['Status', o.status ? human(o.status) : 'unknown (order system not reachable)'],
          ['Expected', o.expected_delivery],
          ['Delay', o.delay_reason],
          ['Carrier', o.carrier],
          ['Tracking', o.tracking_url ? link(o.tracking_url, 'Track parcel') : null],
        ]);
        d.className = 'order';
        return d;
      })));
    }
    if (p.flow) {
      // Order slots repeat what the Orders section shows (with the status now): keep the rest.
      var hasOrders = p.orders && p.orders.length;
      var slots = Object.keys(p.flow.slots || {})
        .filter(function (k) { return !(hasOrders && k.indexOf('order.') === 0); })
        .map(function (k) { return [k.replace(/_/g, ' '), p.flow.slots[k]]; });
      box.appendChild(section('Flow', [dl([['Flow', human(p.flow.id)], ['Step', human(p.flow.step)]].concat(slots))]));
    }
    if (p.answers && p.answers.length) {
      var ul = el('ul', 'plain');
      p.answers.forEach(function (a) {
        var li = el('li');
        li.appendChild(link(a.url, a.title));
        if (a.helpful === false) li.appendChild(el('span', 'tag warn', 'not helpful'));
        ul.appendChild(li);
      });
      box.appendChild(section('Articles shown', [ul]));
    }
    if (p.unanswered && p.unanswered.length) {
      var uq = el('ul', 'plain');
      p.unanswered.forEach(function (q) { uq.appendChild(el('li', null, '“' + q + '”')); });
      box.appendChild(section('Not answered by the bot', [uq]));
    }
    if (p.earlier_conversations && p.earlier_conversations.length) {
      var ec = el('ul', 'plain');
      p.earlier_conversations.forEach(function (e) {
        var li = el('li');
        li.appendChild(el('span', 'muted', new Date(e.created_at).toLocaleDateString() + ' · ' + (e.lang || '') + ' · '));
        li.appendChild(document.createTextNode(e.first_question || '(no question)'));
        ec.appendChild(li);
      });
      box.appendChild(section('Earlier conversations', [ec]));
    }
  }

  // ---------------------------------------------------------------- composer, drafts, canned responses
  // Re-focusing the already focused box after a modal dialog closed can leave Chromium
  // typing nowhere: blur it first.
  function focusInput() {
    var i = $('input');
    if (document.activeElement === i) i.blur();
    i.focus();
  }
  function draftKey(id) { return KEY.draft + id; }
  function saveDraft() {
    if (!current) return;
    var v = $('input').value;
    if (v) ls.set(draftKey(current), JSON.stringify({ text: v, note: noteMode })); else ls.del(draftKey(current));
  }
  function loadDraft(id) {
    try { var d = JSON.parse(ls.get(draftKey(id)) || 'null'); if (d && typeof d.text === 'string') return d; } catch (e) { /* old */ }
    return { text: '', note: false };
  }
  function setMode(note) {
    noteMode = !!note;
    $('mode-reply').setAttribute('aria-pressed', String(!noteMode));
    $('mode-note').setAttribute('aria-pressed', String(noteMode));
    $('composer').classList.toggle('note-mode', noteMode);
    var input = $('input');
    input.setAttribute('aria-label', noteMode ? 'Private note (only agents see it)' : 'Reply to the visitor');
    input.placeholder = noteMode ? 'Private note — only agents see this. Enter saves it.'
      : 'Reply to the visitor — Enter sends, Shift+Enter new line, / for canned responses';
    $('mode-hint').textContent = noteMode ? 'Only agents see notes' : '';
    $('send').textContent = noteMode ? 'Add note' : 'Send';
  }
  $('mode-reply').addEventListener('click', function () { setMode(false); saveDraft(); focusInput(); });
  $('mode-note').addEventListener('click', function () { setMode(true); saveDraft(); focusInput(); });

  $('composer').addEventListener('submit', function (e) {
    e.preventDefault();
    submitComposer();
  });
  function submitComposer() {
    var input = $('input');
    var text = input.value.trim();
    if (!text || !current) return;
    sendText(text, noteMode ? 'note' : 'message');
    input.value = '';
    saveDraft();
    hideSuggest();
  }
  $('input').addEventListener('input', function () {
    saveDraft();
    $('compose-error').hidden = true;
    if (!noteMode && current && this.value.trim() && Date.now() - lastTypingSent > 2500) {
      if (sendFrame({ type: 'typing', conversation: current })) lastTypingSent = Date.now();
    }
    updateSuggest();
  });
  $('input').addEventListener('click', updateSuggest);
  $('input').addEventListener('blur', function () { setTimeout(hideSuggest, 150); });
  $('input').addEventListener('keydown', function (e) {
    var open = !$('suggest').hidden;
    if (open && (e.key === 'ArrowDown' || e.key === 'ArrowUp')) {
      e.preventDefault();
      moveSuggest(e.key === 'ArrowDown' ? 1 : -1);
      return;
    }
    if (open && (e.key === 'Tab' || (e.key === 'Enter' && !e.shiftKey))) {
      e.preventDefault();
      insertSuggest(suggestIndex);
      return;
    }
    if (open && e.key === 'Escape') { e.preventDefault(); e.stopPropagation(); hideSuggest(); return; }
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); submitComposer(); }
  });

  function loadCanned() {
    return api('GET', '/api/canned').then(function (list) {
      canned = Array.isArray(list) ? list : [];
      cannedLoaded = true;
      renderCannedList();
    }, function (e) { if (e.status !== 401) toast('Could not load canned responses: ' + e.message); });
  }
  function langScore(lang, want) {
    if (!want) return lang === 'en' ? 2 : 1;
    if (lang === want) return 4;
    if (lang.split('-')[0] === want.split('-')[0]) return 3;
    return lang === 'en' ? 2 : 1;
  }
  function matches(q) {
    var c = chats.get(current);
    var want = c && c.packet ? c.packet.lang : '';
    var best = {};
    canned.forEach(function (r) {
      if (r.shortcut.indexOf(q) !== 0) return;
      var cur = best[r.shortcut];
      if (!cur || langScore(r.lang, want) > langScore(cur.lang, want)) best[r.shortcut] = r;
    });
    return Object.keys(best).sort().map(function (k) { return best[k]; }).slice(0, 8);
  }
  var suggestItems = [], suggestIndex = 0, suggestFrom = -1;
  function updateSuggest() {
    var input = $('input');
    var upto = input.value.slice(0, input.selectionStart);
    var m = /(^|\s)\/([a-z0-9_-]*)$/i.exec(upto);
    if (!m) { hideSuggest(); return; }
    if (!cannedLoaded) { loadCanned().then(updateSuggest); return; }
    suggestItems = matches(m[2].toLowerCase());
    if (!suggestItems.length) { hideSuggest(); return; }
    suggestFrom = upto.length - m[2].length - 1;
    suggestIndex = 0;
    var ul = $('suggest');
    ul.textContent = '';
    suggestItems.forEach(function (r, i) {
      var li = el('li', 'opt');
      li.id = 'sg-' + i;
      li.setAttribute('role', 'option');
      li.appendChild(el('span', 'sc', '/' + r.shortcut));
      li.appendChild(badge(r.lang));
      li.appendChild(el('span', 'pv', fill(r.text)));
      li.addEventListener('mousedown', function (e) { e.preventDefault(); insertSuggest(i); });
      ul.appendChild(li);
    });
    ul.hidden = false;
    input.setAttribute('aria-expanded', 'true');
    moveSuggest(0);
  }
  function moveSuggest(d) {
    var n = suggestItems.length;
    suggestIndex = (suggestIndex + d + n) % n;
    Array.prototype.forEach.call($('suggest').children, function (li, i) { li.setAttribute('aria-selected', String(i === suggestIndex)); });
    $('input').setAttribute('aria-activedescendant', 'sg-' + suggestIndex);
  }
  function hideSuggest() {
    $('suggest').hidden = true;
    $('input').setAttribute('aria-expanded', 'false');
    $('input').removeAttribute('aria-activedescendant');
  }
  function insertSuggest(i) {
    var r = suggestItems[i];
    if (!r) return;
    var input = $('input');
    var caret = input.selectionStart;
    var text = fill(r.text);
    input.value = input.value.slice(0, suggestFrom) + text + input.value.slice(caret);
    var pos = suggestFrom + text.length;
    input.setSelectionRange(pos, pos);
    hideSuggest();
    saveDraft();
    input.focus();
  }
  /** Fills {visitor.name}, {visitor.email}, {order.id}, {order.status}, {agent.name} from the packet. */
  function fill(text) {
    var c = chats.get(current);
    var p = (c && c.packet) || {};
    var slots = (p.flow && p.flow.slots) || {};
    var order = (p.orders && p.orders[0]) || {};
    var values = {
      'visitor.name': p.identity && p.identity.name,
      'visitor.email': p.contact && p.contact.email,
      'order.id': order.id || slots['order.id'],
      'order.status': human(order.status || slots['order.status']),
      'agent.name': me && me.name,
    };
    var emptied = false;
    var out = text.replace(/\{(visitor\.name|visitor\.email|order\.id|order\.status|agent\.name)\}/g, function (_, k) {
      var v = values[k];
      if (!v) { emptied = true; return ''; }
      return String(v);
    });
    // "Hi {visitor.name}, …" without a name reads "Hi, …", not "Hi , …".
    return emptied ? out.replace(/[ \t]+([,.!?;:])/g, '$1').replace(/[ \t]{2,}/g, ' ') : out;
  }

  // ---------------------------------------------------------------- canned responses editor
  var editingId = null;
  function renderCannedList() {
    var ul = $('canned-list');
    if (!ul) return;
    var filter = $('canned-filter');
    var langs = Array.from(new Set(canned.map(function (r) { return r.lang; }))).sort();
    var keep = filter.value;
    filter.textContent = '';
    filter.appendChild(new Option('All', ''));
    langs.forEach(function (l) { filter.appendChild(new Option(l, l)); });
    filter.value = langs.indexOf(keep) >= 0 ? keep : '';
    ul.textContent = '';
    var shown = canned.filter(function (r) { return !filter.value || r.lang === filter.value; })
      .sort(function (a, b) { return a.shortcut < b.shortcut ? -1 : a.shortcut > b.shortcut ? 1 : a.lang < b.lang ? -1 : 1; });
    if (!shown.length) ul.appendChild(el('li', 'empty', 'No canned responses yet. Create one on the right.'));
    shown.forEach(function (r) {
      var li = el('li', 'canned-item' + (r.id === editingId ? ' editing' : ''));
      var b = el('button', 'canned-edit');
      b.type = 'button';
      b.setAttribute('aria-label', 'Edit /' + r.shortcut + ' (' + r.lang + ')');
      var top = el('span', 'row');
      top.appendChild(el('span', 'sc', '/' + r.shortcut));
      top.appendChild(badge(r.lang));
      b.appendChild(top);
      b.appendChild(el('span', 'pv', r.text));
      b.addEventListener('click', function () { editCanned(r); });
      var del = el('button', 'ghost small-btn', 'Delete');
      del.type = 'button';
      del.setAttribute('aria-label', 'Delete /' + r.shortcut + ' (' + r.lang + ')');
      del.addEventListener('click', function () {
        if (del.dataset.armed !== '1') {
          del.dataset.armed = '1';
          del.textContent = 'Really delete?';
          setTimeout(function () { del.dataset.armed = ''; del.textContent = 'Delete'; }, 4000);
          return;
        }
        api('DELETE', '/api/canned/' + r.id).then(function () {
          announce('Deleted /' + r.shortcut);
          if (editingId === r.id) newCanned();
          return loadCanned();
        }, function (e) { cannedError(e.message); });
      });
      li.appendChild(b);
      li.appendChild(del);
      ul.appendChild(li);
    });
  }
  function cannedError(text) { var e = $('canned-error'); e.textContent = text || ''; e.hidden = !text; }
  function editCanned(r) {
    editingId = r.id;
    $('canned-form-h').textContent = 'Edit /' + r.shortcut;
    $('canned-shortcut').value = r.shortcut;
    $('canned-lang').value = r.lang;
    $('canned-text').value = r.text;
    cannedError('');
    renderCannedList();
    $('canned-text').focus();
  }
  function newCanned() {
    editingId = null;
    $('canned-form-h').textContent = 'New response';
    $('canned-shortcut').value = '';
    var c = chats.get(current);
    $('canned-lang').value = $('canned-filter').value || (c && c.packet && c.packet.lang) || 'en';
    $('canned-text').value = '';
    cannedError('');
    renderCannedList();
  }
  $('canned-new').addEventListener('click', function () { newCanned(); $('canned-shortcut').focus(); });
  $('canned-filter').addEventListener('change', renderCannedList);
  $('canned-form').addEventListener('submit', function (e) {
    e.preventDefault();
    var body = {
      shortcut: $('canned-shortcut').value.trim().replace(/^\//, '').toLowerCase(),
      lang: $('canned-lang').value.trim(),
      text: $('canned-text').value.trim(),
    };
    if (!body.shortcut || !body.lang || !body.text) { cannedError('Shortcut, language and text are all needed.'); return; }
    var req = editingId === null ? api('POST', '/api/canned', body) : api('PUT', '/api/canned/' + editingId, body);
    req.then(function (saved) {
      announce('Saved /' + saved.shortcut);
      toast('Saved /' + saved.shortcut + ' (' + saved.lang + ')');
      editingId = saved.id;
      return loadCanned().then(function () { editCanned(saved); });
    }, function (ex) {
      cannedError(ex.code === 'duplicate' ? 'There is already a /' + body.shortcut + ' in ' + body.lang + '.' : ex.message);
    });
  });
  function openCanned() {
    var d = $('dlg-canned');
    if (d.open) return;
    newCanned();
    d.showModal();
    loadCanned();
    $('canned-shortcut').focus();
  }
  $('btn-canned').addEventListener('click', openCanned);

  // ---------------------------------------------------------------- dialogs: transfer, confirm, help
  Array.prototype.forEach.call(document.querySelectorAll('dialog [data-cancel]'), function (b) {
    b.addEventListener('click', function () { b.closest('dialog').close('cancel'); });
  });
  var confirmResolve = null;
  function confirmDialog(title, text, okLabel) {
    var d = $('dlg-confirm');
    $('confirm-h').textContent = title;
    $('confirm-text').textContent = text;
    $('confirm-go').textContent = okLabel || 'OK';
    return new Promise(function (resolve) {
      confirmResolve = resolve;
      d.returnValue = '';
      d.showModal();
      $('confirm-go').focus();
    });
  }
  $('dlg-confirm').addEventListener('close', function () {
    var r = confirmResolve;
    confirmResolve = null;
    if (r) r(this.returnValue !== 'cancel' && this.returnValue !== '');
    focusInput();
  });
  $('confirm-go').value = 'ok';

  function renderTransferTargets() {
    var sel = $('transfer-to');
    var keep = sel.value;
    sel.textContent = '';
    var ag = document.createElement('optgroup');
    ag.label = 'Agents';
    (queue.agents || []).filter(function (a) { return !me || a.id !== me.id; })
      .sort(function (a, b) { return (b.online - a.online) || (a.name < b.name ? -1 : 1); })
      .forEach(function (a) {
        var o = new Option(a.name + (a.online ? ' — online, ' + a.chats + ' chat' + (a.chats === 1 ? '' : 's') : ' — offline'), 'agent:' + a.id);
        o.disabled = !a.online;
        ag.appendChild(o);
      });
    var tg = document.createElement('optgroup');
    tg.label = 'Teams (queue)';
    (queue.teams || []).forEach(function (t) {
      tg.appendChild(new Option(t.name + (t.open ? '' : ' — closed'), 'team:' + t.id));
    });
    if (ag.children.length) sel.appendChild(ag);
    sel.appendChild(tg);
    if (keep && Array.prototype.some.call(sel.options, function (o) { return o.value === keep && !o.disabled; })) sel.value = keep;
    else {
      var first = Array.prototype.find.call(sel.options, function (o) { return !o.disabled; });
      if (first) sel.value = first.value;
    }
  }
  function openTransfer() {
    if (!current) return;
    renderTransferTargets();
    $('transfer-note').value = '';
    $('transfer-error').hidden = true;
    $('dlg-transfer').showModal();
    $('transfer-to').focus();
  }
  $('btn-transfer').addEventListener('click', openTransfer);
  $('btn-close').addEventListener('click', function () { chatAction('close', 'Closed'); });
  $('btn-handback').addEventListener('click', function () { chatAction('hand_back', 'Handed back'); });
  $('transfer-form').addEventListener('submit', function (e) {
    e.preventDefault();
    var id = current;
    var v = $('transfer-to').value;
    if (!id || !v) return;
    var f = { type: 'transfer', conversation: id };
    var i = v.indexOf(':');
    if (v.slice(0, i) === 'agent') f.to_agent = v.slice(i + 1); else f.to_team = v.slice(i + 1);
    var note = $('transfer-note').value.trim();
    if (note) f.note = note;
    var go = $('transfer-go');
    go.disabled = true;
    request(f).then(function () {
      $('dlg-transfer').close('done');
      var opt = $('transfer-to').selectedOptions[0];
      announce('Transferred to ' + (opt ? opt.textContent.split(' — ')[0] : 'a colleague') + '.');
    }, function (ex) {
      var words = { target_offline: 'They just went offline; pick someone else or a team.', same_agent: 'That is you.',
        unknown_target: 'Unknown agent or team.', not_found: 'This chat is no longer yours.' };
      $('transfer-error').textContent = words[ex.code] || ex.message;
      $('transfer-error').hidden = false;
    }).then(function () { go.disabled = false; });
  });
  $('dlg-transfer').addEventListener('close', function () { focusInput(); });
  $('dlg-canned').addEventListener('close', function () { if (current) focusInput(); });
  $('dlg-help').addEventListener('close', function () { if (current) focusInput(); });

  function openHelp() { var d = $('dlg-help'); if (!d.open) d.showModal(); }
  $('btn-help').addEventListener('click', openHelp);

  // ---------------------------------------------------------------- presence, sound, notifications
  function renderPresence(status) {
    $('presence').value = status === 'away' ? 'away' : 'online';
    $('presence-dot').className = 'dot ' + (status === 'away' ? 'away' : 'online');
  }
  $('presence').addEventListener('change', function () {
    var want = this.value;
    renderPresence(want);
    request({ type: 'presence', status: want }).then(function () { announce('You are ' + want + '.'); }, function (e) {
      renderPresence(want === 'away' ? 'online' : 'away');
      toast('Could not change presence: ' + e.message);
    });
  });
  $('btn-sound').addEventListener('click', function () {
    muted = !muted;
    ls.set(KEY.muted, muted ? '1' : '0');
    renderSoundButton();
    unlockAudio();
    beep();
  });
  $('btn-notify').addEventListener('click', function () {
    if (!window.Notification) return;
    Promise.resolve(Notification.requestPermission()).then(renderNotifyButton, renderNotifyButton);
  });
  // Audio may only start after a gesture: the first key or click unlocks it.
  document.addEventListener('pointerdown', unlockAudio, { once: true, capture: true });
  document.addEventListener('keydown', unlockAudio, { once: true, capture: true });

  // ---------------------------------------------------------------- keyboard
  function nextChat() {
    var ids = Array.from(chats.keys());
    if (!ids.length) return;
    var start = ids.indexOf(current);
    for (var k = 1; k <= ids.length; k++) {
      var id = ids[(start + k + ids.length) % ids.length];
      if (chats.get(id).unread) { openChat(id, true); return; }
    }
    openChat(ids[(start + 1) % ids.length], true);
  }
  function firstOffer() {
    return Array.from(offers.values()).sort(function (a, b) { return a.until - b.until; })[0];
  }
  document.addEventListener('keydown', function (e) {
    if ($('app').hidden) return;
    var dialogOpen = document.querySelector('dialog[open]');
    if (e.altKey && !e.ctrlKey && !e.metaKey) {
      var handled = true;
      switch (e.code) {
        case 'KeyA': { var o = firstOffer(); if (o) accept(o.conversation); else toast('No offer to accept.'); break; }
        case 'KeyD': { var od = firstOffer(); if (od) decline(od.conversation); break; }
        case 'KeyN': if (!dialogOpen) nextChat(); break;
        case 'KeyQ': {
          if (dialogOpen) break;
          var q = document.querySelector('#offers button, #offline button, #queue button');
          if (q) q.focus(); else toast('Nobody is waiting.');
          break;
        }
        case 'KeyR': if (!dialogOpen && current) { setMode(false); focusInput(); } break;
        case 'KeyP': if (!dialogOpen && current) { setMode(!noteMode); saveDraft(); focusInput(); } break;
        case 'KeyT': if (!dialogOpen) openTransfer(); break;
        case 'KeyC': if (!dialogOpen) chatAction('close', 'Closed'); break;
        case 'KeyB': if (!dialogOpen) chatAction('hand_back', 'Handed back'); break;
        case 'KeyK': if (!dialogOpen) openCanned(); break;
        case 'KeyS': {
          var p = $('presence');
          p.value = p.value === 'online' ? 'away' : 'online';
          p.dispatchEvent(new Event('change'));
          break;
        }
        default: handled = false;
      }
      if (handled) e.preventDefault();
      return;
    }
    if (e.key === '?' && !dialogOpen && !/^(INPUT|TEXTAREA|SELECT)$/.test(document.activeElement.tagName)) {
      e.preventDefault();
      openHelp();
    }
  });

  // ---------------------------------------------------------------- ticking clocks
  function tick() {
    var t = now(), mine = Date.now();
    Array.prototype.forEach.call(document.querySelectorAll('[data-since]'), function (n) {
      var v = Number(n.dataset.since);
      if (!isNaN(v)) n.textContent = dur((t - v) / 1000);
    });
    Array.prototype.forEach.call(document.querySelectorAll('[data-until]'), function (n) {
      var left = Math.ceil((Number(n.dataset.until) - mine) / 1000);
      n.textContent = left > 0 ? left + ' s' : 'expiring…';
      n.classList.toggle('urgent', left <= 10);
    });
    Array.prototype.forEach.call(document.querySelectorAll('[data-bar]'), function (n) {
      var left = Math.max(0, Number(n.dataset.bar) - mine);
      n.style.width = Math.min(100, left / 300) + '%';
    });
    if (current) renderTyping();
    if (retryAt > mine && $('conn').classList.contains('reconnecting')) setConn('reconnecting');
  }
  setInterval(tick, 1000);
  document.addEventListener('visibilitychange', function () {
    if (!document.hidden && current && chats.get(current)) { chats.get(current).unread = 0; renderMine(); updateTitle(); }
  });

  // ---------------------------------------------------------------- start
  (function () {
    // The transcript and the unsent messages share one scroll area.
    var ol = $('transcript');
    var scroll = el('div', 'scroll');
    scroll.id = 'scroll';
    ol.parentNode.insertBefore(scroll, ol);
    scroll.appendChild(ol);
    var pend = el('ol', 'pending-list');
    pend.id = 'pending';
    pend.setAttribute('aria-label', 'Not yet delivered');
    scroll.appendChild(pend);
  })();
  renderSoundButton();
  renderNotifyButton();
  setMode(false);
  if (token) { showApp(); connect(true); loadCanned(); } else { showLogin(); }
})();
