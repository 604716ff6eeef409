// The agent console (/agent) in headless Debian Chromium (via playwright-core) against the
// real supportbot server, with a visitor on the demo shop page in another browser context:
// offer and countdown, accept, messages and typing both ways, a private note the visitor
// never sees, a transfer to a second agent who closes, one whole chat by keyboard alone, a
// network cut mid-chat (nothing lost, nothing twice), canned responses with placeholders,
// an expired session that keeps the draft, two tabs in step, markup from a visitor and an
// order shown as text, new-offer notifications (title, sound, Notification API), an offline
// request listed first, and the page's size and load time.
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
// Markup a visitor (or an order's customer name) might carry; the console must show it as text.
const XSS_MESSAGE = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>';
const XSS_NAME = '<b>Eve</b><img src=x onerror="window.__xss=3">';
const XSS_ORDER = 'FH-100998';

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
    // The sample orders plus one whose customer name is markup (it becomes the packet's identity.name).
    const seed = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'console-orders-')), 'orders.csv');
    const csv = fs.readFileSync(path.join(repo, 'orders', 'sample-orders.csv'), 'utf8').replace(/\n*$/, '\n');
    const q = (v) => `"${v.replace(/"/g, '""')}"`;
    fs.writeFileSync(seed, csv + [XSS_ORDER, 'delayed', 'eve@example.com', 'LE1 7RH', q(XSS_NAME), 'DPD', '15501234567099',
      'https://track.dpd.co.uk/parcels/15501234567099', '2026-11-17', '2026-11-27', '', 'Snow again', '1x Oven gloves'].join(',') + '\n');
    server = await SupportbotServer.start({
      config: [
        '[[tokens]]',
        'name = "console-test-manager"',
        `sha256 = "${sha}"`,
        'roles = ["manager"]',
        '',
        '[orders]',
        `seed_file = ${JSON.stringify(seed)}`,
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

  check('logs in; the visitor waits with position and estimate; an offer with a countdown is accepted and shows the packet', async () => {
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
    // While the offer is open the visitor waits: the status bar shows the position and the estimate.
    const qtext = visitor.locator(`${W} .qbar .qtext`);
    await qtext.waitFor({ state: 'visible' });
    assert.match(await qtext.innerText(), /number 1\b[\s\S]*about \d+ min/);

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
    // Still offered and the box still focused when Tab goes in (a slow machine may take the screenshot long).
    await agentA.locator('#suggest').waitFor({ state: 'visible' });
    assert.equal(await agentA.evaluate(() => document.activeElement && document.activeElement.id), 'input');
    await agentA.keyboard.press('Tab');
    const name = await agentA.locator('#me').innerText();
    const filled = `Hi Ravi Patel, order FH-100239 is delayed. I am on it. ${name}`;
    await until(async () => (await agentA.locator('#input').inputValue()) === filled,
      'the filled canned text in the box', 5_000);
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

  check('markup from a visitor and in an order\'s customer name is shown as text, never run', async (pages) => {
    const eve = await newPage(`${server.url}/`, { width: 1000, height: 860 });
    pages.push(eve);
    const say = async (text) => {
      await eve.locator(widget.input).fill(text);
      await eve.locator(widget.input).press('Enter');
    };
    await eve.locator(widget.launcher).click();
    await say(`where is my order ${XSS_ORDER}?`);
    await until(async () => (await widgetTexts(eve, widget.bot)).some((t) => /e-?mail|postcode/i.test(t)), 'the bot asks for proof');
    await say('eve@example.com');
    await until(async () => (await widgetTexts(eve, widget.bot)).some((t) => /delayed/i.test(t)), 'the delayed status');
    await say(XSS_MESSAGE);
    await until(async () => (await widgetTexts(eve, `${W} .log .msg.from-visitor`)).includes(XSS_MESSAGE), 'the markup message sent');
    await say('talk to a person');

    const offer = agentA.locator('#offers .offer');
    await offer.waitFor();
    assert.ok((await offer.innerText()).includes(XSS_NAME), `the offer shows the name as text:\n${await offer.innerText()}`);
    await offer.locator('button.accept').click();
    await until(async () => (await agentA.locator('#chat-title').innerText()) === XSS_NAME, 'the markup name as the chat title');
    await until(async () => (await agentA.locator('#packet').innerText()).includes(XSS_ORDER), 'the order in the packet');
    const packet = await agentA.locator('#packet').innerText();
    assert.ok(packet.includes(XSS_NAME), `the packet shows the name as text:\n${packet}`);
    await until(async () => (await consoleTranscript(agentA)).some((m) => m.cls.includes('from-visitor') && m.text === XSS_MESSAGE),
      'the markup message in the transcript');
    const shown = agentA.locator('#transcript .msg.from-visitor .text').filter({ hasText: 'window.__xss=2' });
    assert.equal(await shown.innerText(), XSS_MESSAGE, 'rendered literally');
    assert.equal(await shown.locator('*').count(), 0, 'no elements inside the message text');
    await shot(agentA, 'xss');
    await sleep(500); // an onerror on a broken image would have fired by now
    for (const p of [agentA, eve]) {
      assert.equal(await p.evaluate(() => typeof window.__xss), 'undefined', 'no markup ran');
    }
    assert.equal(await agentA.locator('img[src="x"]').count(), 0, 'no <img> from the markup in the console');
    assert.equal(await agentA.locator('#app script, #app b').count(), 0, 'no <script> or <b> from the markup in the console');
  });

  check('keyboard only, one whole chat: accept, reply, note, transfer to the team queue, take it back, close', async (pages) => {
    const kate = await newPage(`${server.url}/`, { width: 1000, height: 860 });
    pages.push(kate);
    await kate.locator(widget.launcher).click();
    await kate.locator(widget.input).fill('talk to a person');
    await kate.locator(widget.input).press('Enter');
    const kateAgent = async () => widgetTexts(kate, widget.agent);
    const press = (key) => agentA.keyboard.press(key);
    const focused = () => agentA.evaluate(() => document.activeElement && document.activeElement.id);
    // No mouse from here on: nothing is clicked in the console.
    await agentA.evaluate(() => document.activeElement && document.activeElement.blur());
    await agentA.locator('#offers .offer').waitFor();
    await press('Alt+A');
    await until(async () => (await agentA.locator('#offers .offer').count()) === 0, 'the offer accepted');
    await until(async () => (await focused()) === 'input', 'focus in the reply box of the new chat');
    const chatId = await agentA.locator('#mine .chat-item.current').getAttribute('data-id');
    await agentA.keyboard.type('Hi, Kate here from the team. How can I help?');
    await press('Enter');
    await until(async () => (await kateAgent()).includes('Hi, Kate here from the team. How can I help?'), 'the reply in the widget');

    await press('Alt+P');
    await agentA.keyboard.type('Asked for a person straight away');
    await press('Enter');
    await agentA.locator('#transcript .msg.note').filter({ hasText: 'Asked for a person straight away' }).waitFor();
    await press('Alt+R');
    assert.equal(await agentA.locator('#mode-reply').getAttribute('aria-pressed'), 'true');

    // Transfer to the team's queue: the select has focus; the team is the only enabled target.
    await press('Alt+T');
    await agentA.locator('#dlg-transfer').waitFor({ state: 'visible' });
    assert.equal(await focused(), 'transfer-to');
    await press('End');
    assert.equal(await agentA.locator('#transfer-to').inputValue(), 'team:support');
    await press('Tab');
    assert.equal(await focused(), 'transfer-note');
    await agentA.keyboard.type('Back to the queue, by keyboard');
    await press('Tab');
    await press('Tab');
    assert.equal(await focused(), 'transfer-go');
    await press('Enter');
    await agentA.locator('#dlg-transfer').waitFor({ state: 'hidden' });
    await until(async () => (await agentA.locator(`#mine .chat-item[data-id="${chatId}"]`).count()) === 0, 'the chat left my chats');

    // The team's queue offers it again (the only agent online with a free seat): take it with the keyboard.
    await agentA.locator('#offers .offer').waitFor();
    await press('Alt+A');
    await until(async () => (await agentA.locator(`#mine .chat-item[data-id="${chatId}"]`).count()) === 1, 'the chat back in my chats');
    await until(async () => (await agentA.locator('#mine .chat-item.current').getAttribute('data-id')) === chatId, 'the chat open again');
    await until(async () => (await consoleTranscript(agentA)).some((m) => m.cls.includes('note') && m.text === 'Back to the queue, by keyboard'),
      'the transfer note in the transcript');

    // Close: Alt+C asks, Enter confirms.
    await press('Alt+C');
    await agentA.locator('#dlg-confirm').waitFor({ state: 'visible' });
    await shot(agentA, 'keyboard-close');
    assert.equal(await focused(), 'confirm-go');
    await press('Enter');
    await agentA.locator('#dlg-confirm').waitFor({ state: 'hidden' });
    await until(async () => (await agentA.locator(`#mine .chat-item[data-id="${chatId}"]`).count()) === 0, 'the closed chat gone');
    await until(async () => (await widgetTexts(kate)).some((t) => /closed/i.test(t)), 'the visitor told the chat is closed');
    const seen = (await widgetTexts(kate)).join('\n');
    assert.ok(!seen.includes('Asked for a person straight away') && !seen.includes('by keyboard'), 'no private note in the widget');
  });

  check('a new offer is announced: title, sound (until muted) and a system notification when the tab is in the background', async (pages) => {
    const created = await api('POST', '/api/agents', MANAGER_SECRET, {
      email: 'carol@shop.example', name: 'Carol', password: 'carol-password-123', teams: ['support'],
    });
    assert.equal(created.status, 201, await created.clone().text());
    const context = await browser.newContext({ viewport: { width: 1366, height: 860 } });
    await context.grantPermissions(['notifications'], { origin: server.url });
    // Observe the browser's Notification and Web Audio calls; the tab counts as in the
    // background (Playwright otherwise reports every page as focused).
    await context.addInitScript(() => {
      window.__notes = [];
      window.__beeps = 0;
      const Native = window.Notification;
      const Spy = function (title, options) {
        window.__notes.push({ title, body: options && options.body });
        return new Native(title, options);
      };
      Object.defineProperty(Spy, 'permission', { get: () => Native.permission });
      Spy.requestPermission = (...a) => Native.requestPermission(...a);
      window.Notification = Spy;
      const createOscillator = AudioContext.prototype.createOscillator;
      AudioContext.prototype.createOscillator = function () { window.__beeps += 1; return createOscillator.call(this); };
      document.hasFocus = () => false;
      // Everything the polite live region is given to read.
      window.__said = [];
      document.addEventListener('DOMContentLoaded', () => {
        const region = document.getElementById('sr-polite');
        new MutationObserver(() => { if (region.textContent) window.__said.push(region.textContent); })
          .observe(region, { childList: true, characterData: true, subtree: true });
      });
    });
    const carol = await context.newPage();
    carol.errors = [];
    carol.on('pageerror', (e) => carol.errors.push(String(e)));
    carol.setDefaultTimeout(T);
    pages.push(carol);
    await carol.goto(`${server.url}/agent`);
    await login(carol, 'carol@shop.example', 'carol-password-123');
    assert.equal(await carol.locator('#btn-notify').isHidden(), true, 'permission already granted: no button to ask');
    await carol.keyboard.press('Shift'); // audio may only start after a gesture
    const asker = async () => {
      const page = await newPage(`${server.url}/`, { width: 1000, height: 860 });
      pages.push(page);
      await page.locator(widget.launcher).click();
      await page.locator(widget.input).fill('talk to a person');
      await page.locator(widget.input).press('Enter');
    };
    const notes = () => carol.evaluate(() => window.__notes);
    const beeps = () => carol.evaluate(() => window.__beeps);

    // Carol has the fewest chats, so the offer is hers.
    await asker();
    await carol.locator('#offers .offer').waitFor();
    await until(async () => (await notes()).length === 1, 'a system notification');
    assert.match((await notes())[0].body, /New chat offered[\s\S]*Alt\+A/);
    assert.ok((await beeps()) >= 1, 'a sound');
    assert.match(await carol.title(), /^\(1\) /);
    await until(async () => (await carol.evaluate(() => window.__said)).some((t) => /New chat offered/.test(t)),
      'the offer announced to screen readers');
    await carol.keyboard.press('Alt+A');
    await until(async () => (await carol.locator('#mine .chat-item').count()) === 1, 'Carol took it');

    // Muted (and remembered across a reload): the next offer still notifies, silently.
    await carol.locator('#btn-sound').click();
    assert.equal(await carol.locator('#btn-sound').getAttribute('aria-pressed'), 'false');
    await carol.reload();
    await carol.locator('#conn.online').waitFor();
    assert.equal(await carol.locator('#btn-sound').innerText(), 'Sound off');
    await carol.keyboard.press('Shift');
    await asker();
    await carol.locator('#offers .offer').waitFor();
    await until(async () => (await notes()).length === 1, 'a notification after the reload');
    assert.equal(await beeps(), 0, 'no sound while muted');
    await carol.keyboard.press('Alt+A');
    await until(async () => (await carol.locator('#mine .chat-item').count()) === 2, 'Carol took the second');
    assert.deepEqual(carol.errors, []);
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

/** A catalog phrase, read from the repository (not copied into the test). */
function phrase(lang, key) {
  const catalog = fs.readFileSync(path.join(repo, 'flows', 'messages', `${lang}.toml`), 'utf8');
  const m = catalog.match(new RegExp(`^${key} = (".*")$`, 'm'));
  assert.ok(m, `${key} in ${lang}.toml`);
  return JSON.parse(m[1]);
}

describe('agent console: outside business hours', { concurrency: 1 }, () => {
  before(async () => {
    // A team that is never open: every request for a person becomes an offline request.
    server = await SupportbotServer.start({
      config: '[[teams]]\nid = "support"\nname = "Support"\n[teams.hours]\ntime_zone = "UTC"\ndays = {}\n',
    });
    demo = server.demoAgent();
    assert.ok(demo, 'the server printed its demo agent');
    visitor = undefined;
    agentA = undefined;
    browser = await launchChromium();
  }, { timeout: 120_000 });

  after(async () => {
    await browser?.close().catch(() => {});
    await server?.dispose();
  });

  check('an offline request is listed first with its contact and details; Done removes it', async (pages) => {
    const page = await newPage(`${server.url}/`, { width: 1000, height: 860 });
    pages.push(page);
    const bot = page.locator(widget.bot);
    const say = async (text) => {
      await page.locator(widget.input).fill(text);
      await page.locator(widget.input).press('Enter');
    };
    await page.locator(widget.launcher).click();
    await say('I want to talk to a person');
    await page.locator(`${W} .log .msg.from-system`).filter({ hasText: phrase('en', 'handoff_offline') }).waitFor();
    await page.locator(`${widget.bot} .qr button`, { hasText: phrase('en', 'offline_channel_email') }).click();
    await bot.filter({ hasText: phrase('en', 'offline_ask_email') }).waitFor();
    await say('ann.smith@example.co.uk');
    await bot.filter({ hasText: phrase('en', 'offline_ask_details') }).waitFor();
    await say('My kettle arrived with a dent in the lid.');
    await bot.filter({ hasText: phrase('en', 'offline_filed_email').replace('{contact}', 'ann.smith@example.co.uk') }).waitFor();

    const agent = await openConsole();
    pages.push(agent);
    await login(agent, demo.email, demo.password);
    const req = agent.locator('#offline .offline-req');
    await req.first().waitFor();
    assert.equal(await req.count(), 1);
    const text = await req.innerText();
    for (const want of ['Contact later', 'E-mail', 'ann.smith@example.co.uk', 'My kettle arrived with a dent in the lid.']) {
      assert.ok(text.includes(want), `the request shows ${want}:\n${text}`);
    }
    // First in the queue area: the offline list comes before the waiting chats, and its entry is the first one.
    assert.ok(await agent.evaluate(() => {
      const off = document.getElementById('offline'), q = document.getElementById('queue');
      return off.parentNode === q.parentNode && Boolean(off.compareDocumentPosition(q) & Node.DOCUMENT_POSITION_FOLLOWING);
    }), '#offline is before #queue');
    assert.equal(await agent.evaluate(() =>
      document.querySelector('#offline li, #queue li').classList.contains('offline-req')), true, 'the offline request is the first entry');
    assert.equal(await agent.locator('#queue-count').textContent(), '1 to contact');
    await shot(agent, 'offline-request');

    await req.locator('button', { hasText: 'Done' }).click();
    await until(async () => (await agent.locator('#offline .offline-req').count()) === 0, 'the request gone after Done');
    await agent.locator('#queue-empty').waitFor({ state: 'visible' });
    assert.equal(await agent.locator('#queue-count').textContent(), '');
  });
});
