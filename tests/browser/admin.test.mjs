// The CX dashboard (/admin) in headless Debian Chromium (via playwright-core) against the
// real supportbot server. Conversations are made through the real visitor socket (a bot
// answer rated 5, an unanswered question, an answer that did not help, markup as a
// question, a chat handed to the demo agent who replies, closes and is rated 4), then:
// a manager sees the same figures as /api/metrics with the same filters, charts, tables,
// and downloads the CSV; filters live in the URL (back button included); an editor turns
// an unanswered question into an FAQ entry (with a field error from the server first) and
// gets no CSV buttons; an agent-only account is told it has no access; the phone layout
// stacks; an ended session goes back to the login. No page errors, no CSP violations.
//
// Screenshots go to /tmp/admin-*.png (ADMIN_SHOTS_DIR=docs/screenshots refreshes the README's).
// POST /api/kb/faq writes files, so the server gets a copy of the knowledge base.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { T, launchChromium, until } from './browser.mjs';
import { SupportbotServer, repo } from './server.mjs';

const SHOTS = process.env.ADMIN_SHOTS_DIR || '/tmp';
const MANAGER_SECRET = crypto.randomBytes(24).toString('hex');
const UNANSWERED = 'do you sell spaceships to mars';
const MARKUP = '<img src=x onerror="window.__xss=1"> can I pay in <b>seashells</b>';
const ACCOUNTS = {
  manager: { email: 'maria.manager@example.com', name: 'Maria Manager', password: 'manager-pass-1234', roles: ['manager'] },
  editor: { email: 'eddie.editor@example.com', name: 'Eddie Editor', password: 'editor-pass-1234', roles: ['editor'] },
  agent: { email: 'alex.agent@example.com', name: 'Alex Agent', password: 'agent-pass-12345', roles: ['agent'] },
};
// What the visitors do; each is one conversation.
const CHATS = [
  { say: ['How long does delivery take?'], helpful: true, rate: 5 },
  { say: [UNANSWERED] },
  { say: ['How do I return an item?'], helpful: false },
  { say: [MARKUP] },
  { say: ['talk to a person'], agent: true, rate: 4, comment: 'quick and kind' },
];

let server;
let browser;
let kbCopy;
let demo;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function shot(page, name, opts = {}) {
  fs.mkdirSync(SHOTS, { recursive: true });
  await page.mouse.move(0, 0);   // no chart hover in the picture
  const file = path.join(SHOTS, `admin-${name}.png`);
  await page.screenshot({ path: file, ...opts });
  return file;
}

async function newPage(viewport = { width: 1366, height: 860 }) {
  const context = await browser.newContext({ viewport, acceptDownloads: true });
  const page = await context.newPage();
  page.errors = [];
  page.csp = [];
  page.metricsRequests = [];
  page.on('pageerror', (e) => page.errors.push(String(e)));
  page.on('console', (m) => { if (/Content Security Policy/i.test(m.text())) page.csp.push(m.text()); });
  page.on('request', (r) => { if (r.url().includes('/api/metrics')) page.metricsRequests.push(r.url()); });
  await context.addInitScript(() => {
    window.__csp = [];
    document.addEventListener('securitypolicyviolation', (e) => window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`));
  });
  page.setDefaultTimeout(T);
  return page;
}

async function login(page, who) {
  await page.goto(`${server.url}/admin${who.query || ''}`);
  await page.locator('#login-email').fill(who.email);
  await page.locator('#login-password').fill(who.password);
  await page.locator('#login-password').press('Enter');
  await page.locator('#app').waitFor({ state: 'visible' });
}

/** Waits for the figures of the latest load. */
async function loaded(page) {
  await page.locator('#dash').waitFor({ state: 'visible' });
  await until(async () => (await page.locator('#loading').innerText()) === ''
    && (await page.locator('[data-figure="conversations"] .t-value').innerText()) !== '…', 'the figures');
}

function api(method, url, token, body) {
  return fetch(`${server.url}${url}`, {
    method,
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

async function sessionOf(page) {
  return page.evaluate(() => sessionStorage.getItem('sbd.token'));
}

/** A small CSV reader (quoted cells, doubled quotes, newlines in quotes). */
function parseCsv(text) {
  const rows = [];
  let row = [], cell = '', quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') { cell += '"'; i++; } else if (c === '"') quoted = false; else cell += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') { row.push(cell); cell = ''; } else if (c === '\n') { row.push(cell.replace(/\r$/, '')); rows.push(row); row = []; cell = ''; } else cell += c;
  }
  if (cell || row.length) { row.push(cell); rows.push(row); }
  return rows;
}

// Runs in a page: one visitor conversation over /ws, and when `spec.agent` (a session
// token) is given, the agent takes the handoff over /ws/agent, replies and closes.
async function converse(spec) {
  const base = location.origin.replace(/^http/, 'ws');
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const rid = () => Math.random().toString(36).slice(2);
  function socket(p) {
    const ws = new WebSocket(base + p);
    const frames = [];
    const waiters = [];
    ws.onmessage = (e) => {
      const f = JSON.parse(e.data);
      frames.push(f);
      for (const w of waiters.slice()) if (w.pred(f)) { waiters.splice(waiters.indexOf(w), 1); w.resolve(f); }
    };
    const open = new Promise((res, rej) => { ws.onopen = res; ws.onerror = () => rej(new Error(`socket ${p}`)); });
    return {
      ws, frames, open,
      send: (f) => ws.send(JSON.stringify(f)),
      wait(pred, what) {
        const hit = frames.find(pred);
        if (hit) return Promise.resolve(hit);
        return new Promise((resolve, reject) => {
          const w = { pred, resolve };
          waiters.push(w);
          setTimeout(() => {
            if (waiters.includes(w)) reject(new Error(`timed out waiting for ${what}; last frames ${JSON.stringify(frames.slice(-3))}`));
          }, 20000);
        });
      },
    };
  }
  let agent = null;
  if (spec.agent) {
    agent = socket('/ws/agent');
    await agent.open;
    agent.send({ type: 'auth', token: spec.agent });
    await agent.wait((f) => f.type === 'ready', 'ready');
  }
  const v = socket('/ws');
  await v.open;
  v.send({ type: 'hello', locale: spec.locale || 'en' });
  const welcome = await v.wait((f) => f.type === 'welcome', 'welcome');
  for (const text of spec.say) {
    const id = `c-${rid()}`;
    v.send({ type: 'message', client_id: id, text });
    const echo = await v.wait((f) => f.type === 'message' && f.client_id === id, `the echo of ${text}`);
    await v.wait((f) => f.type === 'message' && f.seq > echo.seq && (f.from === 'bot' || f.from === 'system'), `a reply to ${text}`);
  }
  const answer = v.frames.find((f) => f.type === 'message' && f.from === 'bot' && f.source);
  if (spec.helpful !== undefined) {
    if (!answer) throw new Error(`no knowledge-base answer to ${spec.say[0]}`);
    v.send({ type: 'feedback', client_id: `f-${rid()}`, seq: answer.seq, helpful: spec.helpful });
    if (spec.rate) {
      await v.wait((f) => f.type === 'message' && f.rating, 'the rating question');
      v.send({ type: 'rate', client_id: `r-${rid()}`, score: spec.rate });
      await v.wait((f) => f.type === 'message' && f.from === 'bot' && f.seq > answer.seq + 1 && !f.rating, 'the thanks');
    } else {
      await v.wait((f) => f.type === 'message' && f.from === 'bot' && f.seq > answer.seq, 'the answer to the vote');
    }
  }
  if (agent) {
    const conv = welcome.conversation_id;
    await agent.wait((f) => f.type === 'offer' && f.conversation === conv, 'the offer');
    agent.send({ type: 'accept', conversation: conv, ref: 'a1' });
    await agent.wait((f) => f.type === 'assigned' && f.conversation === conv, 'assigned');
    await sleep(300);
    agent.send({ type: 'message', conversation: conv, client_id: `m-${rid()}`, text: 'Hi, I can help with that.' });
    await v.wait((f) => f.type === 'message' && f.from === 'agent', 'the agent reply');
    agent.send({ type: 'close', conversation: conv, ref: 'x1' });
    await agent.wait((f) => f.type === 'released' && f.conversation === conv, 'released');
    if (spec.rate) {
      const ask = await v.wait((f) => f.type === 'message' && f.rating, 'the rating question after the close');
      v.send({ type: 'rate', client_id: `r-${rid()}`, score: spec.rate, comment: spec.comment });
      await v.wait((f) => f.type === 'message' && f.from === 'bot' && f.seq > ask.seq, 'the thanks');
    }
    agent.ws.close();
  }
  v.ws.close();
  return welcome.conversation_id;
}

/** Wraps a test body: checks for page errors and CSP violations; on failure, screenshots and the server log. */
function check(name, body) {
  test(name, { timeout: 60_000 }, async () => {
    const pages = [];
    try {
      await body(pages);
      for (const p of pages) {
        assert.deepEqual(p.errors, [], 'no JavaScript errors on the page');
        assert.deepEqual(p.csp, [], 'no Content-Security-Policy violations (console)');
        if (!p.isClosed()) assert.deepEqual(await p.evaluate(() => window.__csp), [], 'no securitypolicyviolation events');
      }
    } catch (e) {
      for (const [i, p] of pages.entries()) {
        if (p.isClosed()) continue;
        const file = path.join(os.tmpdir(), `admin-failed-${name.replace(/\W+/g, '-')}-${i}.png`);
        await p.screenshot({ path: file, fullPage: true }).then(() => console.error(`screenshot: ${file}`), () => {});
      }
      console.error(`--- server log (${server.logFile}) ---\n${server.log().split('\n').slice(-60).join('\n')}`);
      throw e;
    } finally {
      for (const p of pages) await p.context().close().catch(() => {});
    }
  });
}

describe('CX dashboard', { concurrency: 1 }, () => {
  before(async () => {
    kbCopy = fs.mkdtempSync(path.join(os.tmpdir(), 'admin-kb-'));
    fs.cpSync(path.join(repo, 'knowledge-base'), kbCopy, { recursive: true });
    process.env.TEST_KB_DIR = kbCopy;
    const sha = crypto.createHash('sha256').update(MANAGER_SECRET).digest('hex');
    server = await SupportbotServer.start({
      config: ['[[tokens]]', 'name = "admin-test-manager"', `sha256 = "${sha}"`, 'roles = ["manager"]', ''].join('\n'),
    });
    demo = server.demoAgent();
    assert.ok(demo, 'the server printed its demo agent');
    for (const a of Object.values(ACCOUNTS)) {
      const res = await api('POST', '/api/agents', MANAGER_SECRET, { email: a.email, name: a.name, password: a.password, roles: a.roles });
      const text = await res.text();
      assert.equal(res.status, 201, `create ${a.email}: ${text}`);
      a.id = JSON.parse(text).id;
    }
    browser = await launchChromium();
    // The visitors (and the demo agent for the handoff) through the real sockets.
    const login = await fetch(`${server.url}/api/agent/login`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(demo),
    });
    assert.equal(login.status, 200, 'demo agent login');
    const demoToken = (await login.json()).token;
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${server.url}/healthz`);
    for (const chat of CHATS) await page.evaluate(converse, { ...chat, agent: chat.agent ? demoToken : undefined });
    await context.close();
  }, { timeout: 120_000 });

  after(async () => {
    await browser?.close().catch(() => {});
    await server?.dispose();
    if (kbCopy) fs.rmSync(kbCopy, { recursive: true, force: true });
  });

  check('a manager sees the figures of /api/metrics, three charts with tables, names, reasons and the unanswered questions', async (pages) => {
    const page = await newPage();
    pages.push(page);
    // The page is served with the strict policy this test checks against.
    const head = await fetch(`${server.url}/admin`);
    assert.match(head.headers.get('content-security-policy'), /script-src 'self';/);
    await page.goto(`${server.url}/admin`);
    await page.locator('#login-email').waitFor();
    await shot(page, 'login');
    await login(page, ACCOUNTS.manager);
    await loaded(page);
    assert.match(await page.locator('#me').innerText(), /Maria Manager/);
    assert.deepEqual(await page.locator('#me-roles .role').allInnerTexts(), ['manager']);
    // The token lives in sessionStorage, never in the URL.
    const token = await sessionOf(page);
    assert.ok(token && !page.url().includes(token));

    // The tiles show what /api/metrics answers to the very request the page made.
    const last = page.metricsRequests.at(-1);
    const q = new URL(last).searchParams;
    assert.equal(q.get('interval'), 'day');
    assert.match(q.get('from'), /^\d{4}-\d\d-\d\d$/);
    const m = await (await api('GET', `/api/metrics?${q}`, token)).json();
    assert.equal(m.totals.conversations, CHATS.length, 'the API counts every conversation made');
    const tile = (k) => page.locator(`[data-figure="${k}"] .t-value`).innerText();
    assert.equal(await tile('conversations'), String(m.totals.conversations));
    assert.equal(await tile('csat'), `${m.totals.csat.avg.toFixed(1)} / 5`);
    assert.equal(await tile('handoff'), `${Math.round(m.totals.handoff_rate * 1000) / 10}%`);
    assert.equal(await tile('containment'), `${Math.round(m.totals.containment_rate * 1000) / 10}%`);
    assert.match(await tile('queue_wait'), /^(< 0\.1 s|\d+(\.\d)? s|\d+ m( \d+ s)?)$/);
    assert.match(await page.locator('[data-figure="queue_wait"] .t-sub').innerText(), /^p90 .+ · 1 chat$/);
    assert.equal(await tile('first_agent_reply') !== '—', true, 'the agent replied, so it was measured');
    assert.match(await page.locator('[data-figure="conversations"] .t-desc').innerText(), /\S/);

    // Three charts drawn on canvases of real size, each with its table.
    for (const id of ['volume', 'quality', 'speed']) {
      const box = await page.locator(`#chart-${id} canvas`).boundingBox();
      assert.ok(box && box.width > 200 && box.height > 100, `chart ${id} drawn (${JSON.stringify(box)})`);
      assert.equal(await page.locator(`#chart-${id} .u-legend .u-series`).count(), 3, `chart ${id} has a legend`);
      await page.locator(`#card-${id} summary`).click();
      assert.equal(await page.locator(`#table-${id} tbody tr`).count(), m.series.length, `table ${id} has every bucket`);
    }
    const volumeTable = await page.locator('#table-volume tbody tr').last().innerText();
    assert.match(volumeTable, new RegExp(`\\t${CHATS.length}\\t1$`), 'today: all the chats, one handoff');
    // Charts follow the window's width.
    const wide = (await page.locator('#chart-volume canvas').boundingBox()).width;
    await page.setViewportSize({ width: 900, height: 860 });
    await until(async () => (await page.locator('#chart-volume canvas').boundingBox()).width > wide, 'the chart to resize (one column)');
    await page.setViewportSize({ width: 1366, height: 860 });
    await until(async () => Math.abs((await page.locator('#chart-volume canvas').boundingBox()).width - wide) < 3, 'the chart back');
    for (const id of ['volume', 'quality', 'speed']) await page.locator(`#card-${id} summary`).click();

    // CSAT split, per agent by name, handoff reasons, unanswered, helpfulness.
    assert.match(await page.locator('#csat-split').innerText(), /Bot alone\s+1\s+5\.0 \/ 5\s+100%/);
    assert.match(await page.locator('#csat-split').innerText(), /With people\s+1\s+4\.0 \/ 5\s+100%/);
    assert.match(await page.locator('#csat-agents tbody').innerText(), /Demo Agent\s+1\s+4\.0 \/ 5/);
    assert.match(await page.locator('#reasons tbody').innerText(), /asked for a person\s+1\s+100%/i);
    const row = page.locator('#unanswered tbody tr', { hasText: UNANSWERED });
    assert.match(await row.innerText(), /\t1\t.*UTC/);
    // Markup in a question is text, never HTML.
    assert.ok((await page.locator('#unanswered tbody').innerText()).includes(MARKUP));
    assert.equal(await page.locator('#unanswered img, #unanswered b').count(), 0);
    assert.equal(await page.evaluate(() => window.__xss), undefined);
    // A manager without the editor role is told why there is no "New FAQ".
    assert.equal(await page.locator('#unanswered .new-faq').count(), 0);
    await page.locator('#faq-role-note').waitFor({ state: 'visible' });
    // Helpfulness: sortable, worst first.
    assert.match(await page.locator('#articles tbody').innerText(), /how-long-does-delivery-take/);
    await page.locator('#btn-worst').click();
    assert.equal(await page.locator('#btn-worst').getAttribute('aria-pressed'), 'true');
    assert.match(await page.locator('#articles tbody tr').first().innerText(), /how-to-return-an-item/);
    assert.equal(await page.locator('#articles th[aria-sort]').getAttribute('aria-sort'), 'ascending');
    assert.match(await page.locator('#articles th[aria-sort]').innerText(), /Helpful rate/);
    await page.locator('#articles th button', { hasText: 'Times shown' }).click();
    assert.equal(await page.locator('#articles th[aria-sort]').getAttribute('aria-sort'), 'descending');
    assert.equal(await page.locator('#btn-worst').getAttribute('aria-pressed'), 'false');
    // The sort buttons keep the keyboard focus.
    assert.equal(await page.evaluate(() => document.activeElement.textContent), 'Times shown▼');

    await page.evaluate(() => window.scrollTo(0, 0));
    await shot(page, 'overview');
    await shot(page, 'overview-full', { fullPage: true });
  });

  check('a manager downloads the conversations and ratings CSV of the range', async (pages) => {
    const page = await newPage();
    pages.push(page);
    await login(page, ACCOUNTS.manager);
    await loaded(page);
    await page.locator('#exports').waitFor({ state: 'visible' });
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.locator('#btn-export-conversations').click(),
    ]);
    assert.match(download.suggestedFilename(), /^conversations-\d{4}-\d\d-\d\d-to-\d{4}-\d\d-\d\d\.csv$/);
    const rows = parseCsv(fs.readFileSync(await download.path(), 'utf8')).filter((r) => r.length > 1);
    assert.deepEqual(rows[0].slice(0, 3), ['conversation_id', 'opened_at', 'lang']);
    assert.ok(rows[0].includes('handed_off') && rows[0].includes('rating'), rows[0].join(','));
    assert.equal(rows.length - 1, CHATS.length, 'one row per conversation made');
    const [ratings] = await Promise.all([page.waitForEvent('download'), page.locator('#btn-export-ratings').click()]);
    const rrows = parseCsv(fs.readFileSync(await ratings.path(), 'utf8')).filter((r) => r.length > 1);
    assert.equal(rrows[0][0], 'conversation_id');
    assert.deepEqual(rrows.slice(1).map((r) => r[rrows[0].indexOf('score')]).sort(), ['4', '5']);
    await until(async () => !(await page.locator('#btn-export-ratings').isDisabled()), 'the button back');
    assert.equal(await page.locator('#btn-export-ratings').innerText(), 'Ratings CSV');
  });

  check('filters are in the URL and the request; the back button restores them; an empty range says so', async (pages) => {
    const page = await newPage();
    pages.push(page);
    await login(page, ACCOUNTS.manager);
    await loaded(page);
    // Polish: nobody wrote in Polish.
    const before = page.metricsRequests.length;
    await page.locator('#f-lang').selectOption('pl');
    await until(() => page.url().includes('lang=pl'), 'lang in the URL');
    await loaded(page);
    assert.equal(new URL(page.metricsRequests.at(-1)).searchParams.get('lang'), 'pl');
    assert.ok(page.metricsRequests.length > before);
    assert.equal(await page.locator('[data-figure="conversations"] .t-value').innerText(), '0');
    await page.locator('#empty-box').waitFor({ state: 'visible' });
    assert.match(await page.locator('#empty-box').innerText(), /No conversations in this range/);
    assert.equal(await page.locator('#details').isVisible(), false, 'no empty charts');
    assert.match(await page.locator('#range-label').innerText(), /Polski chats/);
    await shot(page, 'empty');
    // Hourly, a team and an agent: all in the URL and the request.
    await page.locator('#f-interval').selectOption('hour');
    await until(() => page.url().includes('interval=hour'), 'interval in the URL');
    await page.locator('#f-team').selectOption('support');
    await until(() => page.url().includes('team=support'), 'team in the URL');
    await until(async () => (await page.locator('#f-agent option').count()) >= 4, 'agent names');
    await page.locator('#f-agent').selectOption({ label: 'Demo Agent' });
    await until(() => /agent=[0-9a-f-]{36}/.test(page.url()), 'agent in the URL');
    await loaded(page);
    const q = new URL(page.metricsRequests.at(-1)).searchParams;
    assert.equal(q.get('interval'), 'hour');
    assert.equal(q.get('team'), 'support');
    assert.match(q.get('agent'), /^[0-9a-f-]{36}$/);
    // A shared link opens the same view.
    const shared = page.url();
    const other = await newPage();
    pages.push(other);
    await login(other, { ...ACCOUNTS.manager, query: new URL(shared).search });
    await loaded(other);
    assert.equal(await other.locator('#f-interval').inputValue(), 'hour');
    assert.equal(await other.locator('#f-lang').inputValue(), 'pl');
    assert.equal(await other.locator('#f-team').inputValue(), 'support');
    // Back, back, back, back: all languages again, and the figures with them.
    for (let i = 0; i < 4; i++) await page.goBack();
    await until(() => !page.url().includes('lang='), 'the URL without the language');
    await loaded(page);
    assert.equal(await page.locator('#f-lang').inputValue(), '');
    assert.equal(await page.locator('#f-interval').inputValue(), 'day');
    assert.equal(await page.locator('[data-figure="conversations"] .t-value').innerText(), String(CHATS.length));
    assert.equal(await page.locator('#empty-box').isVisible(), false);
    // A preset is a rolling range in the URL; typed dates need Apply.
    await page.locator('.preset[data-days="30"]').click();
    await until(() => page.url().includes('days=30'), 'days=30');
    await loaded(page);
    assert.equal(await page.locator('.preset[data-days="30"]').getAttribute('aria-pressed'), 'true');
    const from = new URL(page.metricsRequests.at(-1)).searchParams.get('from');
    const to = new URL(page.metricsRequests.at(-1)).searchParams.get('to');
    assert.equal((Date.parse(to) - Date.parse(from)) / 86_400_000, 30);
    await page.locator('#f-from').fill('2020-01-01');
    await page.locator('#f-to').fill('2020-01-31');
    await page.locator('#btn-apply').click();
    await until(() => page.url().includes('from=2020-01-01') && page.url().includes('to=2020-01-31'), 'typed dates');
    await loaded(page);
    assert.equal(new URL(page.metricsRequests.at(-1)).searchParams.get('to'), '2020-02-01', 'the last day is included');
    await page.locator('#empty-box').waitFor({ state: 'visible' });
    // A start after the end is refused on the page, next to the field.
    await page.locator('#f-from').fill('2020-02-10');
    await page.locator('#btn-apply').click();
    await page.locator('#f-from-err').waitFor({ state: 'visible' });
    assert.equal(await page.locator('#f-from').getAttribute('aria-invalid'), 'true');
  });

  check('a slow answer shows loading; a failed one an error with a retry that works', async (pages) => {
    const page = await newPage();
    pages.push(page);
    await login(page, ACCOUNTS.manager);
    await loaded(page);
    let release;
    const held = new Promise((r) => { release = r; });
    await page.route('**/api/metrics?*', async (route) => {
      await held;
      await route.fulfill({ status: 500, contentType: 'application/json', body: JSON.stringify({ error: 'internal', message: 'the event log is unreadable' }) });
    });
    await page.locator('#btn-apply').click();
    await until(async () => (await page.locator('#loading').innerText()) === 'Loading…', 'the loading note');
    assert.equal(await page.locator('#overview').getAttribute('aria-busy'), 'true');
    release();
    await page.locator('#error-box').waitFor({ state: 'visible' });
    assert.match(await page.locator('#error-text').innerText(), /Could not load the figures: the event log is unreadable\.[\s\S]*still those of/);
    assert.equal(await page.locator('#loading').innerText(), '');
    await shot(page, 'error');
    await page.unroute('**/api/metrics?*');
    await page.locator('#btn-retry').click();
    await page.locator('#error-box').waitFor({ state: 'hidden' });
    await loaded(page);
    assert.equal(await page.locator('[data-figure="conversations"] .t-value').innerText(), String(CHATS.length));
  });

  check('an editor turns an unanswered question into an FAQ entry; no CSV for editors', async (pages) => {
    const page = await newPage();
    pages.push(page);
    await login(page, ACCOUNTS.editor);
    await loaded(page);
    assert.deepEqual(await page.locator('#me-roles .role').allInnerTexts(), ['editor']);
    assert.equal(await page.locator('#exports').isVisible(), false, 'no CSV export for an editor');
    assert.equal(await page.locator('#btn-export-conversations').isVisible(), false);
    assert.equal(await page.locator('#faq-role-note').isVisible(), false);
    // Editors may not list agents, but the figures name them; filters take a typed id.
    assert.match(await page.locator('#csat-agents tbody').innerText(), /^Demo Agent\s/);
    assert.equal(await page.locator('#f-agent').evaluate((e) => e.tagName), 'INPUT');
    // Editors see documents' titles.
    await until(async () => /How long does delivery take\?/.test(await page.locator('#articles tbody').innerText()), 'FAQ titles');
    await shot(page, 'editor');

    const row = page.locator('#unanswered tbody tr', { hasText: UNANSWERED });
    const dlg = page.locator('#dlg-faq');
    // By keyboard: Enter opens the form, Escape closes it and gives the focus back.
    await row.locator('button.new-faq').focus();
    await page.keyboard.press('Enter');
    await dlg.waitFor({ state: 'visible' });
    await page.keyboard.press('Escape');
    await dlg.waitFor({ state: 'hidden' });
    assert.equal(await page.evaluate(() => document.activeElement.className), 'small-btn new-faq');
    await row.locator('button.new-faq').click();
    await dlg.waitFor({ state: 'visible' });
    assert.equal(await page.locator('#faq-lang').inputValue(), 'en');
    assert.equal(await page.locator('#faq-id').inputValue(), 'do-you-sell-spaceships-to-mars');
    assert.equal(await page.locator('#faq-question').inputValue(), UNANSWERED);
    assert.equal(await page.locator('#faq-answer').inputValue(), '');
    assert.equal(await page.evaluate(() => document.activeElement.id), 'faq-answer');
    // The answer is required (checked on the page).
    await page.locator('#faq-save').click();
    await page.locator('#faq-answer-err').waitFor({ state: 'visible' });
    // A bad id: the server's field error shows next to the id field.
    await page.locator('#faq-answer').fill('No — we only deliver on **Earth**: the UK, the EU and 40 other countries.');
    await page.locator('#faq-id').fill('Spaceships to Mars!');
    await page.locator('#faq-save').click();
    await page.locator('#faq-id-err').waitFor({ state: 'visible' });
    assert.match(await page.locator('#faq-id-err').innerText(), /lowercase letters, digits and single dashes/);
    assert.equal(await page.locator('#faq-id').getAttribute('aria-invalid'), 'true');
    assert.equal(await page.locator('#faq-answer-err').isVisible(), false);
    await shot(page, 'faq-error');
    // An id that exists: a clear conflict on the id field.
    await page.locator('#faq-id').fill('how-long-does-delivery-take');
    await page.locator('#faq-save').click();
    await until(async () => /already exists/.test(await page.locator('#faq-id-err').innerText()), 'the conflict');
    // Fixed: saved, the dialog closes, the row says so.
    await page.locator('#faq-id').fill('spaceship-delivery');
    await page.locator('#faq-save').click();
    await dlg.waitFor({ state: 'hidden' });
    await row.locator('.created').waitFor();
    assert.equal(await row.locator('button.new-faq').count(), 0);
    const token = await sessionOf(page);
    const list = await (await api('GET', '/api/kb/faq?lang=en', token)).json();
    const entry = list.faq.find((f) => f.id === 'spaceship-delivery');
    assert.ok(entry, 'GET /api/kb/faq lists the new entry');
    assert.equal(entry.question, UNANSWERED);
    assert.match(entry.answer, /only deliver on \*\*Earth\*\*/);
    assert.match(await page.locator('.toast').innerText(), /en\/spaceship-delivery created/);
    await page.locator('#unanswered-h').scrollIntoViewIfNeeded();
    await shot(page, 'faq-created');
  });

  check('an agent-only account is told it has no access', async (pages) => {
    const page = await newPage();
    pages.push(page);
    await login(page, ACCOUNTS.agent);
    await page.locator('#noaccess').waitFor({ state: 'visible' });
    assert.match(await page.locator('#noaccess').innerText(), /No access[\s\S]*manager or editor role/);
    assert.equal(await page.locator('#dash').isVisible(), false);
    assert.equal(await page.locator('#tiles canvas, #chart-volume canvas').count(), 0, 'no charts drawn');
    // The server agrees.
    const res = await api('GET', '/api/metrics', await sessionOf(page));
    assert.equal(res.status, 403);
    await shot(page, 'noaccess');
    await page.locator('#btn-logout-2').click();
    await page.locator('#login-view').waitFor({ state: 'visible' });
  });

  check('the phone layout stacks without sideways scrolling', async (pages) => {
    const page = await newPage({ width: 390, height: 844 });
    pages.push(page);
    await login(page, ACCOUNTS.manager);
    await loaded(page);
    await page.locator('#chart-speed canvas').waitFor();
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    assert.ok(overflow <= 0, `no sideways scroll (${overflow}px)`);
    for (const id of ['volume', 'quality', 'speed']) {
      const box = await page.locator(`#chart-${id} canvas`).boundingBox();
      assert.ok(box.width > 250 && box.x >= 0 && box.x + box.width <= 390, `chart ${id} fits (${JSON.stringify(box)})`);
    }
    const tiles = await page.locator('.tile').evaluateAll((els) => els.map((e) => e.getBoundingClientRect().right));
    assert.ok(tiles.every((r) => r <= 390), 'tiles fit');
    await shot(page, 'phone');
    await shot(page, 'phone-full', { fullPage: true });
  });

  check('an ended session goes back to the login with a message', async (pages) => {
    const page = await newPage();
    pages.push(page);
    await login(page, ACCOUNTS.manager);
    await loaded(page);
    const res = await api('POST', '/api/agent/logout', await sessionOf(page));
    assert.equal(res.status, 204);
    await page.locator('#btn-apply').click();
    await page.locator('#login-view').waitFor({ state: 'visible' });
    assert.match(await page.locator('#login-note').innerText(), /session has ended/i);
    assert.equal(await sessionOf(page), null);
    // Logging in again resumes the same view.
    await page.locator('#login-email').fill(ACCOUNTS.manager.email);
    await page.locator('#login-password').fill(ACCOUNTS.manager.password);
    await page.locator('#login-password').press('Enter');
    await loaded(page);
    assert.equal(await page.locator('[data-figure="conversations"] .t-value').innerText(), String(CHATS.length));
    // A reload keeps the session (sessionStorage) and the view.
    await page.reload();
    await loaded(page);
    assert.equal(await page.locator('#app').isVisible(), true);
  });
});
