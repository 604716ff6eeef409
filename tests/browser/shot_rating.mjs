// Screenshots of the widget's "did this help?" and rating states (run by hand:
// `node shot_rating.mjs [outdir]`).
import { launchChromium } from './browser.mjs';
import { SupportbotServer } from './server.mjs';

const out = process.argv[2] || '/tmp/shots';
const server = await SupportbotServer.start();
const browser = await launchChromium();
const W = '#supportbot-host';
async function visitor() {
  const ctx = await browser.newContext({ viewport: { width: 1000, height: 760 } });
  const page = await ctx.newPage();
  page.on('pageerror', (e) => console.log('PAGEERROR', e));
  await page.goto(server.url + '/');
  await page.locator(`${W} .launcher`).click();
  await page.locator(`${W} textarea`).fill('how long does delivery take');
  await page.locator(`${W} textarea`).press('Enter');
  await page.locator(`${W} .fb`).first().waitFor();
  return page;
}
try {
  let page = await visitor();
  await page.screenshot({ path: `${out}/widget-thumbs.png` });
  await page.locator(`${W} .fb .no`).first().click();
  await page.locator(`${W} .log .msg.from-bot`).nth(2).waitFor();
  await page.waitForTimeout(300);
  await page.screenshot({ path: `${out}/widget-thumbs-no.png` });

  page = await visitor();
  await page.locator(`${W} .fb .yes`).first().click();
  await page.locator(`${W} .rate`).waitFor();
  await page.waitForTimeout(300);
  await page.screenshot({ path: `${out}/widget-rating.png` });
  await page.locator(`${W} .rate .primary`).click();
  await page.waitForTimeout(200);
  await page.screenshot({ path: `${out}/widget-rating-pick.png` });
  await page.locator(`${W} .scale label`).nth(3).click();
  await page.locator(`${W} .rate-comment`).fill('Quick answer, thanks!');
  await page.locator(`${W} .rate .primary`).click();
  await page.locator(`${W} .rate-done:not([hidden])`).waitFor();
  await page.waitForTimeout(500);
  await page.screenshot({ path: `${out}/widget-rated.png` });
  console.log('ok');
} finally {
  await browser.close();
  await server.stop();
}
