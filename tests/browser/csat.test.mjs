// Ratings and "did this help?" as a visitor meets them, in headless Debian Chromium against
// the real server: thumbs on a knowledge-base answer (by keyboard), a "no" that offers other
// articles and a person, a "yes" that asks for a rating, the rating control used with the
// keyboard alone (radio group, comment, Enter), a changed mind, and the state kept across a
// reload. What was stored is read back through the manager's CSV export. Then the whole
// loop: an agent closes a chat in the console, the visitor rates it in the widget, and a
// manager sees the rating on the /admin dashboard.
//
// Screenshots go to $CSAT_SHOTS_DIR (default /tmp): csat-*.png.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { T, launchChromium, until } from './browser.mjs';
import { SupportbotServer } from './server.mjs';

const SHOTS = process.env.CSAT_SHOTS_DIR || '/tmp';
const MANAGER_SECRET = crypto.randomBytes(24).toString('hex');
const W = '#supportbot-host';
const sel = {
  launcher: `${W} .launcher`,
  input: `${W} textarea`,
  bot: `${W} .log .msg.from-bot`,
  thumbs: `${W} .fb`,
  rate: `${W} form.rate`,
  rated: `${W} .rate-done`,
};

let server;
let browser;

function csvRows(text) {
  const [head, ...rows] = text.trim().split('\n');
  const names = head.split(',');
  // The test's comments have no commas or quotes, so a plain split is enough here.
  return rows.map((r) => Object.fromEntries(r.split(',').map((v, i) => [names[i], v])));
}

async function ratings() {
  const res = await fetch(`${server.url}/api/export/ratings.csv`, {
    headers: { authorization: `Bearer ${MANAGER_SECRET}` },
  });
  assert.equal(res.status, 200);
  return csvRows(await res.text());
}

async function visitorAsking(question) {
  const context = await browser.newContext({ viewport: { width: 1100, height: 800 } });
  const page = await context.newPage();
  page.errors = [];
  page.on('pageerror', (e) => page.errors.push(String(e)));
  page.setDefaultTimeout(T);
  await page.goto(`${server.url}/`);
  await page.locator(sel.launcher).click();
  await page.locator(sel.input).fill(question);
  await page.locator(sel.input).press('Enter');
  await page.locator(sel.thumbs).first().waitFor();
  return page;
}

/** The element focused inside the widget: "BUTTON.no", "INPUT.rate-comment", … */
function focused(page) {
  return page.evaluate(() => {
    const a = document.querySelector('#supportbot-host')?.shadowRoot?.activeElement;
    return a ? a.tagName + (a.className ? '.' + a.className.split(' ')[0] : '') : null;
  });
}

/** Presses Tab until `want` has focus (at most `max` times). */
async function tabTo(page, want, max = 25) {
  for (let i = 0; i < max; i += 1) {
    if ((await focused(page)) === want) return;
    await page.keyboard.press('Tab');
  }
  assert.fail(`never reached ${want} with Tab (last: ${await focused(page)})`);
}

describe('ratings and "did this help?" in the widget', () => {
  before(async () => {
    const sha = crypto.createHash('sha256').update(MANAGER_SECRET).digest('hex');
    server = await SupportbotServer.start({
      config: `[[tokens]]\nname = "managers"\nsha256 = "${sha}"\nroles = ["manager"]\n`,
    });
    browser = await launchChromium();
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  test('a "no" by keyboard offers other articles and a person; the vote survives a reload', async () => {
    const page = await visitorAsking('how long does delivery take');
    const thumbs = page.locator(sel.thumbs).first();
    assert.equal(await thumbs.locator('button.yes').getAttribute('aria-label'), 'Yes, this helped');
    assert.equal(await thumbs.locator('button.no').getAttribute('aria-label'), "No, this didn't help");
    await page.locator(sel.input).focus();
    await page.keyboard.press('Shift+Tab'); // out of the composer, back into the log
    await tabTo(page, 'BUTTON.no');
    const before = await page.locator(sel.bot).count();
    await page.keyboard.press('Enter');
    await until(async () => (await page.locator(sel.bot).count()) > before, 'the offer after a no');
    const offer = page.locator(sel.bot).last();
    assert.match(await offer.innerText(), /Sorry that didn't help/);
    assert.ok(await offer.locator('.qr button', { hasText: 'Talk to a person' }).count(), 'a person is offered');
    assert.equal(await thumbs.locator('button.no').getAttribute('aria-pressed'), 'true');
    assert.ok(await thumbs.locator('button.yes').isDisabled(), 'one vote per answer');
    assert.equal(await page.locator(sel.rate).count(), 0, 'no rating after a no');
    await page.screenshot({ path: path.join(SHOTS, 'csat-thumbs-no.png') });

    await page.reload();
    await page.locator(sel.launcher).click();
    await page.locator(sel.thumbs).first().waitFor();
    assert.equal(await page.locator(`${sel.thumbs} button.no`).first().getAttribute('aria-pressed'), 'true');
    assert.deepEqual(page.errors, []);
    await page.context().close();
  });

  test('a "yes" asks for a rating, given by keyboard alone, changed within minutes', async () => {
    const page = await visitorAsking('how long does delivery take');
    await page.locator(`${sel.thumbs} button.yes`).first().click();
    const form = page.locator(sel.rate);
    await form.waitFor();
    assert.equal(await form.locator('legend').innerText(), 'Rate this chat');
    assert.equal(await form.locator('input[type=radio]').count(), 5);
    await page.screenshot({ path: path.join(SHOTS, 'csat-rating.png') });

    // Submitting without a choice says what is missing.
    await form.locator('button.primary').focus();
    await page.keyboard.press('Enter');
    await until(async () => (await form.locator('.rerr').innerText()).includes('1 to 5'), 'the missing choice named');

    // Radio group: focus lands on the first option; arrows move and select.
    assert.equal(await focused(page), 'INPUT');
    for (let i = 0; i < 3; i += 1) await page.keyboard.press('ArrowRight');
    assert.ok(await form.locator('input[value="4"]').isChecked(), 'arrows choose 4');
    await page.keyboard.press('Tab');
    assert.equal(await focused(page), 'INPUT.rate-comment');
    await page.keyboard.type('Quick and clear');
    await page.keyboard.press('Enter');
    const done = page.locator(sel.rated);
    await until(async () => (await done.isVisible()) && (await done.innerText()).includes('4 of 5'), 'the rating shown');
    await until(async () => (await page.locator(sel.bot).last().innerText()).includes('Thank you'), 'thanks');
    let rows = await until(async () => {
      const r = await ratings();
      return r.length === 1 && r;
    }, 'the rating stored');
    assert.equal(rows[0].score, '4');
    assert.equal(rows[0].comment, 'Quick and clear');
    assert.equal(rows[0].resolved_by, 'bot');
    await page.screenshot({ path: path.join(SHOTS, 'csat-rated.png') });

    // A changed mind: "Change my rating" brings the choice back with the old score.
    assert.equal(await focused(page), 'BUTTON.link');
    await page.keyboard.press('Enter');
    assert.ok(await form.locator('input[value="4"]').isChecked());
    await page.keyboard.press('ArrowLeft');
    await page.keyboard.press('ArrowLeft');
    await form.locator('button.primary').click();
    await until(async () => (await done.innerText()).includes('2 of 5'), 'the new rating shown');
    rows = await until(async () => {
      const r = await ratings();
      return r.length === 1 && r[0].score === '2' && r;
    }, 'the rating replaced, still one');

    // After a reload the widget still shows the rating as given.
    await page.reload();
    await page.locator(sel.launcher).click();
    await until(async () => (await page.locator(sel.rated).isVisible()) && (await page.locator(sel.rated).innerText()).includes('2 of 5'), 'rated after reload');
    assert.deepEqual(page.errors, []);
    await page.context().close();
  });

  test('closed in the agent console, rated in the widget, seen on the dashboard', async () => {
    const demo = server.demoAgent();
    assert.ok(demo, 'the server printed its demo agent');
    const listed = await (await fetch(`${server.url}/api/agents`, {
      headers: { authorization: `Bearer ${MANAGER_SECRET}` },
    })).json();
    const demoName = listed.agents.find((a) => a.email === demo.email).name;
    const agentCtx = await browser.newContext({ viewport: { width: 1366, height: 860 } });
    const agent = await agentCtx.newPage();
    agent.setDefaultTimeout(T);
    await agent.goto(`${server.url}/agent`);
    await agent.locator('#login-email').fill(demo.email);
    await agent.locator('#login-password').fill(demo.password);
    await agent.locator('#login-password').press('Enter');
    await agent.locator('#conn.online').waitFor();

    const visitorCtx = await browser.newContext({ viewport: { width: 1000, height: 800 } });
    const visitor = await visitorCtx.newPage();
    visitor.errors = [];
    visitor.on('pageerror', (e) => visitor.errors.push(String(e)));
    visitor.setDefaultTimeout(T);
    await visitor.goto(`${server.url}/`);
    await visitor.locator(sel.launcher).click();
    await visitor.locator(sel.input).fill('talk to a person');
    await visitor.locator(sel.input).press('Enter');
    await agent.locator('#offers .offer button.accept').click();
    await agent.locator('#input').fill('So sorry! A replacement is on its way today.');
    await agent.locator('#input').press('Enter');
    await visitor.locator(`${W} .log .msg.from-agent`).waitFor();
    await agent.locator('#btn-close').click();
    await agent.locator('#confirm-go').click();
    await agent.locator('#chat-empty').waitFor({ state: 'visible' });

    // The widget asks; the visitor rates 5 with a comment.
    const form = visitor.locator(sel.rate);
    await form.waitFor();
    assert.match(await visitor.locator(sel.bot).last().innerText(), /How was your chat with our team/);
    await form.locator('.scale label').nth(4).click();
    await form.locator('.rate-comment').fill('Fixed in two minutes');
    await form.locator('button.primary').click();
    await until(async () => (await visitor.locator(sel.rated).innerText()).includes('5 of 5'), 'rated 5');
    await visitor.screenshot({ path: path.join(SHOTS, 'csat-after-agent.png') });

    // A manager logs in to the dashboard and finds the rating under the demo agent's name.
    const password = 'manager password for the dashboard';
    const res = await fetch(`${server.url}/api/agents`, {
      method: 'POST',
      headers: { authorization: `Bearer ${MANAGER_SECRET}`, 'content-type': 'application/json' },
      body: JSON.stringify({ email: 'boss@shop.test', name: 'Boss', password, roles: ['manager'] }),
    });
    assert.equal(res.status, 201);
    const adminCtx = await browser.newContext({ viewport: { width: 1366, height: 860 } });
    const admin = await adminCtx.newPage();
    admin.errors = [];
    admin.on('pageerror', (e) => admin.errors.push(String(e)));
    admin.setDefaultTimeout(T);
    await admin.goto(`${server.url}/admin`);
    await admin.locator('#login-email').fill('boss@shop.test');
    await admin.locator('#login-password').fill(password);
    await admin.locator('#login-password').press('Enter');
    await admin.locator('#dash').waitFor({ state: 'visible' });
    const byAgent = admin.locator('#csat-agents');
    await until(async () => (await byAgent.innerText()).includes(demoName), 'the agent in the CSAT table');
    const row = byAgent.locator('tr', { hasText: demoName });
    assert.match(await row.innerText(), /\b1\b[\s\S]*5(\.0)?/);
    assert.match(await admin.locator('#tiles').innerText(), /5(\.0)?/);
    await admin.screenshot({ path: path.join(SHOTS, 'csat-dashboard.png'), fullPage: true });
    assert.deepEqual(visitor.errors, []);
    assert.deepEqual(admin.errors, []);
    await Promise.all([agentCtx.close(), visitorCtx.close(), adminCtx.close()]);
  });
});
