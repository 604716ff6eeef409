// The visitor's side of a human handoff in the chat widget: headless Chromium (via
// playwright-core) against the real supportbot server, with the test acting as the agent
// over /ws/agent. Queue position and estimate, leaving the queue, an agent joining,
// typing both ways, private notes, closing, the offline form's checks in the browser, and
// a translated status bar.
//
// Screenshots of each new state go to /tmp/widget-handoff-*.png.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { T, launchChromium, until } from './browser.mjs';
import { SupportbotServer } from './server.mjs';

const SHOTS = process.env.SCREENSHOT_DIR || '/tmp';

const W = '#supportbot-host';
const sel = {
  launcher: `${W} .launcher`,
  panel: `${W} .panel`,
  input: `${W} textarea`,
  messages: `${W} .log .msg`,
  visitor: `${W} .log .msg.from-visitor`,
  bot: `${W} .log .msg.from-bot`,
  agent: `${W} .log .msg.from-agent`,
  system: `${W} .log .msg.from-system`,
  pending: `${W} .outbox .msg`,
  qbar: `${W} .qbar`,
  qtext: `${W} .qbar .qtext`,
  qbuttons: `${W} .qbar button`,
  typing: `${W} .typing`,
  error: `${W} .err`,
};

/** A catalog phrase, read from the repository (not copied into the test). */
function phrase(lang, key) {
  const catalog = fs.readFileSync(new URL(`../../flows/messages/${lang}.toml`, import.meta.url), 'utf8');
  const m = catalog.match(new RegExp(`^${key} = (".*")$`, 'm'));
  assert.ok(m, `${key} in ${lang}.toml`);
  return JSON.parse(m[1]);
}
const fill = (s, args) => s.replace(/\{(\w+)\}/g, (m, k) => (k in args ? String(args[k]) : m));

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function widgetFocus(page) {
  return page.evaluate(() => {
    const a = document.querySelector('#supportbot-host')?.shadowRoot?.activeElement;
    return a ? a.tagName + (a.className ? '.' + a.className : '') : null;
  });
}

let browser;

async function newPage(server, locale) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, ...(locale ? { locale } : {}) });
  const page = await context.newPage();
  page.errors = [];
  page.on('pageerror', (e) => page.errors.push(String(e)));
  page.setDefaultTimeout(T);
  await page.goto(`${server.url}/`);
  return page;
}

async function openWidget(page) {
  const launcher = page.locator(sel.launcher);
  await launcher.waitFor({ state: 'visible' });
  if ((await launcher.getAttribute('aria-expanded')) !== 'true') await launcher.click();
  await page.locator(sel.panel).waitFor({ state: 'visible' });
  await until(async () => (await widgetFocus(page)) === 'TEXTAREA', 'focus in the input');
  // The greeting is there: the socket is up and labels are in the visitor's language.
  await page.locator(sel.bot).first().waitFor();
}

async function ask(page, text) {
  await page.locator(sel.input).fill(text);
  await page.locator(sel.input).press('Enter');
}

async function shot(page, name) {
  const file = path.join(SHOTS, `widget-handoff-${name}.png`);
  await page.locator(sel.panel).screenshot({ path: file });
  return file;
}

/**
 * The test as an agent on /ws/agent. Node ≥ 22 has a global WebSocket; on older Node the
 * socket lives in a blank Chromium page of the server's origin instead.
 */
class Agent {
  static async connect(server) {
    const login = await fetch(`${server.url}/api/agent/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(server.demoAgent()),
    });
    assert.equal(login.status, 200, 'agent login');
    const { token } = await login.json();
    const agent = new Agent();
    agent.frames = [];
    const url = `${server.url.replace(/^http/, 'ws')}/ws/agent`;
    if (typeof globalThis.WebSocket === 'function') {
      const ws = new globalThis.WebSocket(url);
      ws.onmessage = (e) => agent.frames.push(JSON.parse(e.data));
      await new Promise((resolve, reject) => { ws.onopen = resolve; ws.onerror = () => reject(new Error('agent socket')); });
      agent.raw = async (text) => ws.send(text);
      agent.dispose = async () => ws.close();
    } else {
      const context = await browser.newContext();
      const page = await context.newPage();
      await page.goto(`${server.url}/healthz`);
      await page.exposeFunction('__agentFrame', (text) => { agent.frames.push(JSON.parse(text)); });
      await page.evaluate((u) => new Promise((resolve, reject) => {
        const ws = new WebSocket(u);
        window.__agentWs = ws;
        ws.onmessage = (e) => window.__agentFrame(e.data);
        ws.onopen = resolve;
        ws.onerror = () => reject(new Error('agent socket'));
      }), url);
      agent.raw = (text) => page.evaluate((t) => window.__agentWs.send(t), text);
      agent.dispose = () => context.close();
    }
    await agent.send({ type: 'auth', token });
    agent.me = (await agent.wait((f) => f.type === 'ready', 'ready')).agent;
    return agent;
  }

  send(frame) { return this.raw(JSON.stringify(frame)); }

  wait(pred, what) { return until(() => this.frames.find(pred), `agent: ${what}`); }

  /** The conversation whose packet transcript has `text` in a visitor message, from offers. */
  offerFor(text) {
    return this.wait((f) => f.type === 'offer' && f.packet?.transcript?.some((m) => m.from === 'visitor' && m.text === text),
      `an offer for the chat with "${text}"`);
  }
}

function guard(name, body, servers) {
  test(name, { timeout: 120_000 }, async () => {
    const pages = [];
    try {
      await body(pages);
      for (const p of pages) assert.deepEqual(p.errors, [], 'no JavaScript errors on the page');
    } catch (e) {
      for (const [i, p] of pages.entries()) {
        const file = path.join(os.tmpdir(), `supportbot-handoff-${name.replace(/\W+/g, '-')}-${i}.png`);
        await p.screenshot({ path: file }).then(() => console.error(`screenshot: ${file}`), () => {});
      }
      for (const s of servers()) {
        if (s) console.error(`--- server log (${s.logFile}) ---\n${s.log().split('\n').slice(-60).join('\n')}`);
      }
      throw e;
    } finally {
      for (const p of pages) if (!p.keep) await p.context().close().catch(() => {});
    }
  });
}

before(async () => {
  browser = await launchChromium();
}, { timeout: 60_000 });

after(async () => { await browser?.close().catch(() => {}); });

describe('handoff: queue and agent', { concurrency: 1 }, () => {
  let server;
  let agent;
  let first; // visitor 1 (leaves the queue)
  let second; // visitor 2 (gets the agent)
  const SECOND_SAYS = 'Visitor two here, about a dented kettle';

  before(async () => {
    // Offers must not run out while the test walks through the queue.
    server = await SupportbotServer.start({ config: '[handoff]\noffer_timeout_secs = 600\n' });
    assert.ok(server.demoAgent(), 'the server made its demo agent');
    agent = await Agent.connect(server); // someone of team support is online: chats are queued
  }, { timeout: 120_000 });

  after(async () => {
    await first?.context().close().catch(() => {});
    await second?.context().close().catch(() => {});
    await agent?.dispose().catch(() => {});
    await server?.dispose();
  });

  const servers = () => [server];

  guard('queued visitors see their position and wait, live; leaving the queue returns to the bot', async (pages) => {
    first = await newPage(server);
    second = await newPage(server);
    first.keep = second.keep = true;
    pages.push(first, second);

    await openWidget(first);
    await ask(first, 'I want to talk to a person');
    const status1 = first.locator(sel.qtext);
    await until(async () => /^You're number 1 in the queue · about \d+ min$/.test(await status1.innerText()),
      'visitor 1 sees position 1');
    assert.equal(await status1.getAttribute('role'), 'status');
    assert.equal(await status1.getAttribute('aria-live'), 'polite');

    await openWidget(second);
    // Something only this chat has, for the agent to find its offer by.
    await ask(second, SECOND_SAYS);
    await second.locator(sel.bot).nth(1).waitFor();
    await ask(second, 'I want to talk to a person');
    const status2 = second.locator(sel.qtext);
    await until(async () => /^You're number 2 in the queue · about \d+ min$/.test(await status2.innerText()),
      'visitor 2 sees position 2');
    // The queue's line in the log says the same; its actions live in the status bar.
    const line = second.locator(sel.system).filter({ hasText: 'Support queue' }).last();
    const eta = (await status2.innerText()).match(/about (\d+) min/)[1];
    assert.match(await line.innerText(), new RegExp(`number 2 in the Support queue.*about ${eta} min`));
    assert.equal(await line.locator('button').count(), 0, 'no buttons under the queue line');
    assert.deepEqual(await second.locator(sel.qbuttons).allInnerTexts(),
      [phrase('en', 'queue_leave'), phrase('en', 'queue_leave_contact')]);
    // No "assistant is typing" dots while waiting for a person.
    await ask(second, 'Are you there?');
    await second.locator(sel.visitor).filter({ hasText: 'Are you there?' }).waitFor();
    await second.locator(sel.pending).first().waitFor({ state: 'detached' });
    assert.equal(await second.locator(sel.typing).isVisible(), false, 'no bot typing dots while queued');
    // A new message did not take the queue actions away.
    assert.equal(await second.locator(sel.qbuttons).count(), 2);
    assert.equal(await second.locator(`${sel.qbar} .qr`).getAttribute('role'), 'group');
    console.log(`screenshot: ${await shot(second, 'queued')}`);

    // Visitor 1 leaves from the keyboard: focus the button, press Enter.
    const leave = first.locator(sel.qbuttons, { hasText: phrase('en', 'queue_leave') });
    await leave.focus();
    await first.keyboard.press('Enter');
    await first.locator(sel.system).filter({ hasText: phrase('en', 'handoff_left_queue') }).waitFor();
    await first.locator(sel.qbar).waitFor({ state: 'hidden' });
    assert.equal(await widgetFocus(first), 'TEXTAREA', 'focus back in the input after leaving');

    // Visitor 2 moves up, live.
    await until(async () => /^You're number 1 in the queue · about \d+ min$/.test(await status2.innerText()),
      'visitor 2 moves up to position 1');

    // The bot answers visitor 1 again.
    const before = await first.locator(sel.bot).count();
    await ask(first, 'How long does delivery take?');
    await until(async () => (await first.locator(sel.bot).count()) > before, 'a bot answer after leaving the queue');
    await first.locator(`${sel.bot}:has(a.src)`).last().waitFor();
  }, servers);

  guard('an agent joins: joined line, their name, typing both ways, no private notes, then close', async (pages) => {
    assert.ok(second, 'needs the first test');
    const page = second;
    pages.push(page);
    const name = agent.me.name;
    assert.ok(name, 'the agent has a display name');

    const offer = await agent.offerFor(SECOND_SAYS);
    const conversation = offer.conversation;
    await agent.send({ type: 'accept', conversation, ref: 'r1' });
    await agent.wait((f) => f.type === 'ok' && f.ref === 'r1', 'accept ok');

    await page.locator(sel.system).filter({ hasText: fill(phrase('en', 'handoff_agent_joined'), { agent: name }) })
      .waitFor();
    await page.locator(sel.qbar).waitFor({ state: 'hidden' });

    // The agent writes: their name over a bubble that is not the bot's.
    await agent.send({ type: 'message', conversation, client_id: 'x1', text: 'Hi, I am looking at your question now.' });
    const reply = page.locator(sel.agent).filter({ hasText: 'looking at your question' });
    await reply.waitFor();
    assert.equal(await reply.locator('.who').innerText(), name);
    assert.equal((await reply.locator('.sr').innerText()).trim(), `${name}:`);
    const styles = await page.evaluate(() => {
      const root = document.querySelector('#supportbot-host').shadowRoot;
      const bg = (s) => { const e = root.querySelector(s); return e && getComputedStyle(e).borderLeftWidth + ' ' + getComputedStyle(e).backgroundColor; };
      return { agent: bg('.from-agent .bubble'), bot: bg('.from-bot .bubble') };
    });
    assert.notEqual(styles.agent, styles.bot, 'agent bubbles look different from the bot\'s');

    // The agent types: "<name> is typing…" shows, and goes once their message arrives.
    await agent.send({ type: 'typing', conversation });
    const typing = page.locator(sel.typing);
    await typing.waitFor({ state: 'visible' });
    assert.equal((await typing.innerText()).trim(), `${fill(phrase('en', 'ui_agent_typing'), { name })}…`);
    assert.equal(await typing.getAttribute('role'), 'status');
    console.log(`screenshot: ${await shot(page, 'agent')}`);
    // Without another frame it goes away after a few seconds.
    await typing.waitFor({ state: 'hidden', timeout: 10_000 });
    await agent.send({ type: 'typing', conversation });
    await typing.waitFor({ state: 'visible' });

    // A private note never reaches the widget; the message after it does.
    const NOTE = 'PRIVATE NOTE: check the DPD hub';
    await agent.send({ type: 'note', conversation, client_id: 'n1', text: NOTE });
    await agent.wait((f) => f.type === 'ack' && f.client_id === 'n1', 'note ack');
    await agent.send({ type: 'message', conversation, client_id: 'x2', text: 'Found it: your parcel left today.' });
    await page.locator(sel.agent).filter({ hasText: 'parcel left today' }).waitFor();
    await typing.waitFor({ state: 'hidden', timeout: 2_000 }); // cleared by the message, not by the timer
    assert.equal(await page.locator(`${W} .root`).evaluate((r, n) => r.innerText.includes(n), NOTE), false);
    assert.equal(await page.locator(sel.agent).count(), 2);

    // The visitor types: the agent hears it, throttled.
    const frames = () => agent.frames.filter((f) => f.type === 'typing' && f.conversation === conversation).length;
    const before = frames();
    await page.locator(sel.input).focus();
    const started = Date.now();
    for (const ch of 'thanks, that is great news') {
      await page.keyboard.type(ch);
      await sleep(40);
    }
    const typedFor = Date.now() - started;
    await until(() => frames() > before, 'the agent gets the visitor\'s typing');
    await sleep(300);
    const sent = frames() - before;
    const allowed = 1 + Math.floor(typedFor / 2500); // one frame per 2.5 s at most
    assert.ok(sent >= 1 && sent <= allowed, `${sent} typing frames for ${typedFor} ms of typing (at most ${allowed})`);
    assert.equal(agent.frames.filter((f) => f.type === 'typing' && f.conversation === conversation).at(-1).from, 'visitor');
    await page.locator(sel.input).press('Enter');
    await page.locator(sel.visitor).filter({ hasText: 'thanks, that is great news' }).waitFor();
    await agent.wait((f) => f.type === 'message' && f.conversation === conversation &&
      f.message?.text === 'thanks, that is great news', 'the visitor message reaches the agent');

    // Close: the system line, and the bot answers again.
    await agent.send({ type: 'close', conversation, ref: 'c1' });
    await agent.wait((f) => f.type === 'ok' && f.ref === 'c1', 'close ok');
    await page.locator(sel.system).filter({ hasText: phrase('en', 'handoff_closed') }).waitFor();
    console.log(`screenshot: ${await shot(page, 'closed')}`);
  }, servers);

  guard('a Polish visitor gets the queue status in Polish', async (pages) => {
    const page = await newPage(server, 'pl-PL');
    pages.push(page);
    await openWidget(page);
    await until(async () => (await page.locator(sel.input).getAttribute('placeholder')) === phrase('pl', 'ui_placeholder'),
      'the Polish widget');
    await ask(page, 'chcę porozmawiać z konsultantem');
    const status = page.locator(sel.qtext);
    await status.waitFor();
    const template = phrase('pl', 'ui_queue_status');
    const escaped = template.replace(/[.*+?^$()|[\]\\]/g, '\\$&');
    const pattern = new RegExp(`^${escaped.replace('{position}', '\\d+').replace('{eta}', '\\d+')}$`);
    await until(async () => pattern.test(await status.innerText()), `"${template}" filled in`);
    assert.deepEqual(await page.locator(sel.qbuttons).allInnerTexts(),
      [phrase('pl', 'queue_leave'), phrase('pl', 'queue_leave_contact')]);
    console.log(`screenshot: ${await shot(page, 'queued-pl')}`);
    await page.locator(sel.qbuttons, { hasText: phrase('pl', 'queue_leave') }).click();
    await page.locator(sel.system).filter({ hasText: phrase('pl', 'handoff_left_queue') }).waitFor();
    await page.locator(sel.qbar).waitFor({ state: 'hidden' });
  }, servers);
});

describe('handoff: outside business hours', { concurrency: 1 }, () => {
  let server;
  before(async () => {
    // A team that is never open: every request for a person gets the offline form.
    server = await SupportbotServer.start({
      config: '[[teams]]\nid = "support"\nname = "Support"\n[teams.hours]\ntime_zone = "UTC"\ndays = {}\n',
    });
  }, { timeout: 120_000 });
  after(async () => { await server?.dispose(); });
  const servers = () => [server];

  guard('the offline form checks the e-mail address in the browser, then files the request', async (pages) => {
    const page = await newPage(server);
    pages.push(page);
    await openWidget(page);
    await ask(page, 'I want to talk to a person');
    await page.locator(sel.system).filter({ hasText: phrase('en', 'handoff_offline') }).waitFor();
    const email = page.locator(`${sel.bot} .qr button`, { hasText: phrase('en', 'offline_channel_email') });
    await email.click();
    await page.locator(sel.bot).filter({ hasText: phrase('en', 'offline_ask_email') }).waitFor();
    const input = page.locator(sel.input);
    assert.equal(await input.getAttribute('inputmode'), 'email');
    assert.equal(await input.getAttribute('autocomplete'), 'email');
    assert.equal(await widgetFocus(page), 'TEXTAREA', 'focus moved from the used button to the input');

    // Not an address: refused in the browser, nothing sent.
    const visitors = await page.locator(sel.visitor).count();
    await ask(page, 'not-an-email');
    const error = page.locator(sel.error);
    await error.waitFor({ state: 'visible' });
    assert.equal(await error.innerText(), phrase('en', 'ui_invalid_email'));
    assert.equal(await error.getAttribute('role'), 'alert');
    assert.equal(await input.getAttribute('aria-invalid'), 'true');
    assert.equal(await input.getAttribute('aria-describedby'), await error.getAttribute('id'));
    assert.equal(await input.inputValue(), 'not-an-email', 'the text stays for correcting');
    await sleep(800);
    assert.equal(await page.locator(sel.pending).count(), 0, 'nothing pending');
    assert.equal(await page.locator(sel.visitor).count(), visitors, 'nothing sent');
    console.log(`screenshot: ${await shot(page, 'offline-error')}`);

    // A real address goes through; the error goes as soon as the text changes.
    await input.fill('ann.smith@example.co.uk');
    await error.waitFor({ state: 'hidden' });
    assert.equal(await input.getAttribute('aria-invalid'), null);
    await input.press('Enter');
    await page.locator(sel.visitor).filter({ hasText: 'ann.smith@example.co.uk' }).waitFor();
    await page.locator(sel.bot).filter({ hasText: phrase('en', 'offline_ask_details') }).waitFor();
    assert.equal(await input.getAttribute('inputmode'), null, 'back to a plain text input');

    await ask(page, 'My kettle arrived with a dent in the lid.');
    const filed = fill(phrase('en', 'offline_filed_email'), { contact: 'ann.smith@example.co.uk' });
    await page.locator(sel.bot).filter({ hasText: filed }).waitFor();
    console.log(`screenshot: ${await shot(page, 'offline-done')}`);
  }, servers);

  guard('the offline form checks a phone number in the browser', async (pages) => {
    const page = await newPage(server);
    pages.push(page);
    await openWidget(page);
    await ask(page, 'I want to talk to a person');
    await page.locator(`${sel.bot} .qr button`, { hasText: phrase('en', 'offline_channel_phone') }).click();
    await page.locator(sel.bot).filter({ hasText: phrase('en', 'offline_ask_phone') }).waitFor();
    const input = page.locator(sel.input);
    assert.equal(await input.getAttribute('inputmode'), 'tel');
    for (const bad of ['12 34', 'call me maybe', '44+20 7946 0000']) {
      await ask(page, bad);
      await page.locator(sel.error).waitFor({ state: 'visible' });
      assert.equal(await page.locator(sel.error).innerText(), phrase('en', 'ui_invalid_phone'));
      assert.equal(await page.locator(sel.visitor).filter({ hasText: bad }).count(), 0, `"${bad}" not sent`);
      await input.fill('');
    }
    await ask(page, '+44 (20) 7946-0000');
    await page.locator(sel.bot).filter({ hasText: phrase('en', 'offline_ask_details') }).waitFor();
    await ask(page, 'Please call about my order.');
    await page.locator(sel.bot).filter({ hasText: fill(phrase('en', 'offline_filed_phone'), { contact: '+442079460000' }) })
      .waitFor();
  }, servers);
});
