// Shared pieces of the end-to-end tests: configuration from the environment, the browser,
// HTTP sign-in for setup steps, and screenshots in both languages.
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { chromium } from 'playwright-core';

export const BASE = (process.env.HOTLINE_URL ?? 'http://127.0.0.1:18080').replace(/\/$/, '');
export const PASSWORD = process.env.HOTLINE_E2E_PASSWORD ?? '';
export const ARTIFACTS = resolve(process.env.HOTLINE_E2E_ARTIFACTS ?? 'e2e-artifacts');
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

if (!PASSWORD) {
  throw new Error('HOTLINE_E2E_PASSWORD is not set (the password of the accounts op, lead, sup and boss)');
}
mkdirSync(ARTIFACTS, { recursive: true });

export async function launch() {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-quic',
      '--no-first-run',
      '--disable-component-update',
      '--disable-sync',
      '--autoplay-policy=no-user-gesture-required',
    ],
  });
}

/** A new browser context (its own cookies and storage) and page, sized like a phone or a desk. */
export async function openPage(browser, { phone = false } = {}) {
  // The people who use it are in China: their browsers keep Shanghai's calendar, as the service does.
  const place = { timezoneId: 'Asia/Shanghai' };
  const context = await browser.newContext(
    phone
      ? { ...place, viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true }
      : { ...place, viewport: { width: 1366, height: 900 } },
  );
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);
  // Count the tones the offer ring starts, to check it really rings.
  await page.addInitScript(() => {
    window.__tones = 0;
    const original = AudioContext.prototype.createOscillator;
    AudioContext.prototype.createOscillator = function (...args) {
      window.__tones += 1;
      return original.apply(this, args);
    };
  });
  const problems = [];
  page.on('pageerror', (e) => problems.push(String(e)));
  page.problems = problems;
  return page;
}

/** Signs in over HTTP and returns a fetch bound to that session (for setup steps). */
export async function session(name) {
  const res = await fetch(`${BASE}/api/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name, password: PASSWORD }),
  });
  if (!res.ok) throw new Error(`login ${name}: ${res.status} ${await res.text()}`);
  const cookie = res.headers.get('set-cookie')?.split(';')[0];
  return async (method, path, body) => {
    const r = await fetch(`${BASE}${path}`, {
      method,
      headers: { cookie, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await r.text();
    if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${text}`);
    return text ? JSON.parse(text) : undefined;
  };
}

/** Screenshots the page in the current language, then in the other one, then switches back. */
export async function shootBoth(page, name) {
  const first = await page.evaluate(() => document.documentElement.lang);
  await page.screenshot({ path: join(ARTIFACTS, `${name}.${first}.png`), fullPage: true });
  await page.click('[data-testid=lang-switch]');
  await page.waitForFunction((l) => document.documentElement.lang !== l, first);
  const second = await page.evaluate(() => document.documentElement.lang);
  await page.screenshot({ path: join(ARTIFACTS, `${name}.${second}.png`), fullPage: true });
  await page.click('[data-testid=lang-switch]');
  await page.waitForFunction((l) => document.documentElement.lang === l, first);
}

export async function signIn(page, name) {
  await page.goto(`${BASE}/console/`);
  await page.fill('input[name=name]', name);
  await page.fill('input[name=password]', PASSWORD);
  await page.click('form button[type=submit]');
  await page.waitForSelector('.statusbar');
}

/**
 * Screenshots an open modal dialog in both languages. A modal makes the rest of the page inert,
 * so it is closed to switch the language and opened again with `reopen`.
 */
export async function shootDialogBoth(page, name, reopen) {
  const first = await page.evaluate(() => document.documentElement.lang);
  await page.screenshot({ path: join(ARTIFACTS, `${name}.${first}.png`) });
  for (const target of ['other', 'first']) {
    await page.keyboard.press('Escape');
    await page.waitForSelector('dialog[open]', { state: 'detached' });
    await page.click('[data-testid=lang-switch]');
    await page.waitForFunction(
      ([l, back]) => (back ? document.documentElement.lang === l : document.documentElement.lang !== l),
      [first, target === 'first'],
    );
    await reopen();
    if (target === 'other') {
      const second = await page.evaluate(() => document.documentElement.lang);
      await page.screenshot({ path: join(ARTIFACTS, `${name}.${second}.png`) });
    }
  }
}
