// The CX dashboard (/admin): plain JavaScript, no build step, no framework.
// Figures: GET /api/metrics (docs/metrics.md); CSV exports, new FAQ entries (docs/api.md).
// Charts: uPlot 1.6.32 (MIT, https://github.com/leeoniya/uPlot), vendored unmodified from the
// npm package uplot@1.6.32 (dist/uPlot.iife.min.js, sha256 19c8d4c6ad88929a79f4ae49d6f7161566dfd0ba3d15cc495e974f787eb78f1f)
// into /widget/vendor/uplot/ with its LICENSE.
// Everything the server sends (questions, names, reasons) is rendered with textContent,
// never as HTML. Dates are UTC days, as the API counts them.
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
  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); return node; }
  var ss = {
    get: function (k) { try { return window.sessionStorage.getItem(k); } catch (e) { return null; } },
    set: function (k, v) { try { window.sessionStorage.setItem(k, v); } catch (e) { /* full or blocked */ } },
    del: function (k) { try { window.sessionStorage.removeItem(k); } catch (e) { /* blocked */ } },
  };
  var KEY = { token: 'sbd.token', created: 'sbd.faq-created' };
  var LANGS = { en: 'English', 'zh-Hans': '简体中文', 'zh-Hant': '繁體中文', ru: 'Русский', pl: 'Polski' };
  var DAY = 86400000;

  // ---------------------------------------------------------------- formatting
  var nf = new Intl.NumberFormat('en');
  function fmtInt(n) { return n === null || n === undefined ? '—' : nf.format(n); }
  function fmtPct(x) {
    if (x === null || x === undefined || !isFinite(x)) return '—';
    return String(Math.round(x * 1000) / 10) + '%';
  }
  function fmtAvg(x) { return x === null || x === undefined || !isFinite(x) ? '—' : x.toFixed(1); }
  /** Seconds as "0.4 s", "12 s", "1 m 12 s", "2 h 5 m", "1 d 3 h"; "—" for nothing measured. */
  function fmtDur(s) {
    if (s === null || s === undefined || !isFinite(s)) return '—';
    if (s < 0.05) return s > 0 ? '< 0.1 s' : '0 s';
    if (s < 9.95) return (Math.round(s * 10) / 10) + ' s';
    s = Math.round(s);
    if (s < 60) return s + ' s';
    var d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
    if (d) return d + ' d' + (h ? ' ' + h + ' h' : '');
    if (h) return h + ' h' + (m ? ' ' + m + ' m' : '');
    return m + ' m' + (r ? ' ' + r + ' s' : '');
  }
  /** Axis ticks: like fmtDur, but small values keep their digits (0.02 s, 0.04 s…). */
  function tickDur(s) {
    if (s === 0) return '0';
    if (s < 10) return Number(s.toPrecision(2)) + ' s';
    return fmtDur(s);
  }
  function utcFmt(opts) { return new Intl.DateTimeFormat('en-GB', Object.assign({ timeZone: 'UTC' }, opts)); }
  var F = {
    day: utcFmt({ day: 'numeric', month: 'short' }),
    dayYear: utcFmt({ day: 'numeric', month: 'short', year: 'numeric' }),
    weekday: utcFmt({ weekday: 'short', day: 'numeric', month: 'short' }),
    hour: utcFmt({ day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit', hour12: false }),
    full: utcFmt({ day: 'numeric', month: 'short', year: 'numeric', hour: '2-digit', minute: '2-digit', hour12: false }),
  };
  /** A series bucket's start (ms) as the interval reads it. */
  function fmtBucket(ms, interval) {
    var d = new Date(ms);
    if (interval === 'hour') return F.hour.format(d);
    if (interval === 'week') return 'Week of ' + F.dayYear.format(d);
    return F.weekday.format(d);
  }
  /** An x-axis tick: the day at UTC midnight; hours in between on hourly charts only. */
  function axisTime(ms, interval) {
    var d = new Date(ms), midnight = d.getUTCHours() === 0 && d.getUTCMinutes() === 0;
    if (midnight) return F.day.format(d);
    return interval === 'hour' ? ('0' + d.getUTCHours()).slice(-2) + ':' + ('0' + d.getUTCMinutes()).slice(-2) : '';
  }
  function fmtWhen(iso) {
    var t = Date.parse(iso);
    return isNaN(t) ? '—' : F.full.format(new Date(t)) + ' UTC';
  }
  function cap(s) { s = String(s || ''); return s.charAt(0).toUpperCase() + s.slice(1); }

  // ---------------------------------------------------------------- UTC dates (YYYY-MM-DD)
  function isoDay(ms) { return new Date(ms).toISOString().slice(0, 10); }
  function parseDay(s) {
    if (!/^\d{4}-\d{2}-\d{2}$/.test(s || '')) return NaN;
    var t = Date.parse(s + 'T00:00:00Z');
    return isNaN(t) || isoDay(t) !== s ? NaN : t;
  }
  function today() { return isoDay(Date.now()); }
  function addDays(day, n) { return isoDay(parseDay(day) + n * DAY); }

  // ---------------------------------------------------------------- announcements and toasts
  var spoken = { 'sr-polite': [], 'sr-alert': [] };
  function speak(region, text) {
    if (spoken[region].push(text) > 1) return;
    $(region).textContent = '';
    setTimeout(function () { $(region).textContent = spoken[region].join(' '); spoken[region] = []; }, 30);
  }
  function announce(text) { speak('sr-polite', text); }
  function alertText(text) { speak('sr-alert', text); }
  var toastTimer = 0;
  function toast(text) {
    var t = document.querySelector('.toast');
    if (!t) { t = el('div', 'toast'); t.setAttribute('role', 'status'); document.body.appendChild(t); }
    t.textContent = text;
    t.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(function () { t.hidden = true; }, 5000);
  }

  // ---------------------------------------------------------------- state
  var token = ss.get(KEY.token);
  var me = null;                  // the account: {id, email, name, roles, …}
  var agentNames = null;          // Map agent id -> name (managers only)
  var teamsList = null;           // [{id, name}] (managers only)
  var docTitles = new Map();      // "faq:<id>" / "article:<slug>" -> title (editors only)
  var titlesLang = null;
  var data = null;                // the last /api/metrics answer
  var shown = null;               // the filters `data` was loaded with
  var loadSeq = 0;
  var inflight = null;            // AbortController of the running load
  var charts = [];                // [{u, box, height}]
  var sorts = {};                 // table name -> {key, dir}
  var worstFirst = false;
  var created = {};               // normalised question -> "lang/id" of the FAQ made from it
  try { created = JSON.parse(ss.get(KEY.created) || '{}') || {}; } catch (e) { created = {}; }

  function has(role) { return !!(me && me.roles && me.roles.indexOf(role) >= 0); }
  function canRead() { return has('manager') || has('editor'); }

  // ---------------------------------------------------------------- HTTP API
  function apiError(res, data) {
    var err = new Error((data && data.message) || ('HTTP ' + res.status));
    err.code = (data && data.error) || String(res.status);
    err.status = res.status;
    err.fields = (data && data.fields) || [];
    err.retryAfter = Number(res.headers.get('Retry-After')) || 0;
    return err;
  }
  function api(method, path, body, signal) {
    var headers = { 'Accept': 'application/json' };
    if (token) headers.Authorization = 'Bearer ' + token;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    return fetch(path, {
      method: method, headers: headers, cache: 'no-store', signal: signal,
      body: body === undefined ? undefined : JSON.stringify(body),
    }).then(function (res) {
      if (res.status === 204) return null;
      return res.text().then(function (t) {
        var data = null;
        try { data = t ? JSON.parse(t) : null; } catch (e) { data = null; }
        if (res.ok) return data;
        var err = apiError(res, data);
        if (res.status === 401 && path !== '/api/agent/login') sessionEnded();
        throw err;
      });
    });
  }

  // ---------------------------------------------------------------- login / logout / expiry
  function showLogin(note) {
    destroyCharts();
    $('app').hidden = true;
    $('login-view').hidden = false;
    $('login-note').hidden = !note;
    $('login-note').textContent = note || '';
    $('login-error').hidden = true;
    $('login-password').value = '';
    var email = $('login-email');
    (email.value ? $('login-password') : email).focus();
  }
  function resetState() {
    me = null; agentNames = null; teamsList = null; data = null; shown = null;
    docTitles = new Map(); titlesLang = null;
    if (inflight) inflight.abort();
    inflight = null;
  }
  function sessionEnded() {
    if (!token) return;
    token = null;
    ss.del(KEY.token);
    resetState();
    showLogin('Your session has ended. Log in again to see the dashboard.');
    alertText('Session ended; log in again.');
  }
  function logout() {
    var t = token;
    token = null;
    ss.del(KEY.token);
    if (t) fetch('/api/agent/logout', { method: 'POST', headers: { Authorization: 'Bearer ' + t } }).catch(function () {});
    resetState();
    showLogin('You are logged out.');
  }
  $('btn-logout').addEventListener('click', logout);
  $('btn-logout-2').addEventListener('click', logout);
  $('login-form').addEventListener('submit', function (e) {
    e.preventDefault();
    var email = $('login-email').value.trim(), password = $('login-password').value;
    var err = $('login-error');
    if (!email || !password) { err.textContent = 'Enter your e-mail and password.'; err.hidden = false; return; }
    var button = e.target.querySelector('button[type=submit]');
    button.disabled = true;
    api('POST', '/api/agent/login', { email: email, password: password }).then(function (res) {
      token = res.token;
      ss.set(KEY.token, token);
      resetState();
      me = res.agent;
      showApp(true);
    }, function (ex) {
      err.textContent = ex.code === 'bad_credentials' ? 'Wrong e-mail or password.'
        : ex.code === 'rate_limited' ? 'Too many attempts. Try again in ' + (ex.retryAfter || 60) + ' s.'
          : ex.code === 'account_disabled' ? 'This account is disabled.'
            : 'Could not log in: ' + ex.message;
      err.hidden = false;
    }).then(function () { button.disabled = false; });
  });

  // ---------------------------------------------------------------- the app shell
  function showApp(focus) {
    $('login-view').hidden = true;
    $('app').hidden = false;
    $('me').textContent = me.name || me.email;
    $('me').title = me.email || '';
    var roles = clear($('me-roles'));
    (me.roles || []).forEach(function (r) { roles.appendChild(el('span', 'role', r)); });
    if (!canRead()) {
      noAccess('Your account (' + me.email + ') has the ' + ((me.roles || []).join(', ') || 'no') +
        ' role only. The dashboard needs the manager or editor role.');
      return;
    }
    $('noaccess').hidden = true;
    $('dash').hidden = false;
    $('exports').hidden = !has('manager');
    $('faq-role-note').hidden = has('editor');
    cur = readQuery();
    fillForm(cur);
    loadLists();
    load();
    if (focus) $('overview').focus({ preventScroll: true });
  }
  function noAccess(text) {
    destroyCharts();
    $('dash').hidden = true;
    $('noaccess').hidden = false;
    $('noaccess-text').textContent = text;
    alertText('No access: ' + text);
  }

  // Agent and team names (managers may list them); editors see ids and type them.
  function loadLists() {
    if (has('manager')) {
      restoreSelect('f-agent', 'All agents');
      restoreSelect('f-team', 'All teams');
      api('GET', '/api/agents').then(function (res) {
        agentNames = new Map();
        (res.agents || []).forEach(function (a) { agentNames.set(a.id, a.name || a.email || a.id); });
        var items = (res.agents || []).map(function (a) { return { value: a.id, label: a.name || a.email || a.id }; });
        items.sort(function (a, b) { return a.label.localeCompare(b.label); });
        fillSelect($('f-agent'), 'All agents', items, cur.agent);
        if (data) renderCsat(data.csat);
        renderRangeLabel();
      }, function (e) { if (e.status === 403) freeText('f-agent', 'agent id'); });
      api('GET', '/api/teams').then(function (res) {
        teamsList = res.teams || [];
        var items = teamsList.map(function (t) { return { value: t.id, label: t.name || t.id }; });
        fillSelect($('f-team'), 'All teams', items, cur.team);
        renderRangeLabel();
      }, function (e) { if (e.status === 403) freeText('f-team', 'team id'); });
    } else {
      freeText('f-agent', 'agent id');
      freeText('f-team', 'team id');
    }
  }
  function fillSelect(sel, allLabel, items, current) {
    if (sel.tagName !== 'SELECT') return;
    clear(sel);
    var all = el('option', null, allLabel); all.value = '';
    sel.appendChild(all);
    var found = !current;
    items.forEach(function (it) {
      var o = el('option', null, it.label); o.value = it.value;
      if (it.value === current) found = true;
      sel.appendChild(o);
    });
    if (!found) { var o = el('option', null, current); o.value = current; sel.appendChild(o); }
    sel.value = current || '';
  }
  /** Back from a text field to a select (another account logged in in this tab). */
  function restoreSelect(id, allLabel) {
    var old = $(id);
    if (old.tagName === 'SELECT') return;
    var sel = el('select');
    sel.id = id;
    sel.setAttribute('aria-describedby', id + '-err');
    old.parentNode.replaceChild(sel, old);
    fillSelect(sel, allLabel, [], id === 'f-team' ? cur.team : cur.agent);
  }
  /** Turns a filter select into a text field (the lists need the manager role). */
  function freeText(id, placeholder) {
    var old = $(id);
    if (old.tagName === 'INPUT') return;
    var input = el('input');
    input.id = id;
    input.type = 'text';
    input.placeholder = placeholder;
    input.spellcheck = false;
    input.autocomplete = 'off';
    input.setAttribute('aria-describedby', id + '-err');
    input.value = (id === 'f-team' ? cur.team : cur.agent) || '';
    old.parentNode.replaceChild(input, old);
    input.addEventListener('change', function () { apply(); });
  }

  // ---------------------------------------------------------------- filters <-> URL
  var cur = null;   // {from, to (inclusive), days (a rolling preset) or 0, interval, team, agent, lang}
  function defaults() { return { days: 7, from: addDays(today(), -6), to: today(), interval: 'day', team: '', agent: '', lang: '' }; }
  function readQuery() {
    var q = new URLSearchParams(location.search), f = defaults();
    var days = Number(q.get('days'));
    if (q.has('from') || q.has('to')) {
      var to = q.get('to'), from = q.get('from');
      f.days = 0;
      f.to = isNaN(parseDay(to)) ? today() : to;
      f.from = isNaN(parseDay(from)) ? addDays(f.to, -6) : from;
    } else if (days >= 1 && days <= 400 && Math.floor(days) === days) {
      f.days = days;
      f.to = today();
      f.from = addDays(f.to, -(days - 1));
    }
    var interval = q.get('interval');
    if (interval === 'hour' || interval === 'day' || interval === 'week') f.interval = interval;
    f.team = (q.get('team') || '').trim();
    f.agent = (q.get('agent') || '').trim();
    f.lang = (q.get('lang') || '').trim();
    return f;
  }
  function queryOf(f) {
    var q = new URLSearchParams();
    if (f.days) q.set('days', String(f.days)); else { q.set('from', f.from); q.set('to', f.to); }
    if (f.interval !== 'day') q.set('interval', f.interval);
    if (f.team) q.set('team', f.team);
    if (f.agent) q.set('agent', f.agent);
    if (f.lang) q.set('lang', f.lang);
    return q.toString();
  }
  function fillForm(f) {
    $('f-from').value = f.from;
    $('f-to').value = f.to;
    $('f-interval').value = f.interval;
    setFilterValue('f-team', f.team);
    setFilterValue('f-agent', f.agent);
    setFilterValue('f-lang', f.lang);
    Array.prototype.forEach.call(document.querySelectorAll('.preset'), function (b) {
      b.setAttribute('aria-pressed', String(Number(b.dataset.days) === f.days));
    });
    $('btn-apply').classList.remove('pending');
  }
  function setFilterValue(id, value) {
    var n = $(id);
    if (n.tagName === 'SELECT' && value && !Array.prototype.some.call(n.options, function (o) { return o.value === value; })) {
      var o = el('option', null, value); o.value = value; n.appendChild(o);
    }
    n.value = value || '';
  }
  function readForm() {
    var f = {
      days: 0, from: $('f-from').value, to: $('f-to').value, interval: $('f-interval').value,
      team: $('f-team').value.trim(), agent: $('f-agent').value.trim(), lang: $('f-lang').value,
    };
    // Still the rolling preset when its dates were not touched.
    if (cur && cur.days && f.from === cur.from && f.to === cur.to) f.days = cur.days;
    return f;
  }
  /** Takes the form's filters: into the URL (a new history entry), then loads. */
  function apply(f) {
    f = f || readForm();
    clearFilterErrors();
    if (!validRange(f)) return;
    cur = f;
    var q = queryOf(f);
    if (q !== location.search.replace(/^\?/, '')) history.pushState(null, '', location.pathname + '?' + q);
    fillForm(f);
    load();
  }
  function validRange(f) {
    var ok = true;
    if (isNaN(parseDay(f.from))) { filterError('from', 'Enter a start date.'); ok = false; }
    if (isNaN(parseDay(f.to))) { filterError('to', 'Enter an end date.'); ok = false; }
    if (ok && f.from > f.to) { filterError('from', 'The start date must be on or before the end date.'); ok = false; }
    if (ok && (parseDay(f.to) - parseDay(f.from)) / DAY + 1 > 400) { filterError('from', 'A range may cover at most 400 days.'); ok = false; }
    if (ok && f.interval === 'hour' && (parseDay(f.to) - parseDay(f.from)) / DAY + 1 > 83) {
      filterError('interval', 'Hourly figures cover at most 83 days; choose Day or a shorter range.'); ok = false;
    }
    return ok;
  }
  function filterError(field, message) {
    var map = { from: 'f-from', to: 'f-to', interval: 'f-interval', team: 'f-team', agent: 'f-agent', lang: 'f-lang' };
    var id = map[field];
    if (!id) { showError('The server refused the filters: ' + field + ': ' + message); return; }
    var p = $(id + '-err');
    var label = document.querySelector('label[for="' + id + '"]');
    p.textContent = (label ? label.firstChild.textContent.trim() + ': ' : '') + message;
    p.hidden = false;
    $(id).setAttribute('aria-invalid', 'true');
  }
  function clearFilterErrors() {
    ['f-from', 'f-to', 'f-interval', 'f-team', 'f-agent', 'f-lang'].forEach(function (id) {
      $(id + '-err').hidden = true;
      $(id + '-err').textContent = '';
      $(id).removeAttribute('aria-invalid');
    });
  }
  $('filters').addEventListener('submit', function (e) { e.preventDefault(); apply(); });
  $('filters').addEventListener('change', function (e) {
    var id = e.target.id;
    if (id === 'f-from' || id === 'f-to') {
      $('btn-apply').classList.add('pending');
      Array.prototype.forEach.call(document.querySelectorAll('.preset'), function (b) { b.setAttribute('aria-pressed', 'false'); });
      return;   // typed dates pass through invalid ones: Apply (or Enter) takes them
    }
    if (id === 'f-interval' || e.target.tagName === 'SELECT') apply();
  });
  Array.prototype.forEach.call(document.querySelectorAll('.preset'), function (b) {
    b.addEventListener('click', function () {
      var days = Number(b.dataset.days), f = readForm();
      f.days = days; f.to = today(); f.from = addDays(f.to, -(days - 1));
      if (f.interval === 'hour' && days > 83) f.interval = 'day';
      apply(f);
    });
  });
  window.addEventListener('popstate', function () {
    if (!me || !canRead()) return;
    cur = readQuery();
    fillForm(cur);
    clearFilterErrors();
    load();
  });
  $('btn-retry').addEventListener('click', function () { load(); });
  $('btn-clear').addEventListener('click', function () {
    var f = readForm();
    if (f.team || f.agent || f.lang) { f.team = ''; f.agent = ''; f.lang = ''; apply(f); return; }
    f.days = 90; f.to = today(); f.from = addDays(f.to, -89);
    if (f.interval === 'hour') f.interval = 'day';
    apply(f);
  });

  // ---------------------------------------------------------------- loading
  function metricsQuery(f) {
    var q = new URLSearchParams();
    q.set('from', f.from);
    q.set('to', addDays(f.to, 1));   // the API's `to` is exclusive; the form's is the last day shown
    q.set('interval', f.interval);
    if (f.team) q.set('team', f.team);
    if (f.agent) q.set('agent', f.agent);
    if (f.lang) q.set('lang', f.lang);
    return q.toString();
  }
  function setBusy(on) {
    $('dash').classList.toggle('busy', on);
    $('overview').setAttribute('aria-busy', String(on));
    $('details').setAttribute('aria-busy', String(on));
    $('loading').textContent = on ? 'Loading…' : '';
  }
  function showError(text) {
    $('error-text').textContent = text;
    $('error-box').hidden = false;
  }
  function load() {
    if (!token || !cur) return;
    var f = cur, seq = ++loadSeq;
    if (inflight) inflight.abort();
    var ctrl = window.AbortController ? new AbortController() : null;
    inflight = ctrl;
    $('error-box').hidden = true;
    setBusy(true);
    if (!data) { renderTiles(null); $('details').hidden = true; $('empty-box').hidden = true; }
    api('GET', '/api/metrics?' + metricsQuery(f), undefined, ctrl && ctrl.signal).then(function (res) {
      if (seq !== loadSeq) return;
      data = res;
      shown = f;
      setBusy(false);
      render();
      if (has('editor')) loadTitles(f.lang || 'en');
      announce('Figures loaded: ' + fmtInt(res.totals.conversations) + ' conversations.');
    }, function (e) {
      if (seq !== loadSeq || (e && e.name === 'AbortError')) return;
      setBusy(false);
      if (e.status === 401) return;   // back at the login already
      if (e.status === 403) { noAccess(cap(e.message) + '. The dashboard needs the manager or editor role.'); return; }
      if (!data) clear($('tiles'));
      var before = data ? ' The figures below are still those of ' + $('range-label').textContent + '.' : '';
      if (e.status === 422 && e.fields.length) {
        e.fields.forEach(function (x) { filterError(x.field, x.message); });
        showError('Check the filters: ' + e.message + '.' + before);
        return;
      }
      showError('Could not load the figures: ' + (e.message || 'network error') + '.' + before);
      alertText('Could not load the figures.');
    });
  }
  // Editors see documents' titles (in the filter's language, else English).
  function loadTitles(lang) {
    if (titlesLang === lang) return;
    titlesLang = lang;
    var q = '?lang=' + encodeURIComponent(lang);
    Promise.all([api('GET', '/api/kb/faq' + q).catch(function () { return null; }),
      api('GET', '/api/kb/articles' + q).catch(function () { return null; })]).then(function (r) {
      if (titlesLang !== lang) return;
      docTitles = new Map();
      ((r[0] && r[0].faq) || []).forEach(function (x) { docTitles.set('faq:' + x.id, x.question); });
      ((r[1] && r[1].articles) || []).forEach(function (x) { docTitles.set('article:' + x.slug, x.title); });
      if (data) renderArticles(data.articles || []);
    });
  }

  // ---------------------------------------------------------------- rendering
  function render() {
    var t = data.totals, empty = !t || !t.conversations;
    renderRangeLabel();
    renderTiles(t);
    $('empty-box').hidden = !empty;
    $('details').hidden = empty;
    if (empty) {
      destroyCharts();
      var filtered = shown.team || shown.agent || shown.lang;
      $('empty-hint').textContent = filtered ? 'No chats match these filters.' : 'Try a longer range.';
      $('btn-clear').textContent = filtered ? 'Clear the filters' : 'Show the last 90 days';
      return;
    }
    renderCharts(data.series || [], data.interval || shown.interval);
    renderCsat(data.csat);
    renderReasons(data.handoff_reasons || [], t.handoffs);
    renderUnanswered(data.unanswered || []);
    renderArticles(data.articles || []);
  }

  function renderRangeLabel() {
    if (!data || !shown) return;
    var from = Date.parse(data.from), to = Date.parse(data.to) - 1;
    var text = (isoDay(from) === isoDay(to) ? F.dayYear.format(new Date(from))
      : F.day.format(new Date(from)) + ' – ' + F.dayYear.format(new Date(to))) + ' (UTC), by ' + (data.interval || shown.interval);
    var parts = [];
    if (shown.team) parts.push('team ' + teamName(shown.team));
    if (shown.agent) parts.push('agent ' + agentName(shown.agent));
    if (shown.lang) parts.push((LANGS[shown.lang] || shown.lang) + ' chats');
    if (parts.length) text += ' · ' + parts.join(', ');
    $('range-label').textContent = text;
  }
  function teamName(id) {
    var t = (teamsList || []).find(function (x) { return x.id === id; });
    return t ? t.name : id;
  }
  function agentName(id) { return agentNames && agentNames.has(id) ? agentNames.get(id) : id; }

  // ---- tiles
  var TILES = [
    { key: 'conversations', label: 'Conversations', value: function (t) { return fmtInt(t.conversations); },
      sub: function (t) { return fmtInt(t.engaged) + ' engaged'; },
      desc: 'Chats opened in the range; engaged: the visitor wrote at least once.' },
    { key: 'containment', label: 'Containment rate', value: function (t) { return fmtPct(t.containment_rate); },
      sub: function (t) { return fmtInt(t.bot_contained) + ' handled by the bot alone'; },
      desc: 'Engaged chats never handed to people.' },
    { key: 'handoff', label: 'Handoff rate', value: function (t) { return fmtPct(t.handoff_rate); },
      sub: function (t) { return fmtInt(t.handoffs) + ' handed to people'; },
      desc: 'Engaged chats that asked for or were sent to a person.' },
    { key: 'csat', label: 'CSAT average', value: function (t) { return t.csat && t.csat.avg != null ? fmtAvg(t.csat.avg) + ' / 5' : '—'; },
      sub: function (t) { var n = t.csat ? t.csat.ratings : 0; return fmtInt(n) + (n === 1 ? ' rating' : ' ratings'); },
      desc: 'Mean satisfaction rating, 1 (poor) to 5 (great).' },
    { key: 'satisfied', label: 'Satisfied', value: function (t) { return fmtPct(t.csat && t.csat.satisfied); },
      sub: function () { return 'ratings of 4 or 5'; },
      desc: 'Share of ratings that were a 4 or a 5.' },
    { key: 'first_response', stat: 'first_response_secs', label: 'First response',
      desc: 'The visitor’s first message → the first bot or agent reply.' },
    { key: 'first_agent_reply', stat: 'first_agent_reply_secs', label: 'First agent reply',
      desc: 'Handoff asked → the first reply from an agent.' },
    { key: 'queue_wait', stat: 'queue_wait_secs', label: 'Queue wait',
      desc: 'Joined a queue → an agent took the chat (chats never taken are not counted).' },
    { key: 'resolution', stat: 'resolution_secs', label: 'Time to resolution',
      desc: 'First message → closed by an agent, or the bot’s last answer in chats it handled alone.' },
  ];
  function renderTiles(t) {
    var box = clear($('tiles'));
    TILES.forEach(function (d) {
      var tile = el('div', 'tile' + (t ? '' : ' placeholder'));
      tile.dataset.figure = d.key;
      tile.title = d.desc;
      var label = el('p', 't-label', d.label);
      if (d.stat) label.appendChild(el('span', 't-unit', ' · average'));
      label.id = 'tile-' + d.key;
      var value, sub;
      if (!t) { value = '…'; sub = '\u00a0'; }
      else if (d.stat) {
        var s = t[d.stat] || {};
        value = fmtDur(s.avg);
        sub = s.count ? 'p90 ' + fmtDur(s.p90) + ' · ' + fmtInt(s.count) + (s.count === 1 ? ' chat' : ' chats') : 'nothing measured';
      } else { value = d.value(t); sub = d.sub(t); }
      var v = el('p', 't-value', value);
      if (d.stat) v.setAttribute('aria-label', d.label + ' average: ' + value);
      tile.appendChild(label);
      tile.appendChild(v);
      tile.appendChild(el('p', 't-sub', sub));
      tile.appendChild(el('p', 't-desc', d.desc));
      box.appendChild(tile);
    });
  }

  // ---- charts (uPlot)
  var STEP = { hour: 3600, day: 86400, week: 604800 };
  var COLORS = { green: '#1f6f5c', orange: '#c2570c', blue: '#1d5fa8' };
  var CHARTS = [
    { id: 'volume', name: 'conversations and handoffs', yKind: 'count',
      series: [
        { label: 'Conversations', color: COLORS.green, bars: true, get: function (b) { return b.conversations; }, fmt: fmtInt },
        { label: 'Handoffs', color: COLORS.orange, get: function (b) { return b.handoffs; }, fmt: fmtInt },
      ] },
    { id: 'quality', name: 'containment rate and satisfied share', yKind: 'pct',
      series: [
        { label: 'Containment rate', color: COLORS.green, get: function (b) { return b.containment_rate; }, fmt: fmtPct },
        { label: 'Satisfied (CSAT 4–5)', color: COLORS.blue, dash: [6, 4], get: function (b) { return b.csat ? b.csat.satisfied : null; }, fmt: fmtPct },
      ] },
    { id: 'speed', name: 'first response and queue wait', yKind: 'dur',
      series: [
        { label: 'First response (avg)', color: COLORS.green, get: function (b) { return b.first_response_secs ? b.first_response_secs.avg : null; }, fmt: fmtDur },
        { label: 'Queue wait (avg)', color: COLORS.orange, dash: [6, 4], get: function (b) { return b.queue_wait_secs ? b.queue_wait_secs.avg : null; }, fmt: fmtDur },
      ] },
  ];
  function destroyCharts() {
    charts.forEach(function (c) { try { c.u.destroy(); } catch (e) { /* gone */ } });
    charts = [];
  }
  function chartHeight() { return window.innerWidth < 760 ? 200 : 230; }
  function num(v) { return v === null || v === undefined || !isFinite(v) ? null : v; }
  function renderCharts(series, interval) {
    destroyCharts();
    var xs = series.map(function (b) { return Date.parse(b.start) / 1000; });
    var unit = interval === 'hour' ? 'hour' : interval === 'week' ? 'week' : 'day';
    CHARTS.forEach(function (spec) {
      var box = clear($('chart-' + spec.id));
      var cols = spec.series.map(function (s) {
        return series.map(function (b) { var v = num(s.get(b)); return v !== null && spec.yKind === 'pct' ? v * 100 : v; });
      });
      box.setAttribute('aria-label', 'Chart of ' + spec.name + ' per ' + unit + '. The same figures are in the table below it.');
      renderChartTable(spec, series, interval);
      if (!window.uPlot) {
        box.appendChild(el('p', 'chart-empty', 'The chart could not be drawn (its script did not load); the table below has the figures.'));
        return;
      }
      var hasData = cols.some(function (c) { return c.some(function (v) { return v !== null; }); });
      var u = new window.uPlot(chartOptions(spec, box, interval), [xs].concat(cols), box);
      charts.push({ u: u, box: box });
      if (!hasData) box.appendChild(el('p', 'chart-empty', 'Nothing measured in this range.'));
    });
  }
  function chartOptions(spec, box, interval) {
    var step = STEP[interval] || 86400;
    var axis = { stroke: '#5f6b76', font: '12px system-ui, -apple-system, "Segoe UI", Roboto, sans-serif',
      grid: { stroke: '#eceff2', width: 1 }, ticks: { stroke: '#d6dbe0', width: 1, size: 4 } };
    var y = Object.assign({}, axis);
    var yScale = {};
    if (spec.yKind === 'pct') {
      yScale.range = function () { return [0, 100]; };
      y.values = function (u, splits) { return splits.map(function (v) { return v + '%'; }); };
      y.size = 48;
    } else if (spec.yKind === 'count') {
      yScale.range = function (u, min, max) { return [0, Math.max(4, Math.ceil((max || 0) * 1.15))]; };
      y.incrs = [1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 2500, 5000, 10000, 20000, 50000, 100000];
      y.values = function (u, splits) { return splits.map(fmtInt); };
      y.size = 48;
    } else {
      yScale.range = function (u, min, max) { return [0, max > 0 ? max * 1.2 : 1]; };
      y.values = function (u, splits) { return splits.map(tickDur); };
      y.size = 64;
    }
    var series = [{ label: interval === 'week' ? 'Week' : interval === 'hour' ? 'Hour' : 'Day',
      value: function (u, v) { return v === null || v === undefined ? '—' : fmtBucket(v * 1000, interval); } }];
    spec.series.forEach(function (s) {
      var o = {
        label: s.label, stroke: s.color, width: 2, spanGaps: false,
        value: function (u, v) { return v === null || v === undefined ? '—' : s.fmt(spec.yKind === 'pct' ? v / 100 : v); },
        points: { show: true, size: 6, fill: '#fff', filter: pointFilter },
      };
      if (s.dash) o.dash = s.dash;
      if (s.bars && window.uPlot.paths && window.uPlot.paths.bars) {
        o.paths = window.uPlot.paths.bars({ size: [0.6, 56] });
        o.fill = 'rgba(31, 111, 92, 0.28)';
        o.width = 1;
        o.points = { show: false };
      }
      series.push(o);
    });
    return {
      width: Math.max(200, box.clientWidth || 400),
      height: chartHeight(),
      tzDate: function (ts) { return window.uPlot.tzDate(new Date(ts * 1000), 'Etc/UTC'); },
      scales: { x: { time: true, range: function (u, min, max) { return [min - step / 2, max + step / 2]; } }, y: yScale },
      axes: [Object.assign({}, axis, { space: 64, values: function (u, splits) {
        return splits.map(function (t) { return axisTime(t * 1000, interval); });
      } }), y],
      series: series,
      legend: { live: true },
      cursor: { drag: { x: false, y: false, setScale: false }, points: { size: 8 } },
    };
  }
  /** Every point while there is room; on a crowded chart only lone values (between gaps), which no line shows. */
  function pointFilter(u, si) {
    var d = u.data[si], n = d.length, w = u.bbox.width / (window.uPlot.pxRatio || 1);
    if (n <= 1 || w / n >= 14) return null;
    var out = [];
    for (var i = 0; i < n; i++) {
      if (d[i] !== null && (i === 0 || d[i - 1] === null) && (i === n - 1 || d[i + 1] === null)) out.push(i);
    }
    return out;
  }
  // Charts follow their box's width (window resizes, the phone's rotation, the layout's columns).
  var resizeObserver = window.ResizeObserver ? new ResizeObserver(function () {
    charts.forEach(function (c) {
      var w = Math.max(200, Math.floor(c.box.clientWidth)), h = chartHeight();
      if (w !== c.u.width || h !== c.u.height) c.u.setSize({ width: w, height: h });
    });
  }) : null;
  if (resizeObserver) ['chart-volume', 'chart-quality', 'chart-speed'].forEach(function (id) { resizeObserver.observe($(id)); });
  else window.addEventListener('resize', function () {
    charts.forEach(function (c) { c.u.setSize({ width: Math.max(200, c.box.clientWidth), height: chartHeight() }); });
  });

  function renderChartTable(spec, series, interval) {
    var cols = [{ key: 'start', label: interval === 'week' ? 'Week' : interval === 'hour' ? 'Hour (UTC)' : 'Day (UTC)', head: true,
      cell: function (b) { return fmtBucket(Date.parse(b.start), interval); } }];
    spec.series.forEach(function (s) {
      cols.push({ key: s.label, label: s.label, num: true, cell: function (b) { return s.fmt(num(s.get(b))); } });
    });
    var wrap = clear($('table-' + spec.id));
    wrap.appendChild(table({ columns: cols, rows: series, caption: 'Figures per ' + (interval || 'day') + ': ' + spec.name }));
  }

  // ---- tables
  /**
   * A data table. columns: [{key, label, num, head, cell(row) -> text or Node, sort(row) -> value}];
   * `name` makes it sortable by its headers (the choice is kept across reloads).
   */
  function table(o) {
    var t = el('table', 'data');
    if (o.caption) t.appendChild(el('caption', 'sr', o.caption));
    var rows = o.rows.slice();
    var sort = o.name ? (sorts[o.name] || o.defaultSort) : null;
    if (sort) {
      var col = o.columns.find(function (c) { return c.key === sort.key; });
      if (col && col.sort) {
        rows.sort(function (a, b) {
          var x = col.sort(a), y = col.sort(b);
          if (x === y) return 0;
          if (x === null || x === undefined) return 1;    // nothing measured: always last
          if (y === null || y === undefined) return -1;
          return (x < y ? -1 : 1) * (sort.dir === 'asc' ? 1 : -1);
        });
      }
    }
    var thead = el('thead'), hr = el('tr');
    o.columns.forEach(function (c) {
      var th = el('th', c.num ? 'num' : '');
      th.scope = 'col';
      if (o.name && c.sort) {
        var active = sort && sort.key === c.key;
        if (active) th.setAttribute('aria-sort', sort.dir === 'asc' ? 'ascending' : 'descending');
        var b = el('button', 'sort');
        b.type = 'button';
        b.appendChild(el('span', null, c.label));
        var arrow = el('span', 'arrow', active ? (sort.dir === 'asc' ? '▲' : '▼') : '↕');
        arrow.setAttribute('aria-hidden', 'true');
        b.appendChild(arrow);
        b.title = 'Sort by ' + c.label;
        b.addEventListener('click', function () {
          var dir = active ? (sort.dir === 'asc' ? 'desc' : 'asc') : (c.num ? 'desc' : 'asc');
          sorts[o.name] = { key: c.key, dir: dir };
          if (o.onSort) o.onSort();
          o.rerender();
          var again = document.querySelector('[data-table="' + o.name + '"] th[aria-sort] .sort');
          if (again) again.focus();
          announce('Sorted by ' + c.label + ', ' + (dir === 'asc' ? 'ascending' : 'descending') + '.');
        });
        th.appendChild(b);
      } else {
        th.textContent = c.label;
      }
      hr.appendChild(th);
    });
    thead.appendChild(hr);
    t.appendChild(thead);
    var tb = el('tbody');
    rows.forEach(function (r) {
      var tr = el('tr');
      o.columns.forEach(function (c) {
        var td = el(c.head ? 'th' : 'td', c.num ? 'num' : (c.cls || ''));
        if (c.head) td.scope = 'row';
        var v = c.cell(r);
        if (v instanceof Node) td.appendChild(v); else td.textContent = v === null || v === undefined ? '—' : String(v);
        tr.appendChild(td);
      });
      if (o.rowAttrs) o.rowAttrs(tr, r);
      tb.appendChild(tr);
    });
    t.appendChild(tb);
    if (o.name) t.dataset.table = o.name;
    return t;
  }
  function meter(share, bad) {
    var wrap = el('span', 'share');
    wrap.appendChild(el('span', null, fmtPct(share)));
    var m = el('span', 'meter' + (bad ? ' bad' : ''));
    m.setAttribute('aria-hidden', 'true');
    var fill = el('span');
    fill.style.width = (share === null || share === undefined ? 0 : Math.max(0, Math.min(1, share)) * 100) + '%';
    m.appendChild(fill);
    wrap.appendChild(m);
    return wrap;
  }
  /** A table box that scrolls sideways when narrow: then a keyboard stop (and a named region) of its own. */
  function scrollable(wrap, label) {
    wrap.classList.add('scrolls');
    wrap.dataset.label = label;
    requestAnimationFrame(function () { fitScrollable(wrap); });
  }
  function fitScrollable(wrap) {
    if (wrap.scrollWidth > wrap.clientWidth + 1) {
      wrap.tabIndex = 0;
      wrap.setAttribute('role', 'region');
      wrap.setAttribute('aria-label', wrap.dataset.label + ' (scrolls sideways)');
    } else {
      wrap.removeAttribute('tabindex');
      wrap.removeAttribute('role');
      wrap.removeAttribute('aria-label');
    }
  }
  var fitTimer = 0;
  window.addEventListener('resize', function () {
    clearTimeout(fitTimer);
    fitTimer = setTimeout(function () { Array.prototype.forEach.call(document.querySelectorAll('.scrolls'), fitScrollable); }, 150);
  });
  function emptyRow(text) { return el('p', 'empty-row', text); }

  // ---- CSAT
  function renderCsat(c) {
    if (!c) return;
    var split = clear($('csat-split'));
    var rows = [{ who: 'All chats', v: c.all }, { who: 'Bot alone', v: c.bot }, { who: 'With people', v: c.human }];
    split.appendChild(table({
      caption: 'Satisfaction, bot and people',
      columns: [
        { key: 'who', label: 'Resolved by', head: true, cell: function (r) { return r.who; } },
        { key: 'ratings', label: 'Ratings', num: true, cell: function (r) { return fmtInt(r.v ? r.v.ratings : 0); } },
        { key: 'avg', label: 'Average', num: true, cell: function (r) { return r.v && r.v.avg != null ? fmtAvg(r.v.avg) + ' / 5' : '—'; } },
        { key: 'sat', label: 'Satisfied', num: true, cell: function (r) { return r.v && r.v.satisfied != null ? meter(r.v.satisfied) : '—'; } },
      ],
      rows: rows,
    }));
    var box = clear($('csat-agents'));
    var per = c.per_agent || [];
    if (!per.length) { box.appendChild(emptyRow('No ratings for agents in this range.')); return; }
    scrollable(box, 'Satisfaction by agent');
    var render = function () {
      clear(box).appendChild(table({
        name: 'agents', defaultSort: { key: 'ratings', dir: 'desc' }, rerender: render,
        caption: 'Satisfaction by agent',
        columns: [
          { key: 'agent', label: 'Agent', head: true, sort: function (r) { return (r.name || agentName(r.agent)).toLowerCase(); },
            cell: function (r) {
              if (r.name) return r.name;
              if (agentNames && agentNames.has(r.agent)) return agentNames.get(r.agent);
              var s = el('span', 'agent-id', r.agent); s.title = 'Agent id (names need the manager role)';
              return s;
            } },
          { key: 'ratings', label: 'Ratings', num: true, sort: function (r) { return r.ratings; }, cell: function (r) { return fmtInt(r.ratings); } },
          { key: 'avg', label: 'Average', num: true, sort: function (r) { return r.avg; }, cell: function (r) { return r.avg != null ? fmtAvg(r.avg) + ' / 5' : '—'; } },
          { key: 'satisfied', label: 'Satisfied', num: true, sort: function (r) { return r.satisfied; },
            cell: function (r) { return r.satisfied != null ? meter(r.satisfied) : '—'; } },
        ],
        rows: per,
      }));
    };
    render();
  }

  // ---- handoff reasons
  function renderReasons(list, total) {
    var box = clear($('reasons'));
    if (!list.length) { box.appendChild(emptyRow('No chats were handed to people in this range.')); return; }
    var sum = total || list.reduce(function (a, r) { return a + r.count; }, 0);
    scrollable(box, 'Handoff reasons');
    var render = function () {
      clear(box).appendChild(table({
        name: 'reasons', defaultSort: { key: 'count', dir: 'desc' }, rerender: render,
        caption: 'Handoff reasons',
        columns: [
          { key: 'reason', label: 'Reason', head: true, sort: function (r) { return String(r.reason).toLowerCase(); }, cell: function (r) { return cap(r.reason); } },
          { key: 'count', label: 'Chats', num: true, sort: function (r) { return r.count; }, cell: function (r) { return fmtInt(r.count); } },
          { key: 'share', label: 'Share', num: true, sort: function (r) { return r.count; }, cell: function (r) { return meter(sum ? r.count / sum : null); } },
        ],
        rows: list,
      }));
    };
    render();
  }

  // ---- unanswered questions
  function norm(q) { return String(q).trim().replace(/\s+/g, ' ').toLowerCase(); }
  function renderUnanswered(list) {
    var box = clear($('unanswered'));
    if (!list.length) { box.appendChild(emptyRow('The bot found an answer for every question in this range.')); return; }
    scrollable(box, 'Unanswered questions');
    var editor = has('editor');
    var columns = [
      { key: 'question', label: 'Question', head: true, cls: 'qcell', sort: function (r) { return norm(r.question); },
        cell: function (r) { var s = el('span', 'qtext', r.question); s.lang = r.lang || ''; return s; } },
      { key: 'count', label: 'Times asked', num: true, sort: function (r) { return r.count; }, cell: function (r) { return fmtInt(r.count); } },
      { key: 'last', label: 'Last asked', num: true, sort: function (r) { return Date.parse(r.last_asked) || 0; },
        cell: function (r) { var t = el('time', null, fmtWhen(r.last_asked)); t.dateTime = r.last_asked || ''; return t; } },
    ];
    if (editor) {
      columns.push({ key: 'action', label: 'FAQ', num: true, cell: function (r) {
        var done = created[norm(r.question)];
        if (done) { var tag = el('span', 'created', 'FAQ created'); tag.title = 'Created as ' + done; return tag; }
        var b = el('button', 'small-btn new-faq', 'New FAQ');
        b.type = 'button';
        b.setAttribute('aria-label', 'New FAQ for: ' + r.question);
        b.addEventListener('click', function () { openFaq(r, b); });
        return b;
      } });
    }
    var render = function () {
      clear(box).appendChild(table({
        name: 'unanswered', defaultSort: { key: 'count', dir: 'desc' }, rerender: render,
        caption: 'Unanswered questions', columns: columns, rows: list,
        rowAttrs: function (tr, r) { tr.dataset.question = r.question; },
      }));
    };
    render();
  }

  // ---- answer helpfulness
  function renderArticles(list) {
    var box = clear($('articles'));
    $('btn-worst').hidden = !list.length;
    if (!list.length) { box.appendChild(emptyRow('The bot gave no knowledge-base answers in this range.')); return; }
    scrollable(box, 'Answer helpfulness');
    var render = function () {
      var sort = sorts.articles;
      worstFirst = !!(sort && sort.key === 'rate' && sort.dir === 'asc');
      $('btn-worst').setAttribute('aria-pressed', String(worstFirst));
      clear(box).appendChild(table({
        name: 'articles', defaultSort: { key: 'shown', dir: 'desc' }, rerender: render,
        caption: 'Answer helpfulness by document',
        columns: [
          { key: 'doc', label: 'Document', head: true, sort: function (r) { return (r.title || docTitles.get(r.doc) || r.doc).toLowerCase(); },
            cell: function (r) {
              var m = /^(faq|article):(.*)$/.exec(r.doc || ''), wrap = el('span', 'doc');
              var title = r.title || docTitles.get(r.doc);
              var line = el('span');
              line.appendChild(el('span', 'kind', m ? (m[1] === 'faq' ? 'FAQ' : 'Article') : 'Doc'));
              line.appendChild(document.createTextNode(title || (m ? m[2] : r.doc)));
              wrap.appendChild(line);
              if (title) wrap.appendChild(el('span', 'id', r.doc));
              return wrap;
            } },
          { key: 'shown', label: 'Times shown', num: true, sort: function (r) { return r.shown; }, cell: function (r) { return fmtInt(r.shown); } },
          { key: 'helpful', label: 'Helpful votes', num: true, sort: function (r) { return r.helpful; }, cell: function (r) { return fmtInt(r.helpful); } },
          { key: 'unhelpful', label: 'Not helpful', num: true, sort: function (r) { return r.unhelpful; }, cell: function (r) { return fmtInt(r.unhelpful); } },
          { key: 'rate', label: 'Helpful rate', num: true,
            sort: function (r) { return r.helpful_rate === null || r.helpful_rate === undefined ? null : r.helpful_rate - r.unhelpful * 1e-6; },
            cell: function (r) { return r.helpful_rate != null ? meter(r.helpful_rate, r.helpful_rate < 0.6) : '—'; } },
        ],
        rows: list,
      }));
    };
    $('btn-worst').onclick = function () {
      sorts.articles = worstFirst ? { key: 'shown', dir: 'desc' } : { key: 'rate', dir: 'asc' };
      render();
      announce(worstFirst ? 'Least helpful answers first.' : 'Most shown answers first.');
    };
    render();
  }

  // ---------------------------------------------------------------- CSV exports (managers)
  function exportCsv(kind, button) {
    var f = shown || cur;
    if (!f) return;
    var label = button.textContent;
    button.disabled = true;
    button.textContent = 'Preparing…';
    var q = 'from=' + encodeURIComponent(f.from) + '&to=' + encodeURIComponent(addDays(f.to, 1));
    // The same filters as the figures on screen.
    ['team', 'agent', 'lang'].forEach(function (k) { if (f[k]) q += '&' + k + '=' + encodeURIComponent(f[k]); });
    fetch('/api/export/' + kind + '.csv?' + q, { headers: { Authorization: 'Bearer ' + token }, cache: 'no-store' }).then(function (res) {
      if (res.ok) return res.blob();
      return res.text().then(function (t) {
        var body = null;
        try { body = JSON.parse(t); } catch (e) { body = null; }
        if (res.status === 401) sessionEnded();
        throw apiError(res, body);
      });
    }).then(function (blob) {
      var url = URL.createObjectURL(blob);
      var a = el('a');
      a.href = url;
      a.download = kind + '-' + f.from + '-to-' + f.to + '.csv';
      a.hidden = true;
      document.body.appendChild(a);
      a.click();
      a.remove();
      setTimeout(function () { URL.revokeObjectURL(url); }, 60000);
      announce(cap(kind) + ' CSV downloaded.');
    }, function (e) {
      if (e.status === 401) return;
      var text = e.status === 403 ? 'CSV exports need the manager role.' : 'The export failed: ' + e.message;
      toast(text);
      alertText(text);
    }).then(function () {
      button.disabled = false;
      button.textContent = label;
    });
  }
  $('btn-export-conversations').addEventListener('click', function (e) { exportCsv('conversations', e.currentTarget); });
  $('btn-export-ratings').addEventListener('click', function (e) { exportCsv('ratings', e.currentTarget); });

  // ---------------------------------------------------------------- new FAQ entry (editors)
  var faqFor = null;   // {row, button} the dialog was opened from
  var FAQ_FIELDS = ['lang', 'id', 'question', 'also', 'answer', 'topic'];
  /** An id from the question: lowercase ASCII words joined by dashes; a hash when nothing is left. */
  function slugify(q) {
    var s = String(q).normalize('NFKD').replace(/[\u0300-\u036f]/g, '').toLowerCase()
      .replace(/ł/g, 'l').replace(/ß/g, 'ss').replace(/æ/g, 'ae').replace(/ø/g, 'o')
      .replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '');
    if (s.length > 60) s = s.slice(0, 61).replace(/-[^-]*$/, '').replace(/-+$/, '');
    if (!s) {
      var h = 5381;
      for (var i = 0; i < q.length; i++) h = ((h * 33) ^ q.charCodeAt(i)) >>> 0;
      s = 'question-' + h.toString(36);
    }
    return s;
  }
  function faqError(field, message) {
    var base = String(field).replace(/\[\d+\]$/, '');
    if (FAQ_FIELDS.indexOf(base) < 0) { var g = $('faq-error'); g.textContent = field + ': ' + message; g.hidden = false; return; }
    var p = $('faq-' + base + '-err');
    p.textContent = (p.hidden ? '' : p.textContent + ' ') + cap(message) + (/[.!?]$/.test(message) ? '' : '.');
    p.hidden = false;
    $('faq-' + base).setAttribute('aria-invalid', 'true');
  }
  function clearFaqErrors() {
    FAQ_FIELDS.forEach(function (f) {
      $('faq-' + f + '-err').hidden = true;
      $('faq-' + f + '-err').textContent = '';
      $('faq-' + f).removeAttribute('aria-invalid');
    });
    $('faq-error').hidden = true;
  }
  function focusFirstInvalid() {
    var n = document.querySelector('#faq-form [aria-invalid="true"]');
    if (n) n.focus();
  }
  function openFaq(row, button) {
    faqFor = { row: row, button: button };
    clearFaqErrors();
    // The chat's language when the server says it; else the language filter; else English.
    var lang = row.lang && LANGS[row.lang] ? row.lang
      : (shown && shown.lang && LANGS[shown.lang]) ? shown.lang : 'en';
    $('faq-lang').value = lang;
    $('faq-id').value = slugify(row.question);
    $('faq-question').value = row.question;
    $('faq-also').value = '';
    $('faq-answer').value = '';
    $('faq-topic').value = 'general';
    $('faq-save').disabled = false;
    $('dlg-faq').showModal();
    $('faq-answer').focus();
  }
  $('dlg-faq').querySelector('[data-cancel]').addEventListener('click', function () { $('dlg-faq').close(); });
  $('dlg-faq').addEventListener('close', function () {
    if (faqFor && faqFor.button && document.contains(faqFor.button)) faqFor.button.focus();
  });
  $('faq-form').addEventListener('submit', function (e) {
    e.preventDefault();
    clearFaqErrors();
    var body = {
      lang: $('faq-lang').value,
      id: $('faq-id').value.trim(),
      question: $('faq-question').value.trim(),
      also: $('faq-also').value.split('\n').map(function (s) { return s.trim(); }).filter(Boolean),
      answer: $('faq-answer').value.trim(),
      topic: $('faq-topic').value.trim() || 'general',
    };
    if (!body.id) faqError('id', 'Enter an id, e.g. spaceship-delivery');
    if (!body.question) faqError('question', 'Enter the question');
    if (!body.answer) faqError('answer', 'Write the answer the bot should give');
    if (!body.id || !body.question || !body.answer) { focusFirstInvalid(); return; }
    var save = $('faq-save');
    save.disabled = true;
    api('POST', '/api/kb/faq', body).then(function () {
      var where = body.lang + '/' + body.id;
      if (faqFor) created[norm(faqFor.row.question)] = where;
      ss.set(KEY.created, JSON.stringify(created));
      faqFor = faqFor ? { row: faqFor.row, button: null } : null;
      $('dlg-faq').close();
      if (data) renderUnanswered(data.unanswered || []);
      var mark = document.querySelector('#unanswered .created');
      var row = faqFor && Array.prototype.find.call(document.querySelectorAll('#unanswered tbody tr'),
        function (tr) { return tr.dataset.question === faqFor.row.question; });
      var target = row && row.querySelector('.created');
      (target || mark || $('unanswered-h')).setAttribute('tabindex', '-1');
      (target || mark || $('unanswered-h')).focus();
      titlesLang = null;
      toast('FAQ entry ' + where + ' created. The bot answers with it within a few seconds.');
      announce('FAQ entry ' + where + ' created.');
    }, function (ex) {
      if (ex.status === 401) { $('dlg-faq').close(); return; }
      if (ex.status === 422 && ex.fields.length) ex.fields.forEach(function (x) { faqError(x.field, x.message); });
      else if (ex.status === 409) faqError('id', 'An FAQ entry with this id already exists in ' + body.lang + '; choose another id');
      else {
        var g = $('faq-error');
        g.textContent = ex.status === 403 ? 'Your account lacks the editor role, which creating FAQ entries needs.'
          : 'Could not save: ' + ex.message;
        g.hidden = false;
      }
      focusFirstInvalid();
    }).then(function () { save.disabled = false; });
  });
  $('faq-id').addEventListener('input', function () { $('faq-id').removeAttribute('aria-invalid'); });

  // ---------------------------------------------------------------- start
  if (token) {
    api('GET', '/api/agent/me').then(function (agent) { me = agent; showApp(false); }, function (e) {
      if (e.status === 401) return;   // sessionEnded showed the login
      showLogin('Could not reach the server: ' + e.message);
    });
  } else {
    showLogin();
  }
})();
