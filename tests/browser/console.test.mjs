// The agent console (/agent) in headless Debian Chromium (via playwright-core) against the
// real supportbot server, with a visitor on the demo shop page in another browser context:
// offer and countdown, accept, messages and typing both ways, a private note the visitor
// never sees, a transfer to a second agent who closes, keyboard-only accept and reply, a
// network cut mid-chat (nothing lost, nothing twice), canned responses with placeholders,
// an expired session that keeps the draft, two tabs in step, and the page's size and load time.
//
// Screenshots of every console state go to /tmp/console-*.png.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { after, before, describe, test } from 'node:test';

import { T, launchChromium, until } from './browser.mjs';
import { SupportbotServer, repo } from './server.mjs';

const SHOTS = process.env.CONSOLE_SHOTS_DIR || '/tmp';
const MANAGER_SECRET = crypto.randomBytes(24).toString('hex');

let server;
let browser;
let visitor;  // the shop page with the widget (one visitor throughout)
let agentA;   // the demo agent's console
let demo;     // the demo agent's {email, password}

// Inside the widget (Playwright's CSS engine pierces its open shadow root).
const W = '#supportbot-host';
const widget = {
  launcher: `${W} .launcher`,
  input: `${W} textarea`,
  messages: `${W} .log .msg`,
  agent: `${W} .log .msg.from-agent`,
  bot: `${W} .log .msg.from-bot`,
  typing: `${W} .typing`,
};

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function shot(page, name) {
  const file = path.join(SHOTS, `console-${name}.png`);
  await page.screenshot({ path: file });
  return file;
}

async function newPage(url, viewport = { width: 1366, height: 860 }) {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  page.errors = [];
  page.on('pageerror', (e) => page.errors.push(String(e)));
  page.setDefaultTimeout(T);
  await page.goto(url);
  return page;
}

async function openConsole() {
  return newPage(`${server.url}/agent`);
}

async function login(page, email, password) {
  await page.locator('#login-email').fill(email);
  await page.locator('#login-password').fill(password);
  await page.locator('#login-password').press('Enter');
  await page.locator('#app').waitFor({ state: 'visible' });
  await page.locator('#conn.online').waitFor();
}

/** Texts of the widget's messages of one kind. */
function widgetTexts(page, selector = widget.messages) {
  return page.locator(`${selector} .text`).allInnerTexts();
}
/** The console transcript: [{seq, cls, text}]. */
function consoleTranscript(page) {
  return page.locator('#transcript .msg').evaluateAll((els) =>
    els.map((e) => ({ seq: Number(e.dataset.seq), cls: e.className, text: e.querySelector('.text').textContent })));
}

async function visitorSays(text) {
  await visitor.locator(widget.input).fill(text);
  await visitor.locator(widget.input).press('Enter');
}

function api(method, url, token, body) {
  return fetch(`${server.url}${url}`, {
    method,
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

/** Wraps a test body: on failure, prints the server log and saves screenshots. */
function check(name, body) {
  test(name, { timeout: 120_000 }, async () => {
    const pages = [];
    try {
      await body(pages);
      for (const p of [...pages, visitor, agentA]) if (p) assert.deepEqual(p.errors, [], 'no JavaScript errors on the page');
    } catch (e) {
      for (const [i, p] of [...pages, visitor, agentA].entries()) {
        if (!p || p.isClosed()) continue;
        const file = path.join(os.tmpdir(), `console-failed-${name.replace(/\W+/g, '-')}-${i}.png`);
        await p.screenshot({ path: file }).then(() => console.error(`screenshot: ${file}`), () => {});
      }
      console.error(`--- server log (${server.logFile}) ---\n${server.log().split('\n').slice(-80).join('\n')}`);
      throw e;
    } finally {
      for (const p of pages) if (!p.keep) await p.context().close().catch(() => {});
    }
  });
}

describe('agent console', { concurrency: 1 }, () => {
  before(async () => {
    const sha = crypto.createHash('sha256').update(MANAGER_SECRET).digest('hex');
    server = await SupportbotServer.start({
      config: [
        '[[tokens]]',
        'name = "console-test-manager"',
        `sha256 = "${sha}"`,
        'roles = ["manager"]',
        '',
        '[orders]',
        `seed_file = ${JSON.stringify(path.join(repo, 'orders', 'sample-orders.csv'))}`,
        '',
        '[handoff]',
        'offer_timeout_secs = 60',
        '',
      ].join('\n'),
    });
    demo = server.demoAgent();
    assert.ok(demo, 'the server printed its demo agent');
    browser = await launchChromium();
  }, { timeout: 120_000 });

  after(async () => {
    await visitor?.context().close().catch(() => {});
    await agentA?.context().close().catch(() => {});
    await browser?.close().catch(() => {});
    await server?.dispose();
  });

  check('logs in, gets an offer with a countdown, accepts it and sees the handoff packet', async () => {
    agentA = await openConsole();
    await agentA.locator('#login-email').waitFor();
    assert.match(await agentA.locator('.hint').innerText(), /server log/);
    await shot(agentA, 'login');
    // A wrong password is refused on the page.
    await agentA.locator('#login-email').fill(demo.email);
    await agentA.locator('#login-password').fill('not the password');
    await agentA.locator('#login-password').press('Enter');
    await agentA.locator('#login-error').waitFor({ state: 'visible' });
    await login(agentA, demo.email, demo.password);
    // The token is kept in sessionStorage, never in the URL.
    assert.ok(await agentA.evaluate(() => sessionStorage.getItem('sbc.token')));
    assert.ok(!agentA.url().includes(await agentA.evaluate(() => sessionStorage.getItem('sbc.token'))));
    assert.match(await agentA.locator('#me').innerText(), /\S/);

    // The visitor proves an order, then asks for a person.
    visitor = await newPage(`${server.url}/`, { width: 1000, height: 860 });
    await visitor.locator(widget.launcher).click();
    await visitorSays('where is my order FH-100239?');
    await until(async () => (await widgetTexts(visitor, widget.bot)).some((t) => /e-?mail|postcode/i.test(t)), 'the bot asks for proof');
    await visitorSays('ravi.patel@example.com');
    await until(async () => (await widgetTexts(visitor, widget.bot)).some((t) => /delayed/i.test(t)), 'the delayed status');
    await visitorSays('talk to a person');

    const offer = agentA.locator('#offers .offer');
    await offer.waitFor();
    assert.match(await offer.innerText(), /Ravi Patel/);
    const left = Number((await offer.locator('.countdown').innerText()).match(/(\d+) s/)[1]);
    assert.ok(left > 0 && left <= 60, `countdown ${left}`);
    await until(async () => Number((await offer.locator('.countdown').innerText()).match(/(\d+) s/)[1]) < left,
      'the countdown ticking', 5000);
    assert.match(await agentA.title(), /^\(1\) Agent console/);
    // The queue lists it with language, reason, team and a ticking wait.
    const item = agentA.locator('#queue .qitem').first();
    // (Typed, "talk to a person" is the general handoff phrase, so the reason is that one.)
    assert.match(await item.innerText(), /en[\s\S]*support[\s\S]*(asked for a person|delayed order FH-100239)/);
    assert.match(await item.locator('.since').innerText(), /^\d+:\d\d$/);
    await shot(agentA, 'offer');

    await offer.locator('button.accept').click();
    await agentA.locator('#chat-main').waitFor({ state: 'visible' });
    await until(async () => (await agentA.locator('#packet').innerText()).includes('FH-100239'), 'the order in the packet');
    const packet = await agentA.locator('#packet').innerText();
    for (const want of ['asked for a person', 'Ravi Patel', 'ravi.patel@example.com', 'order tracking', 'DPD', 'Heavy snow']) {
      assert.ok(packet.includes(want), `packet shows ${want}:\n${packet}`);
    }
    assert.equal(await agentA.locator('#chat-title').innerText(), 'Ravi Patel');
    assert.equal(await agentA.locator('#offers .offer').count(), 0);
    const tr = await consoleTranscript(agentA);
    assert.ok(tr.some((m) => m.cls.includes('from-visitor') && m.text === 'where is my order FH-100239?'));
    assert.ok(tr.some((m) => m.cls.includes('from-bot')));
    assert.ok(tr.some((m) => m.cls.includes('from-system')));
    assert.equal(await agentA.evaluate(() => document.activeElement.id), 'input', 'the reply box has focus');
    await shot(agentA, 'chat');
  });

  check('agent and visitor exchange messages, with typing indicators both ways', async () => {
    await agentA.locator('#input').click();
    await agentA.keyboard.type('Hello Ravi, I am looking at your order', { delay: 40 });
    await visitor.locator(widget.typing).waitFor({ state: 'visible' });
    assert.match(await visitor.locator(widget.typing).getAttribute('aria-label'), /typing/i);
    await agentA.keyboard.press('Enter');
    await until(async () => (await widgetTexts(visitor, widget.agent)).includes('Hello Ravi, I am looking at your order'), 'the reply in the widget');
    assert.equal(await agentA.locator('#input').inputValue(), '');

    await visitor.locator(widget.input).click();
    await visitor.keyboard.type('Thank you, it was', { delay: 40 });
    await until(async () => /Visitor is typing/.test(await agentA.locator('#typing').innerText()), 'the visitor typing in the console');
    await visitor.keyboard.press('Enter');
    await until(async () => (await consoleTranscript(agentA)).some((m) => m.cls.includes('from-visitor') && m.text === 'Thank you, it was'),
      'the visitor message in the console');
    await until(async () => (await agentA.locator('#typing').innerText()) === '', 'typing cleared by the message');
  });

  check('a private note is marked private and never reaches the visitor', async () => {
    await agentA.keyboard.press('Alt+P');
    assert.equal(await agentA.locator('#mode-note').getAttribute('aria-pressed'), 'true');
    await agentA.keyboard.type('Customer sounds upset; offer a voucher');
    await agentA.keyboard.press('Enter');
    const note = agentA.locator('#transcript .msg.note').filter({ hasText: 'Customer sounds upset' });
    await note.waitFor();
    assert.match(await note.innerText(), /private note/i);
    await shot(agentA, 'note');
    await agentA.keyboard.press('Alt+R');
    assert.equal(await agentA.locator('#mode-reply').getAttribute('aria-pressed'), 'true');
    await agentA.keyboard.type('One moment please');
    await agentA.keyboard.press('Enter');
    await until(async () => (await widgetTexts(visitor, widget.agent)).includes('One moment please'), 'the reply after the note');
    const all = (await widgetTexts(visitor)).join('\n');
    assert.ok(!all.includes('Customer sounds upset'), 'the note is not in the widget');
    assert.ok(!(await visitor.locator(W).innerText()).includes('voucher'));
  });

  check('transfers to a second agent with a note; they close the chat', async (pages) => {
    const created = await api('POST', '/api/agents', MANAGER_SECRET, {
      email: 'bob@shop.example', name: 'Bob Builder', password: 'bob-password-123', teams: ['support'],
    });
    assert.equal(created.status, 201, await created.clone().text());
    const bob = await created.json();
    const agentB = await openConsole();
    pages.push(agentB);
    await login(agentB, 'bob@shop.example', 'bob-password-123');

    // A sees Bob online in the transfer dialog (the roster comes in queue frames).
    await agentA.keyboard.press('Alt+T');
    await agentA.locator('#dlg-transfer').waitFor({ state: 'visible' });
    await until(async () => agentA.locator(`#transfer-to option[value="agent:${bob.id}"]:not([disabled])`).count(), 'Bob online');
    await agentA.locator('#transfer-to').selectOption(`agent:${bob.id}`);
    await agentA.locator('#transfer-note').fill('Bob knows the DPD contact');
    await shot(agentA, 'transfer');
    await agentA.locator('#transfer-go').click();
    await agentA.locator('#dlg-transfer').waitFor({ state: 'hidden' });
    await agentA.locator('#chat-empty').waitFor({ state: 'visible' });
    assert.equal(await agentA.locator('#mine .chat-item').count(), 0);

    // Bob gets it, with everything so far and the transfer note, marked private.
    await agentB.locator('#mine .chat-item').first().waitFor();
    await agentB.locator('#chat-main').waitFor({ state: 'visible' });
    const tr = await consoleTranscript(agentB);
    assert.ok(tr.some((m) => m.text === 'Hello Ravi, I am looking at your order'));
    assert.ok(tr.some((m) => m.cls.includes('note') && m.text === 'Bob knows the DPD contact'));
    assert.ok(tr.some((m) => m.cls.includes('note') && m.text.startsWith('Customer sounds upset')));
    const seqs = tr.map((m) => m.seq);
    assert.deepEqual(seqs, [...new Set(seqs)].sort((a, b) => a - b), 'in order, none twice');
    assert.ok(!(await widgetTexts(visitor)).join('\n').includes('Bob knows the DPD contact'));

    await agentB.locator('#btn-close').click();
    await agentB.locator('#dlg-confirm').waitFor({ state: 'visible' });
    await agentB.locator('#confirm-go').click();
    await agentB.locator('#chat-empty').waitFor({ state: 'visible' });
    assert.match(await agentB.locator('#chat-empty').innerText(), /closed/i);
    await until(async () => (await widgetTexts(visitor)).some((t) => /closed/i.test(t)), 'the visitor told the chat is closed');
  });

  check('keyboard only: help, accept an offer and reply', async () => {
    await agentA.locator('body').focus();
    await agentA.evaluate(() => document.activeElement && document.activeElement.blur());
    await agentA.keyboard.press('?');
    await agentA.locator('#dlg-help').waitFor({ state: 'visible' });
    assert.match(await agentA.locator('#dlg-help').innerText(), /Alt[\s+]*A[\s\S]*Accept/);
    await shot(agentA, 'help');
    await agentA.keyboard.press('Escape');
    await agentA.locator('#dlg-help').waitFor({ state: 'hidden' });

    await visitorSays('talk to a person');
    await agentA.locator('#offers .offer').waitFor();
    await agentA.keyboard.press('Alt+A');
    await agentA.locator('#chat-main').waitFor({ state: 'visible' });
    await until(async () => (await agentA.evaluate(() => document.activeElement.id)) === 'input', 'focus in the reply box');
    await agentA.keyboard.type('Back again? Happy to help.');
    await agentA.keyboard.press('Enter');
    await until(async () => (await widgetTexts(visitor, widget.agent)).includes('Back again? Happy to help.'), 'the keyboard reply');
    // Tab reaches the chat's actions; focus is visible.
    await agentA.keyboard.press('Shift+Tab');
    const outline = await agentA.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
    assert.notEqual(outline, 'none', 'focus is visible');
  });

  check('two tabs of the same agent stay in step (presence echoes, same chat)', async (pages) => {
    const tab2 = await openConsole();
    pages.push(tab2);
    await login(tab2, demo.email, demo.password);
    await tab2.locator('#mine .chat-item').first().waitFor();
    await agentA.locator('#presence').selectOption('away');
    await until(async () => (await tab2.locator('#presence').inputValue()) === 'away', 'away in the other tab');
    await tab2.keyboard.press('Alt+S');
    await until(async () => (await agentA.locator('#presence').inputValue()) === 'online', 'online again in the first tab');
    await visitorSays('are you both there?');
    for (const p of [agentA, tab2]) {
      await until(async () => (await consoleTranscript(p)).filter((m) => m.text === 'are you both there?').length === 1, 'the message in both tabs');
    }
  });

  check('network cut mid-chat: visible reconnecting, nothing lost, nothing twice', async () => {
    const ctx = agentA.context();
    await ctx.setOffline(true);
    await agentA.locator('#conn.reconnecting').waitFor();
    assert.match(await agentA.locator('#conn').innerText(), /Reconnecting/);
    await visitorSays('first while you were away');
    await visitorSays('second while you were away');
    await agentA.locator('#input').focus();
    await agentA.keyboard.type('Typed while offline');
    await agentA.keyboard.press('Enter');
    await agentA.locator('#pending .pending').filter({ hasText: 'Typed while offline' }).waitFor();
    await shot(agentA, 'reconnecting');
    await sleep(1500);
    await ctx.setOffline(false);
    await agentA.locator('#conn.online').waitFor({ timeout: 20_000 });
    for (const text of ['first while you were away', 'second while you were away']) {
      await until(async () => (await consoleTranscript(agentA)).some((m) => m.text === text), text);
    }
    await until(async () => (await widgetTexts(visitor, widget.agent)).includes('Typed while offline'), 'the offline message delivered');
    await until(async () => (await agentA.locator('#pending .pending').count()) === 0, 'nothing left pending');
    await sleep(1500);
    const tr = await consoleTranscript(agentA);
    for (const text of ['first while you were away', 'second while you were away', 'Typed while offline']) {
      assert.equal(tr.filter((m) => m.text === text).length, 1, `${text} once in the console`);
    }
    const seqs = tr.map((m) => m.seq);
    assert.equal(new Set(seqs).size, seqs.length, 'no seq twice');
    assert.equal((await widgetTexts(visitor, widget.agent)).filter((t) => t === 'Typed while offline').length, 1, 'once in the widget');
  });

  check('canned responses: create, edit, delete; /shortcut inserts the filled text', async () => {
    await agentA.keyboard.press('Alt+K');
    const dlg = agentA.locator('#dlg-canned');
    await dlg.waitFor({ state: 'visible' });
    const save = async (shortcut, lang, text) => {
      await agentA.locator('#canned-shortcut').fill(shortcut);
      await agentA.locator('#canned-lang').fill(lang);
      await agentA.locator('#canned-text').fill(text);
      await agentA.locator('#canned-save').click();
      await dlg.locator('.canned-item', { hasText: `/${shortcut}` }).filter({ hasText: text.slice(0, 20) }).first().waitFor();
    };
    await save('delay', 'en', 'Hi {visitor.name}, order {order.id} is {order.status}. I am on it. {agent.name}');
    await agentA.locator('#canned-new').click();
    await save('delay', 'pl', 'Dzień dobry {visitor.name}, zamówienie {order.id} jest opóźnione.');
    await agentA.locator('#canned-new').click();
    await save('bye', 'en', 'Bye for now');
    // Edit it, then delete it (two steps).
    await dlg.locator('.canned-edit', { hasText: '/bye' }).click();
    assert.equal(await agentA.locator('#canned-text').inputValue(), 'Bye for now');
    await agentA.locator('#canned-text').fill('Have a lovely day');
    await agentA.locator('#canned-save').click();
    await dlg.locator('.canned-item', { hasText: 'Have a lovely day' }).waitFor();
    const del = dlg.locator('.canned-item', { hasText: '/bye' }).locator('button', { hasText: 'Delete' });
    await del.click();
    await dlg.locator('.canned-item', { hasText: '/bye' }).locator('button', { hasText: 'Really delete?' }).click();
    await until(async () => (await dlg.locator('.canned-item', { hasText: '/bye' }).count()) === 0, 'bye deleted');
    // A duplicate is refused with a readable message.
    await agentA.locator('#canned-new').click();
    await agentA.locator('#canned-shortcut').fill('delay');
    await agentA.locator('#canned-lang').fill('en');
    await agentA.locator('#canned-text').fill('again');
    await agentA.locator('#canned-save').click();
    await agentA.locator('#canned-error').waitFor({ state: 'visible' });
    await agentA.locator('#canned-filter').selectOption('');
    await shot(agentA, 'canned');
    const list = await (await api('GET', '/api/canned', await agentA.evaluate(() => sessionStorage.getItem('sbc.token')))).json();
    assert.deepEqual(list.map((r) => `${r.shortcut}/${r.lang}`).sort(), ['delay/en', 'delay/pl']);
    await agentA.keyboard.press('Escape');
    await dlg.waitFor({ state: 'hidden' });

    // "/del" suggests /delay (the chat's language, en), Tab inserts it filled from the packet.
    await agentA.locator('#input').focus();
    await agentA.keyboard.type('/del');
    const opt = agentA.locator('#suggest .opt');
    await opt.first().waitFor();
    assert.equal(await opt.count(), 1);
    assert.match(await opt.first().innerText(), /\/delay[\s\S]*en/);
    await shot(agentA, 'suggest');
    await agentA.keyboard.press('Tab');
    const name = await agentA.locator('#me').innerText();
    const filled = `Hi Ravi Patel, order FH-100239 is delayed. I am on it. ${name}`;
    assert.equal(await agentA.locator('#input').inputValue(), filled);
    await agentA.keyboard.press('Enter');
    await until(async () => (await widgetTexts(visitor, widget.agent)).includes(filled), 'the filled canned text in the widget');
  });

  check('an expired session returns to the login page and keeps the draft', async () => {
    await agentA.locator('#input').focus();
    await agentA.keyboard.type('A draft that must survive');
    const token = await agentA.evaluate(() => sessionStorage.getItem('sbc.token'));
    assert.equal((await api('POST', '/api/agent/logout', token)).status, 204);
    // The open socket stays signed in; the next connection is refused (4401).
    await agentA.context().setOffline(true);
    await agentA.locator('#conn.reconnecting').waitFor();
    await agentA.context().setOffline(false);
    await agentA.locator('#login-view').waitFor({ state: 'visible' });
    assert.match(await agentA.locator('#login-note').innerText(), /session has ended/i);
    assert.equal(await agentA.evaluate(() => sessionStorage.getItem('sbc.token')), null);
    await shot(agentA, 'session-ended');
    // Even a reload keeps the draft (it is stored per conversation).
    await agentA.reload();
    await login(agentA, demo.email, demo.password);
    await until(async () => (await agentA.locator('#input').inputValue()) === 'A draft that must survive', 'the draft back');
  });

  check('size of the console files and load time on loopback', async (pages, t) => {
    const files = ['agent.html', 'agent.js', 'agent.css'].map((f) => fs.readFileSync(path.join(repo, 'widget', f)));
    const raw = files.reduce((n, b) => n + b.length, 0);
    const gz = zlib.gzipSync(Buffer.concat(files), { level: 9 }).length;
    const each = files.map((b) => zlib.gzipSync(b, { level: 9 }).length).reduce((a, b) => a + b, 0);
    const times = [];
    for (let i = 0; i < 5; i++) {
      const page = await openConsole();
      pages.push(page);
      await page.locator('#login-email').waitFor();
      times.push(await page.evaluate(() => {
        const n = performance.getEntriesByType('navigation')[0];
        return { dcl: Math.round(n.domContentLoadedEventEnd), load: Math.round(n.loadEventEnd) };
      }));
      await page.context().close();
      pages.pop();
    }
    const loads = times.map((x) => x.load).sort((a, b) => a - b);
    console.log(`# console size: ${raw} bytes raw, ${gz} bytes gzip -9 (together), ${each} bytes gzip -9 (each file)`);
    console.log(`# console load on loopback: ${JSON.stringify(times)}; median load ${loads[2]} ms`);
    assert.ok(gz < 30_000, 'small');
    assert.ok(loads[2] < 2000, 'loads fast');
  });
});
