// The chat widget as a visitor sees it: headless Debian Chromium (via playwright-core)
// against the real supportbot server, the demo shop page and the repository's knowledge base.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { T, launchChromium, until } from './browser.mjs';
import { SupportbotServer } from './server.mjs';


let server;
let browser;
// One visitor whose conversation goes through tests 1, 2 and 7.
let shared;
let sharedTranscript;

// Playwright's CSS engine pierces open shadow roots, so these reach inside the widget.
const W = '#supportbot-host';
const sel = {
  launcher: `${W} .launcher`,
  panel: `${W} .panel`,
  input: `${W} textarea`,
  messages: `${W} .log .msg`,
  visitor: `${W} .log .msg.from-visitor`,
  bot: `${W} .log .msg.from-bot`,
  pending: `${W} .outbox .msg`,
  status: `${W} .status`,
};


/** Waits until the locator's count has not changed for `quietMs` (the bot may send more than one message). */
async function settledCount(locator, quietMs = 1500) {
  let count = await locator.count();
  let since = Date.now();
  while (Date.now() - since < quietMs) {
    await new Promise((r) => setTimeout(r, 100));
    const now = await locator.count();
    if (now !== count) { count = now; since = Date.now(); }
  }
  return count;
}

/** What has focus inside the widget's shadow root: "TEXTAREA", "BUTTON.launcher", … or null. */
function widgetFocus(page) {
  return page.evaluate(() => {
    const a = document.querySelector('#supportbot-host')?.shadowRoot?.activeElement;
    return a ? a.tagName + (a.className ? '.' + a.className : '') : null;
  });
}

function transcript(page) {
  return page.locator(sel.messages).evaluateAll((els) =>
    els.map((e) => ({ seq: Number(e.dataset.seq), from: e.className, text: e.querySelector('.text').innerText })));
}

async function newPage() {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
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
  if ((await launcher.getAttribute('aria-expanded')) === 'true') return; // already open
  await launcher.click();
  await page.locator(sel.panel).waitFor({ state: 'visible' });
  await until(async () => (await widgetFocus(page)) === 'TEXTAREA', 'focus in the input');
}

async function ask(page, text) {
  await page.locator(sel.input).fill(text);
  await page.locator(sel.input).press('Enter');
}

/** Wraps a test body: on failure, prints the server log and saves a screenshot. */
function check(name, body) {
  test(name, { timeout: 90_000 }, async () => {
    const pages = [];
    try {
      await body(pages);
      for (const p of pages) assert.deepEqual(p.errors, [], 'no JavaScript errors on the page');
    } catch (e) {
      for (const [i, p] of pages.entries()) {
        const shot = path.join(os.tmpdir(), `supportbot-${name.replace(/\W+/g, '-')}-${i}.png`);
        await p.screenshot({ path: shot }).then(() => console.error(`screenshot: ${shot}`), () => {});
      }
      console.error(`--- server log (${server.logFile}) ---\n${server.log().split('\n').slice(-80).join('\n')}`);
      throw e;
    } finally {
      for (const p of pages) if (!p.keep) await p.context().close().catch(() => {});
    }
  });
}

describe('chat widget', { concurrency: 1 }, () => {
  before(async () => {
    server = await SupportbotServer.start();
    browser = await launchChromium();
  }, { timeout: 120_000 });

  after(async () => {
    await shared?.context().close().catch(() => {});
    await browser?.close().catch(() => {});
    await server?.dispose();
  });

  check('asks a question and gets a knowledge-base answer with a link to the article', async (pages) => {
    shared = await newPage();
    shared.keep = true;
    pages.push(shared);
    const page = shared;
    await openWidget(page);
    assert.equal(await page.locator(sel.launcher).getAttribute('aria-expanded'), 'true');

    const question = 'How long does delivery take?';
    await page.keyboard.type(question);
    await page.keyboard.press('Enter');

    await page.locator(sel.visitor).filter({ hasText: question }).waitFor();
    const answer = page.locator(`${sel.bot}:has(a.src)`).last();
    await answer.waitFor();
    // The answer comes after the question.
    const t = await transcript(page);
    const qi = t.findIndex((m) => m.from.includes('from-visitor') && m.text.includes(question));
    assert.ok(qi >= 0 && t.slice(qi + 1).some((m) => m.from.includes('from-bot')), JSON.stringify(t));

    const link = answer.locator('a.src');
    const href = await link.getAttribute('href');
    assert.match(href, /\/kb\/en\//);
    assert.equal(await link.getAttribute('target'), '_blank');
    assert.match(await link.getAttribute('rel'), /noopener/);
    const res = await page.request.get(href);
    assert.equal(res.status(), 200, `GET ${href}`);
    assert.match(res.headers()['content-type'], /text\/html/);

    // Nothing left pending, nothing shown twice.
    await page.locator(sel.pending).first().waitFor({ state: 'detached' });
    await settledCount(page.locator(sel.messages));
    sharedTranscript = await transcript(page);
    assert.equal(sharedTranscript.filter((m) => m.text.includes(question)).length, 1);
  });

  check('a reload shows the same transcript without sending anything', async (pages) => {
    const page = shared;
    pages.push(page);
    assert.ok(sharedTranscript, 'needs the first test');
    await page.reload();
    await openWidget(page);
    await until(async () => (await page.locator(sel.messages).count()) >= sharedTranscript.length,
      `${sharedTranscript.length} messages after reload`);
    await settledCount(page.locator(sel.messages));
    assert.deepEqual(await transcript(page), sharedTranscript);
    assert.equal(await page.locator(sel.pending).count(), 0);
  });

  check('an out-of-scope question gets the fallback and a "Talk to a person" button', async (pages) => {
    const page = await newPage();
    pages.push(page);
    await openWidget(page);
    await ask(page, 'Can you recommend a good pizza place nearby?');
    await page.locator(sel.visitor).filter({ hasText: 'pizza place' }).waitFor();
    const button = page.locator(`${sel.bot} .qr button`, { hasText: 'Talk to a person' });
    await button.waitFor();
    assert.equal(await button.isEnabled(), true);
    assert.equal(await button.evaluate((b) => b.tagName), 'BUTTON');

    // Clicking it sends a choice: the server echoes the label as the visitor's message,
    // and the fallback's buttons can't be used twice.
    const seq = await page.locator(`${sel.bot}:has(.qr button)`).last().getAttribute('data-seq');
    await button.click();
    await page.locator(sel.visitor).filter({ hasText: 'Talk to a person' }).waitFor();
    await until(async () => (await page.locator(`${W} .log .msg[data-seq="${seq}"] .qr button:enabled`).count()) === 0,
      'quick replies retired once used');
  });

  check('message text is rendered as text, never as HTML', async (pages) => {
    const page = await newPage();
    pages.push(page);
    await openWidget(page);
    const evil = '<img src=x onerror="window.__pwned=1">';
    await ask(page, evil);
    const shown = page.locator(sel.visitor).filter({ hasText: evil });
    await shown.waitFor();
    assert.equal(await shown.locator('.text').innerText(), evil);
    await page.locator(`${sel.visitor} ~ .msg.from-bot`).first().waitFor(); // the bot has answered it
    assert.equal(await page.evaluate(() => window.__pwned), undefined);
    assert.equal(await page.locator(`${W} img`).count(), 0, 'no img element in the widget');
    assert.equal(await page.locator('img').count(), 0, 'no img element anywhere');
  });

  check('keyboard: Escape closes and returns focus, aria-expanded follows, Shift+Enter is a new line',
    async (pages) => {
      const page = await newPage();
      pages.push(page);
      const launcher = page.locator(sel.launcher);
      await launcher.waitFor();
      assert.equal(await launcher.getAttribute('aria-expanded'), 'false');
      assert.ok(await launcher.getAttribute('aria-label'));
      assert.equal(await page.locator(sel.panel).isVisible(), false);

      await openWidget(page);
      assert.equal(await launcher.getAttribute('aria-expanded'), 'true');
      assert.equal(await page.locator(sel.panel).getAttribute('role'), 'dialog');
      assert.equal(await page.locator(`${W} .log`).getAttribute('role'), 'log');

      await page.keyboard.type('first line');
      await page.keyboard.press('Shift+Enter');
      await page.keyboard.type('second line');
      assert.equal(await page.locator(sel.input).inputValue(), 'first line\nsecond line');
      assert.equal(await page.locator(sel.pending).count(), 0, 'Shift+Enter does not send');

      await page.keyboard.press('Escape');
      await page.locator(sel.panel).waitFor({ state: 'hidden' });
      assert.equal(await launcher.getAttribute('aria-expanded'), 'false');
      await until(async () => (await widgetFocus(page)) === 'BUTTON.launcher', 'focus back on the launcher');

      // The launcher works from the keyboard too.
      await page.keyboard.press('Enter');
      await page.locator(sel.panel).waitFor({ state: 'visible' });
      assert.equal(await launcher.getAttribute('aria-expanded'), 'true');
      await until(async () => (await widgetFocus(page)) === 'TEXTAREA', 'focus in the input again');
      assert.equal(await page.locator(sel.input).inputValue(), 'first line\nsecond line', 'draft kept');
    });

  check('host page CSS does not leak into the widget', async (pages) => {
    const page = await newPage();
    pages.push(page);
    await page.addStyleTag({ content: '* { color: rgb(255, 0, 0) !important; font-size: 40px !important }' });
    await openWidget(page);
    await ask(page, 'Hello');
    const visitorText = page.locator(`${sel.visitor} .text p`).first();
    await visitorText.waitFor();
    const botText = page.locator(`${sel.visitor} ~ .msg.from-bot .text p`).first();
    await botText.waitFor();
    for (const [who, loc] of [['visitor', visitorText], ['bot', botText]]) {
      const style = await loc.evaluate((e) => {
        const s = getComputedStyle(e);
        return { color: s.color, fontSize: s.fontSize };
      });
      assert.notEqual(style.color, 'rgb(255, 0, 0)', `${who} message colour`);
      assert.notEqual(style.fontSize, '40px', `${who} message font size`);
    }
    // The host page itself is red, so the rule did apply there.
    assert.equal(await page.locator('h1').evaluate((e) => getComputedStyle(e).color), 'rgb(255, 0, 0)');
  });

  check('a Polish browser gets a Polish widget and Polish answers', async (pages) => {
    // The expected words come from the repository's Polish catalog, not from this test.
    const catalog = fs.readFileSync(new URL('../../flows/messages/pl.toml', import.meta.url), 'utf8');
    const phrase = (key) => JSON.parse(catalog.match(new RegExp(`^${key} = (".*")$`, 'm'))[1]);
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: 'pl-PL' });
    const page = await context.newPage();
    page.errors = [];
    page.on('pageerror', (e) => page.errors.push(String(e)));
    page.setDefaultTimeout(T);
    pages.push(page);
    await page.goto(`${server.url}/`);
    await openWidget(page);
    await until(async () => (await page.locator(sel.input).getAttribute('placeholder')) === phrase('ui_placeholder'),
      'the Polish placeholder');
    assert.equal(await page.locator(`${W} .panel`).getAttribute('lang'), 'pl');
    await until(async () => (await page.locator(`${sel.bot} .text`).first().innerText()).trim() === phrase('welcome'),
      'the Polish greeting');
    await ask(page, 'Ile mam dni na zwrot towaru?');
    const answer = page.locator(`${sel.bot}`).nth(1);
    await answer.waitFor();
    await until(async () => (await answer.locator('a[href*="/kb/pl/"]').count()) > 0,
      'an answer linking to the Polish knowledge base');
  });

  check('after a server restart the widget reconnects, delivers and shows nothing twice', async (pages) => {
    const page = shared;
    pages.push(page);
    assert.ok(sharedTranscript, 'needs the first test');
    await openWidget(page);
    await settledCount(page.locator(sel.messages));
    const before = await transcript(page);
    assert.ok(before.length >= 2);

    await server.stop();
    await page.locator(sel.status, { hasText: 'Reconnecting' }).waitFor();

    // Typed while the server is down: shown as pending, delivered after the reconnect.
    const offline = 'Do you deliver to Ireland?';
    await ask(page, offline);
    await page.locator(sel.pending, { hasText: offline }).waitFor();

    await server.spawn(); // same port, same data dir
    await page.locator(sel.status).waitFor({ state: 'hidden', timeout: 60_000 });
    await page.locator(sel.visitor).filter({ hasText: offline }).waitFor();
    await page.locator(sel.pending).first().waitFor({ state: 'detached' });

    // And a message sent once it is back.
    const online = 'How do I return an item?';
    await ask(page, online);
    await page.locator(sel.visitor).filter({ hasText: online }).waitFor();
    await until(async () => {
      const t = await transcript(page);
      const i = t.findIndex((m) => m.text.includes(online));
      return i >= 0 && t.slice(i + 1).some((m) => m.from.includes('from-bot'));
    }, 'the bot answer to the new message');
    await settledCount(page.locator(sel.messages));

    const afterT = await transcript(page);
    assert.deepEqual(afterT.slice(0, before.length), before, 'earlier messages unchanged');
    const seqs = afterT.map((m) => m.seq);
    assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b), 'in seq order');
    assert.equal(new Set(seqs).size, seqs.length, 'no seq shown twice');
    for (const text of [offline, online]) {
      assert.equal(afterT.filter((m) => m.from.includes('from-visitor') && m.text === text).length, 1, text);
    }
    const fresh = afterT.slice(before.length);
    assert.equal(fresh.filter((m) => m.from.includes('from-visitor')).length, 2, JSON.stringify(fresh));
    assert.ok(fresh.filter((m) => m.from.includes('from-bot')).length >= 2, JSON.stringify(fresh));
  });
});
