// The whole story in a real browser against a running server (HOTLINE_URL), built console served
// by it: a caller writes, an operator accepts and replies; the operator raises a crisis flag, the
// crisis lead's console rings (on the wallboard), the lead acknowledges, joins the chat and the
// caller sees the lead's line; a supervisor watches the floor, the incident and joins; the operator
// ends, writes the note (refused field by field, then fixed, then amended) and wraps up; the lead
// records what was done and resolves (help must be confirmed first); a second caller's line the
// server could not save is marked (that line only) and sent again with one tap, reaching the
// operator once; an administrator manages
// accounts, escalation policies, schedules and paging addresses; the supervisor scores an audit
// of the crisis contact and the operator acknowledges it; training, the assessment cycle, trends
// and KPIs; and a new account is forced to change its password. Every screen is photographed in
// Chinese and English.
//
// Needs: HOTLINE_URL, HOTLINE_E2E_PASSWORD (accounts op, lead, sup, boss), HOTLINE_E2E_ARTIFACTS.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { BASE, PASSWORD, launch, openPage, session, shootBoth, shootDialogBoth, signIn } from './harness.mjs';

const REPLY = 'Hello, I am here with you. 我在这里陪着你。';
const WAITING_LINE = 'I cannot sleep and I feel alone. 我睡不着，觉得很孤单。';
const LEAD_LINE = 'I am with the crisis team and I am here too. 我是危机干预的同事，我也在这里。';
// The second caller's lines: the middle one the server could not save.
const BEFORE_LINE = 'I have not slept for two nights. 我两个晚上没睡了。';
const UNSAVED_LINE = 'My sister is the only one I talk to. 我只跟姐姐说话。';
const AFTER_LINE = 'Can you stay with me for a while? 你能陪我一会儿吗？';
const LAST_LINE = 'Thank you for staying. 谢谢你陪我。';

/**
 * Puts a console's staff connection through the test: frames of the types in `hidden` never
 * reach the page (as if lost on the way), `cut` ends the connection (the server notices, or not:
 * a network change it has not seen yet), and after `hold` a new connection waits for `release`
 * before it reaches the server. Reload the page for its connection to go through here.
 */
async function relayStaff(page) {
  let release = () => undefined;
  const relay = {
    hidden: new Set(),
    hellos: 0,
    current: null,
    held: null,
    hold() {
      relay.held = new Promise((resolve) => (release = resolve));
    },
    release() {
      relay.held = null;
      release();
    },
    async cut({ serverNotices }) {
      const { ws, server } = relay.current;
      relay.current = null;
      if (serverNotices) await server.close();
      await ws.close();
    },
  };
  await page.routeWebSocket(/\/ws\/staff$/, async (ws) => {
    await relay.held;
    const server = ws.connectToServer();
    relay.current = { ws, server };
    server.onMessage((message) => {
      const frame = JSON.parse(String(message));
      if (frame.type === 'hello') relay.hellos += 1;
      if (!relay.hidden.has(frame.type)) ws.send(message);
    });
    // A page that closes (a reload) closes its server connection; `cut` decides for itself.
    ws.onClose(() => relay.current?.ws === ws && server.close());
    server.onClose((code, reason) => ws.close(code === 1005 || code === 1006 ? {} : { code, reason }));
  });
  return relay;
}

/** Waits until `test()` holds (up to 5 s). */
async function until(test, what) {
  for (let i = 0; i < 100 && !test(); i++) await new Promise((resolve) => setTimeout(resolve, 50));
  assert.ok(test(), what);
}

/** A caller joins `general` from `page` (any page of the site) over a plain socket; the contact. */
async function callerJoins(page) {
  return page.evaluate(
    () =>
      new Promise((resolve, reject) => {
        const ws = new WebSocket(`ws://${location.host}/ws/caller`);
        ws.onmessage = (e) => {
          const frame = JSON.parse(e.data);
          if (frame.type === 'hello') {
            ws.send(
              JSON.stringify({
                type: 'join',
                queue: 'general',
                language: 'zh',
                topic: 'family',
                screening: 'no',
                accepted_confidentiality: true,
              }),
            );
          } else if (frame.type === 'joined') {
            window.__callers = { ...window.__callers, [frame.contact]: ws };
            resolve(frame.contact);
          } else if (frame.type === 'error') {
            reject(new Error(frame.code));
          }
        };
      }),
  );
}

/** That caller leaves; resolved once the server has taken it in (the ping after it answered). */
async function callerLeaves(page, contact) {
  await page.evaluate(
    (id) =>
      new Promise((resolve) => {
        const ws = window.__callers[id];
        ws.addEventListener('message', (e) => JSON.parse(e.data).type === 'pong' && resolve());
        ws.send(JSON.stringify({ type: 'leave' }));
        ws.send(JSON.stringify({ type: 'ping' }));
      }),
    contact,
  );
}

describe('hotline web console story', { timeout: 150_000 }, () => {
  let browser;
  let caller;
  let op;
  let sup;
  let boss;
  let lead;
  let contactId;
  let incidentId;
  let ids;
  let failed = false;
  const step = (name, fn) =>
    it(name, async (t) => {
      if (failed) return t.skip('an earlier step failed');
      try {
        await fn();
      } catch (e) {
        failed = true;
        throw e;
      }
    });

  before(async () => {
    // Setup over HTTP: the harness's accounts have no languages, and an operator without a
    // language is never offered anything; one chat at a time makes them busy when they take one.
    const admin = await session('boss');
    const accounts = await admin('GET', '/api/admin/accounts');
    const opAccount = accounts.find((a) => a.name === 'op');
    assert.ok(opAccount, 'the harness made the account op');
    ids = Object.fromEntries(accounts.map((a) => [a.name, a.id]));
    await admin('PATCH', `/api/admin/accounts/${opAccount.id}`, {
      display_name: null,
      role: null,
      languages: ['zh', 'en'],
      chat_capacity: 1,
      voice_capacity: null,
      disabled: null,
    });
    // A queue that is closed right now (open for one minute, twelve hours from now).
    const now = new Date();
    const minute = (now.getUTCHours() * 60 + now.getUTCMinutes() + 720) % 1440;
    await admin('PUT', '/api/admin/queues/night', {
      id: 'night',
      name: 'Night line',
      required_skills: [],
      languages: [],
      relaxation: [],
      never_relax: false,
      overflow_to: null,
      max_wait_ms: null,
      opening_hours: { kind: 'daily', open_minute: minute, close_minute: (minute + 1) % 1440, utc_offset_minutes: 0 },
      closed_message: 'The night line is closed now. If you are in danger, please call one of these numbers.',
      alternatives: [
        { name: 'National psychological assistance hotline', number: '12356' },
        { name: 'Police', number: '110' },
        { name: 'Ambulance', number: '120' },
      ],
    });
    // An on-call schedule (crisis leads and supervisors take turns daily) for the crisis desk to
    // show; no escalation policy, so the built-in fallback pages every crisis lead first.
    const today = new Date().toISOString().slice(0, 10);
    await admin('POST', '/api/admin/schedules', {
      name: 'Crisis on call',
      time_zone: 'Asia/Shanghai',
      rotations: [{ length: 'daily', handoff_time: '09:00', start_date: today, participants: [ids.lead, ids.sup] }],
      overrides: [],
    });
    browser = await launch();
    caller = await openPage(browser, { phone: true });
    op = await openPage(browser);
    sup = await openPage(browser);
    boss = await openPage(browser);
    lead = await openPage(browser);
  });

  after(async () => {
    for (const p of [caller, op, sup, boss, lead]) {
      if (p?.problems?.length) console.error('page errors:', p.problems);
    }
    await browser?.close();
  });

  step('the caller sees opening states, the confidentiality statement and a closed queue', async () => {
    await caller.goto(`${BASE}/`);
    await caller.waitForSelector('[data-testid=confidentiality]');
    assert.equal(await caller.evaluate(() => document.documentElement.lang), 'zh-CN', 'Chinese by default');
    const exceptions = await caller.locator('[data-testid=confidentiality] li').count();
    assert.ok(exceptions >= 1, 'the exceptions are listed');
    await shootBoth(caller, '01-caller-welcome');
    // The closed queue shows its message and the alternative numbers from the server.
    await caller.click('input[name=queue][value=night]');
    await caller.waitForSelector('[data-testid=closed]');
    const numbers = await caller.locator('[data-testid=closed] .number').allTextContents();
    for (const n of ['12356', '110', '120']) assert.ok(numbers.includes(n), `closed view lists ${n}`);
    await shootBoth(caller, '02-caller-closed-queue');
    await caller.click('input[name=queue][value=general]');
  });

  step('the caller passes the pre-chat step and writes while waiting', async () => {
    await caller.check('input[name=accept]');
    await caller.click('form button[type=submit]');
    await caller.waitForSelector('input[name=screening]');
    await caller.check('input[name=screening][value=prefer_not_to_say]');
    await caller.selectOption('select[name=topic]', 'emotion');
    await shootBoth(caller, '03-caller-prechat');
    await caller.click('form button[type=submit]');
    await caller.waitForSelector('[data-testid=position]');
    // 1,400 Chinese characters are 4,200 bytes: over the server's 4,000, so the page says so
    // in the caller's language and does not send it (the server would refuse it).
    await caller.fill('#message', '我'.repeat(1400));
    assert.match(await caller.locator('[data-testid=too-long]').innerText(), /太长了，多出 67 个字/);
    assert.ok(await caller.locator('.composer button[type=submit]').isDisabled());
    await caller.press('#message', 'Enter');
    assert.equal(await caller.locator('[data-testid=transcript] li').count(), 0, 'nothing sent');
    await shootBoth(caller, '03b-caller-too-long');
    await caller.fill('#message', WAITING_LINE);
    assert.equal(await caller.locator('[data-testid=too-long]').innerText(), '');
    await caller.press('#message', 'Enter');
    await caller.waitForSelector('[data-testid=transcript] li[data-status=delivered]');
    await shootBoth(caller, '04-caller-waiting');
  });

  step('the operator signs in, goes available and the offer rings with the waiting line', async () => {
    await signIn(op, 'op');
    await op.waitForSelector('[data-link=open]');
    await shootBoth(op, '05-operator-desk');
    await op.click('[data-testid=set-available]');
    const offer = op.locator('[data-testid=offer]');
    await offer.waitFor();
    contactId = Number(await offer.getAttribute('data-contact'));
    assert.ok(contactId > 0);
    assert.match(await offer.textContent(), /I cannot sleep/);
    await op.waitForFunction(() => window.__tones > 0);
    assert.match(await op.locator('[data-testid=offer-countdown]').textContent(), /\d/);
    await shootBoth(op, '06-operator-offer');
  });

  step('the operator accepts and replies; the caller sees the reply', async () => {
    await op.click('[data-testid=accept]');
    const reply = op.locator(`#reply-${contactId}`);
    await reply.waitFor();
    await reply.fill(REPLY);
    await reply.press('Enter');
    await op.waitForSelector(`article.chat[data-contact="${contactId}"] li[data-seq]:has-text("I am here with you")`);
    await caller.waitForSelector('[data-testid=connected]');
    await caller.waitForSelector('[data-testid=transcript] li.from-operator:has-text("I am here with you")');
    await shootBoth(op, '07-operator-chat');
    await shootBoth(caller, '08-caller-chat');
  });

  step('after a reload the caller is back in the same conversation', async () => {
    // The first resume after the reload is refused for a reason of the moment (the server could
    // not read the transcript): the page tries again by itself, and is back in its conversation.
    let refusedResumes = 0;
    await caller.routeWebSocket(/\/ws\/caller$/, (ws) => {
      const server = ws.connectToServer();
      ws.onMessage((message) => {
        if (JSON.parse(String(message)).type === 'resume' && refusedResumes === 0) {
          refusedResumes += 1;
          const refusal = { type: 'error', code: 'internal', message: 'please try again', error_id: 'e2eref002' };
          ws.send(JSON.stringify(refusal));
          return;
        }
        server.send(message);
      });
    });
    await caller.reload();
    await caller.waitForSelector('[data-testid=connected]');
    assert.equal(refusedResumes, 1, 'the refused resume was tried again');
    const lines = await caller.locator('[data-testid=transcript] li').allTextContents();
    assert.ok(
      lines.some((l) => l.includes('I cannot sleep')),
      'own line kept',
    );
    assert.ok(
      lines.some((l) => l.includes('I am here with you')),
      'reply kept',
    );
  });

  step('the crisis lead signs in: the crisis desk, who is on call and the schedule', async () => {
    await signIn(lead, 'lead');
    await lead.waitForSelector('[data-link=open]');
    await lead.waitForSelector('[data-testid=oncall] li[data-person]');
    assert.match(await lead.locator('[data-testid=oncall]').textContent(), /lead/);
    await lead.waitForSelector('[data-testid=schedules] .shifts li');
    const ics = await lead.locator('[data-testid=schedules] a[download]').getAttribute('href');
    const calendar = await lead.evaluate((href) => fetch(href).then((r) => r.text()), ics);
    assert.match(calendar, /BEGIN:VCALENDAR/);
    // A calendar app subscribes without the session cookie, through the address the desk makes.
    await lead.click('[data-testid=calendar-feed-new]');
    const feed = await lead.locator('[data-testid=calendar-feed]').first().inputValue();
    const subscribed = await lead.evaluate((href) => fetch(href, { credentials: 'omit' }).then((r) => r.text()), feed);
    assert.match(subscribed, /BEGIN:VCALENDAR/);
    await shootBoth(lead, '20-crisis-desk');
    // The lead watches the floor: a page must ring on any screen.
    await lead.click('a[href="#/wallboard"]');
    await lead.waitForSelector('[data-testid=wb-queues]');
  });

  step('the operator raises a crisis flag; the lead is paged on the wallboard (tone and banner)', async () => {
    const chat = op.locator(`article.chat[data-contact="${contactId}"]`);
    await chat.locator('[data-testid=crisis-raise]').click();
    const dialog = op.locator('[data-testid=crisis-dialog]');
    await dialog.waitFor();
    await dialog.locator('textarea').fill('Says they have pills at hand. 说手边有药。');
    await shootDialogBoth(op, '21-operator-crisis-confirm', async () => {
      await chat.locator('[data-testid=crisis-raise]').click();
      await dialog.waitFor();
    });
    const tonesBefore = await lead.evaluate(() => window.__tones);
    await dialog.locator('[data-testid=crisis-confirm]').click();
    await chat.locator('[data-testid=crisis-status]').waitFor();
    assert.match(await chat.locator('[data-testid=crisis-status]').textContent(), /#\d+/);

    const banner = lead.locator('[data-testid=page-banner]');
    await banner.waitFor();
    incidentId = Number(await banner.locator('.page-item').first().getAttribute('data-incident'));
    assert.ok(incidentId > 0);
    assert.match(await banner.textContent(), new RegExp(`#${contactId}`));
    await lead.waitForFunction((n) => window.__tones > n, tonesBefore);
    await shootBoth(lead, '22-crisis-page-ringing');
    await shootBoth(op, '23-operator-crisis-paged');
  });

  step('the lead acknowledges, joins the chat, and the caller sees the lead', async () => {
    await lead.click('[data-testid=page-acknowledge]');
    await lead.waitForSelector('[data-testid=page-banner]', { state: 'detached' });
    const panel = lead.locator(`[data-testid=incident][data-incident="${incidentId}"]`);
    await panel.waitFor();
    await lead.waitForSelector(`[data-testid=incident][data-state=acknowledged]`);
    const chat = op.locator(`article.chat[data-contact="${contactId}"]`);
    await chat.locator('[data-testid=crisis-acknowledged]').waitFor();
    assert.match(await chat.locator('[data-testid=crisis-acknowledged]').textContent(), /lead/);
    // A reload of the operator's desk keeps what the crisis team is doing.
    await op.reload();
    await chat.locator('[data-testid=crisis-acknowledged]').waitFor();
    assert.match(await chat.locator('[data-testid=crisis-acknowledged]').textContent(), /lead/);

    await panel.locator('[data-testid=join-barge]').click();
    const leadChat = panel.locator(`article.chat[data-contact="${contactId}"]`);
    await leadChat.waitFor();
    await leadChat.locator('li:has-text("I am here with you")').waitFor();
    await leadChat.locator(`#reply-${contactId}`).fill(LEAD_LINE);
    await leadChat.locator(`#reply-${contactId}`).press('Enter');
    await caller.waitForSelector('[data-testid=transcript] li:has-text("crisis team")');
    await chat.locator('li:has-text("crisis team")').waitFor();
    await chat.locator('[data-testid=crisis-joined]').waitFor();
    await panel.locator('[data-testid=timeline] li[data-kind=joined_contact]').waitFor();
    // A reload keeps how the lead joined: still barging, the composer there.
    await lead.reload();
    await leadChat.locator(`#reply-${contactId}`).waitFor();
    await shootBoth(lead, '24-crisis-desk-joined');
    await shootBoth(op, '25-operator-crisis-acknowledged');
    await shootBoth(caller, '26-caller-sees-lead');
  });

  step('a long conversation comes back a page at a time (two lines a frame in this story)', async () => {
    await caller.reload();
    await caller.waitForSelector('[data-testid=transcript] li:has-text("crisis team")');
    const waiting = caller.locator('[data-testid=transcript] li:has-text("I cannot sleep")');
    assert.equal(await waiting.count(), 0, 'only the newest lines come first');
    await caller.click('[data-testid=show-earlier]');
    await waiting.waitFor();
    await caller.waitForSelector('[data-testid=show-earlier]', { state: 'detached' });

    await op.reload();
    const chat = op.locator(`article.chat[data-contact="${contactId}"]`);
    const more = chat.locator('[data-testid=show-earlier]');
    await more.waitFor();
    // After the reload the operator still sees who joined the chat, and how.
    assert.match(await chat.locator('.participants').textContent(), /lead/);
    assert.match(await more.textContent(), /1/);
    assert.equal(await chat.locator('li:has-text("I cannot sleep")').count(), 0);
    await more.click();
    await chat.locator('li:has-text("I cannot sleep")').waitFor();
    await more.waitFor({ state: 'detached' });
  });

  step('the supervisor wallboard shows the live contact, the incident and the operator busy', async () => {
    await signIn(sup, 'sup');
    await sup.waitForSelector(`[data-testid=wb-contacts] tr[data-contact="${contactId}"]`);
    const row = sup.locator(`[data-testid=wb-contacts] tr[data-contact="${contactId}"]`);
    assert.ok(['green', 'yellow', 'red'].includes(await row.getAttribute('data-colour')));
    await sup.waitForSelector('[data-testid=wb-operators] tr[data-name="op"] [data-state=busy]');
    await sup.waitForSelector(`[data-testid=wb-incidents] tr[data-incident="${incidentId}"][data-state=acknowledged]`);
    assert.match(
      await sup.locator(`[data-testid=wb-incidents] tr[data-incident="${incidentId}"]`).textContent(),
      /lead/,
    );
    await row.locator('[data-testid=crisis-mark][data-state=acknowledged]').waitFor();
    await shootBoth(sup, '09-supervisor-wallboard');
    await row.locator('button').first().click(); // monitor
    await sup.waitForSelector(`.joined article.chat[data-contact="${contactId}"]`);
    await sup.waitForSelector(`.joined li:has-text("I am here with you")`);
    await shootBoth(sup, '10-supervisor-monitoring');
    await sup.click(`.joined article.chat[data-contact="${contactId}"] .chat-actions button`);
    await sup.waitForSelector('.joined', { state: 'detached' });
  });

  step('the operator ends the chat and writes the note: one field refused, fixed, submitted, amended', async () => {
    const chat = op.locator(`article.chat[data-contact="${contactId}"]`);
    await chat.locator('.chat-actions button.danger-outline').click();
    await chat.locator('.chat-actions .danger-button').click();
    await op.waitForSelector('[data-testid=wrapup-timer]');
    await caller.waitForSelector('[data-testid=ended]');
    const note = chat.locator('[data-testid=note]');
    const field = (id) => note.locator(`[data-field="${id}"]`);
    await field('call_type').locator('input[value=crisis]').check();
    await field('categories').locator('details[data-category=suicide_self_harm] summary').click();
    await field('categories').locator('input[value=suicidal_thoughts]').check();
    await field('age_group').locator('select').selectOption('18_24');
    await field('suicidal_thoughts').locator('input[value=yes]').check();
    await field('risk_level').locator('input[value=high]').check();
    await field('interventions').locator('input[value=safety_planning]').check();
    await field('outcome').locator('select').selectOption('escalated');
    // The draft saves itself as the operator types.
    await note.locator('[data-save=saved]').waitFor();
    await note.locator('[data-testid=note-submit]').click();
    // Refused: the summary is required for a data contact; the message is at the field.
    await note.locator('[data-testid=note-errors]').waitFor();
    assert.equal(await note.locator('[data-testid=note-errors] li').count(), 1, 'one refused field');
    await field('summary').locator('.field-error').waitFor();
    assert.equal(await field('summary').locator('textarea').getAttribute('aria-invalid'), 'true');
    // The message links to its field.
    await note.locator('[data-testid=note-errors] a').click();
    assert.equal(await op.evaluate(() => document.activeElement?.id), `note-${contactId}-summary`);
    await shootBoth(op, '27-operator-note-refused');
    await field('summary').locator('textarea').fill('Crisis: pills at hand; crisis lead joined; ambulance called.');
    await note.locator('[data-testid=note-submit]').click();
    await note.locator('[data-testid=note-submitted]').waitFor();
    assert.match(await note.locator('[data-field=summary]').textContent(), /pills at hand/);
    // Amend: a reason is required; the original is kept and the amendment listed.
    await note.locator('[data-testid=note-amend]').click();
    await field('referrals').locator('button:not([aria-label])').click();
    await field('referrals').locator('select').selectOption('ambulance_120');
    await field('referrals').locator('input[type=text]').fill('A-120-7');
    assert.ok(await note.locator('[data-testid=note-save-amendment]').isDisabled(), 'no reason, no amendment');
    await note.locator('textarea[name=amend-reason]').fill('Added the ambulance referral. 补充转介。');
    await shootBoth(op, '28-operator-note-amend');
    await note.locator('[data-testid=note-save-amendment]').click();
    await note.locator('[data-testid=amendment]').waitFor();
    assert.match(await note.locator('[data-field=referrals]').textContent(), /A-120-7/);
    await shootBoth(op, '29-operator-note-submitted');
    await op.click('.wrapup button.primary');
    await op.waitForSelector(`article.chat[data-contact="${contactId}"]`, { state: 'detached' });
    assert.equal(await op.locator('[data-testid=notes-to-finish]').count(), 0, 'nothing left to finish');
    await caller.click('label.score:nth-child(4)');
    await shootBoth(caller, '12-caller-ended-survey');
  });

  step('the lead records what was done; resolving waits for help to be confirmed', async () => {
    await lead.evaluate((id) => (location.hash = `#/crisis/${id}`), incidentId);
    const panel = lead.locator(`[data-testid=incident][data-incident="${incidentId}"]`);
    await panel.waitFor();
    // The operator's high-risk note went on the open incident's timeline.
    await panel.locator('[data-testid=timeline] li[data-kind=flagged]').waitFor();
    const steps = panel.locator('[data-testid=step-form]');
    await steps.locator('input[value=emergency_services_contacted]').check();
    await steps.locator('select[name=service]').selectOption('ambulance_120');
    await steps.locator('input[name=reference]').fill('A-120-7');
    await steps.locator('[data-testid=record-step]').click();
    await panel.locator('[data-testid=timeline] li[data-kind=emergency_services_contacted]').waitFor();
    await panel.locator('[data-testid=help-unconfirmed]').waitFor();
    const resolve = panel.locator('[data-testid=resolve-form]');
    await resolve.locator('textarea[name=resolution]').fill('Caller safe with family; follow-up booked.');
    await resolve.locator('[data-testid=resolve]').click();
    await resolve.locator('[data-testid=resolve-problem]').waitFor();
    assert.match(await resolve.locator('[data-testid=resolve-problem]').textContent(), /help_confirmed/);
    await shootBoth(lead, '30-crisis-resolve-refused');
    await steps.locator('input[value=help_confirmed]').check();
    await steps.locator('textarea[name=text]').fill('Ambulance crew confirmed on scene by phone.');
    await steps.locator('[data-testid=record-step]').click();
    await panel.locator('[data-testid=timeline] li[data-kind=help_confirmed]').waitFor();
    await steps.locator('input[value=outcome]').check();
    await steps.locator('textarea[name=text]').fill('Taken to hospital; family informed.');
    await steps.locator('[data-testid=record-step]').click();
    await panel.locator('[data-testid=timeline] li[data-kind=outcome]').waitFor();
    await resolve.locator('[data-testid=resolve]').click();
    await lead.waitForSelector(`[data-testid=incident][data-incident="${incidentId}"][data-state=resolved]`);
    await panel.locator('[data-testid=timeline] li[data-kind=resolved]').waitFor();
    await lead.click('[data-filter=all]');
    await lead.waitForSelector(`[data-testid=incidents] tr[data-incident="${incidentId}"][data-state=resolved]`);
    await shootBoth(lead, '31-crisis-resolved-timeline');
  });

  step('a caller at risk: red offer, a line not saved and sent again, a whisper, raise risk, transfer', async () => {
    const second = await openPage(browser, { phone: true });
    // Between the page and the server: the first `say` of UNSAVED_LINE never reaches the server,
    // and the page gets the answer the server gives a line it could not save (a store failure).
    const says = [];
    let unsavedId = null;
    // The last line is held back a moment, and meanwhile the page gets a refusal that names no
    // line (the server's answer to a `typing` sent before a resume was through): it must not
    // mark the line in flight as not sent.
    let releaseLast = null;
    await second.routeWebSocket(/\/ws\/caller$/, (ws) => {
      const server = ws.connectToServer();
      ws.onMessage((message) => {
        const frame = JSON.parse(String(message));
        if (frame.type === 'say') says.push(frame);
        if (frame.type === 'say' && frame.text === LAST_LINE && releaseLast === null) {
          ws.send(JSON.stringify({ type: 'error', code: 'not_joined', message: 'join a queue or resume first' }));
          releaseLast = () => server.send(message);
          return;
        }
        if (frame.type === 'say' && frame.text === UNSAVED_LINE && unsavedId === null) {
          unsavedId = frame.client_id;
          ws.send(
            JSON.stringify({
              type: 'error',
              code: 'internal',
              message: 'something went wrong (ref e2eref001); please try again',
              client_id: frame.client_id,
              error_id: 'e2eref001',
            }),
          );
          return;
        }
        server.send(message);
      });
    });
    await second.goto(`${BASE}/`);
    await second.check('input[name=accept]');
    await second.click('form button[type=submit]');
    await second.check('input[name=screening][value=thoughts]');
    await second.waitForSelector('.danger', { state: 'detached' });
    await second.click('form button[type=submit]');
    await second.waitForSelector('[data-testid=position]');

    const offer = op.locator('[data-testid=offer]');
    await offer.waitFor();
    assert.equal(await offer.locator('.risk').getAttribute('data-colour'), 'red', 'thoughts of suicide ring red');
    await shootBoth(op, '12b-operator-red-offer');
    const id = await offer.getAttribute('data-contact');
    await op.click('[data-testid=accept]');
    const chat = op.locator(`article.chat[data-contact="${id}"]`);
    await chat.waitFor();
    await second.waitForSelector('[data-testid=connected]');

    // Three lines; the server could not save the middle one. That line, and no other, is marked
    // not sent, with the reason and the reference; the ones before and after it are delivered.
    const line = (text) => second.locator(`[data-testid=transcript] li.mine:has-text("${text.slice(0, 20)}")`);
    for (const text of [BEFORE_LINE, UNSAVED_LINE, AFTER_LINE]) {
      await second.fill('#message', text);
      await second.press('#message', 'Enter');
    }
    await line(AFTER_LINE).and(second.locator('[data-status=delivered]')).waitFor();
    await line(UNSAVED_LINE).and(second.locator('[data-status=failed]')).waitFor();
    assert.equal(await line(UNSAVED_LINE).getAttribute('data-client-id'), unsavedId, 'the line the error named');
    assert.equal(await second.locator('[data-testid=transcript] li[data-status=failed]').count(), 1, 'one line');
    assert.equal(await line(BEFORE_LINE).getAttribute('data-status'), 'delivered');
    assert.match(await line(UNSAVED_LINE).locator('[data-testid=not-sent-why]').innerText(), /没有保存.*e2eref001/);
    assert.match(await second.locator('[data-testid=problem]').innerText(), /没有发出去/);
    const resend = line(UNSAVED_LINE).locator('[data-testid=resend]');
    assert.match(await resend.getAttribute('aria-label'), /^重新发送：My sister/);
    await chat.locator(`li:has-text("${AFTER_LINE.slice(0, 20)}")`).waitFor();
    assert.equal(await chat.locator(`li:has-text("${UNSAVED_LINE.slice(0, 20)}")`).count(), 0, 'never reached');
    await shootBoth(second, '12c-caller-line-not-sent');

    // One tap sends it again, as it was (same client_id): delivered, and the operator gets it once.
    await resend.tap();
    await line(UNSAVED_LINE).and(second.locator('[data-status=delivered]')).waitFor();
    await second.waitForSelector('[data-testid=problem]', { state: 'detached' });
    assert.deepEqual(
      says.filter((f) => f.text === UNSAVED_LINE).map((f) => f.client_id),
      [unsavedId, unsavedId],
    );
    await second.fill('#message', LAST_LINE);
    await second.press('#message', 'Enter');
    await second.waitForSelector('[data-testid=problem]');
    assert.notEqual(releaseLast, null, 'the last line is held back');
    assert.equal(
      await line(LAST_LINE).getAttribute('data-status'),
      'pending',
      'not marked by a refusal of something else',
    );
    releaseLast();
    await line(LAST_LINE).and(second.locator('[data-status=delivered]')).waitFor();
    await chat.locator(`li:has-text("${LAST_LINE.slice(0, 20)}")`).waitFor();
    for (const text of [BEFORE_LINE, UNSAVED_LINE, AFTER_LINE]) {
      assert.equal(await chat.locator(`li:has-text("${text.slice(0, 20)}")`).count(), 1, `${text} reached once`);
    }
    assert.equal(await second.locator('[data-testid=transcript] li[data-status=delivered]').count(), 4);

    // The supervisor whispers: the operator sees it, the caller does not.
    const row = sup.locator(`[data-testid=wb-contacts] tr[data-contact="${id}"]`);
    await row.waitFor();
    assert.equal(await row.getAttribute('data-colour'), 'red');
    await row.locator('button').nth(1).click(); // whisper
    await sup.fill('.joined textarea', 'Ask about sleep and safety.');
    await sup.press('.joined textarea', 'Enter');
    await chat.locator('li.whisper').waitFor();
    await shootBoth(op, '12d-operator-whisper');

    await chat.locator('select[name=risk]').selectOption('imminent');
    await chat.locator('form.inline button').click();
    await chat.locator('.risk[data-risk=imminent]').waitFor();

    // The operator starts the note (the crisis flag among it), then hands the caller on.
    const note = chat.locator('[data-testid=note]');
    const field = (panel, id) => panel.locator(`[data-field="${id}"]`);
    await field(note, 'call_type').locator('input[value=crisis]').check();
    await field(note, 'summary').locator('textarea').fill('Thoughts of suicide; handed on to a colleague.');
    await field(note, 'crisis_flag').locator('input').first().check();
    await note.locator('[data-save=saved]').waitFor();

    await chat.locator('[data-testid=transfer]').click();
    await op.click('.transfer button[type=submit]');
    await second.waitForSelector('.status .note');
    // The operator's unfinished note stays on the desk, as it was left.
    const unfinished = op.locator(`[data-testid=notes-to-finish] article[data-contact="${id}"]`);
    await unfinished.waitFor();
    const draft = unfinished.locator('[data-testid=note]');
    await field(draft, 'summary').locator('textarea').waitFor();
    assert.match(await field(draft, 'summary').locator('textarea').inputValue(), /handed on/);
    assert.ok(await field(draft, 'call_type').locator('input[value=crisis]').isChecked(), 'the draft as it was left');
    assert.ok(await field(draft, 'crisis_flag').locator('input').isChecked(), 'the crisis flag too');
    assert.equal(
      await second
        .locator('[data-testid=transcript] li.whisper, [data-testid=transcript] li:has-text("Ask about sleep")')
        .count(),
      0,
      'whispers never reach the caller',
    );
    // Back in the queue it goes to a colleague first, not straight back to the operator who
    // handed it on (with nobody else free, to them only after one ring); the caller leaves.
    await op.waitForTimeout(1_000);
    assert.equal(await offer.count(), 0, 'not offered straight back to the one who handed it on');
    await second.click('.leave button');
    await second.click('.leave .danger-button');
    await second.waitForSelector('[data-testid=ended]');
    await second.context().close();

    // The operator finishes the note of their part and submits it (its crisis flag pages).
    await shootBoth(op, '12e-operator-note-after-transfer');
    await field(draft, 'categories').locator('details[data-category=suicide_self_harm] summary').click();
    await field(draft, 'categories').locator('input[value=suicidal_thoughts]').check();
    await field(draft, 'age_group').locator('select').selectOption('18_24');
    await field(draft, 'suicidal_thoughts').locator('input[value=yes]').check();
    await field(draft, 'risk_level').locator('input[value=imminent]').check();
    await field(draft, 'interventions').locator('input[value=safety_planning]').check();
    await field(draft, 'outcome').locator('select').selectOption('escalated');
    await draft.locator('[data-testid=note-submit]').click();
    await draft.locator('[data-testid=note-submitted]').waitFor();
    await unfinished.locator('.section-head button').click();
    await unfinished.waitFor({ state: 'detached' });
  });

  step('the admin page lists the accounts, queues and skills', async () => {
    await signIn(boss, 'boss');
    await boss.waitForSelector('[data-testid=accounts] tr[data-account=op]');
    for (const name of ['op', 'lead', 'sup', 'boss']) {
      assert.equal(
        await boss.locator(`[data-testid=accounts] tr[data-account="${name}"]`).count(),
        1,
        `${name} listed`,
      );
    }
    await shootBoth(boss, '13-admin-accounts');
    await boss.click('a[href="#/admin/queues"]');
    await boss.waitForSelector('[data-testid=queues]');
    await shootBoth(boss, '14-admin-queues');
    await boss.click('[data-testid=queues] tbody tr:first-child button');
    await boss.waitForSelector('.queue-editor');
    await shootBoth(boss, '15-admin-queue-editor');
    await boss.click('a[href="#/admin/skills"]');
    await boss.waitForSelector('[data-testid=skills]');
    await shootBoth(boss, '16-admin-skills');
  });

  step('the admin edits escalation policies, schedules and paging addresses', async () => {
    await boss.click('a[href="#/admin/policies"]');
    await boss.click('[data-testid=new-policy]');
    const editor = boss.locator('[data-testid=policy-editor]');
    await editor.locator('input[name=name]').fill('Crisis team');
    // Level 1: the on-call schedule, three minutes.
    await editor.locator('fieldset[data-level="1"] [data-testid=add-target]').click();
    await editor.locator('fieldset[data-level="1"] .rows select').first().selectOption('schedule');
    await editor.locator('fieldset[data-level="1"] input[name=delay]').fill('3');
    // Level 2 without anyone: refused field by field.
    await editor.locator('[data-testid=add-level]').click();
    await editor.locator('[data-testid=save-policy]').click();
    await editor.locator('[data-testid=field-problems] li[data-field="levels[1].targets"]').waitFor();
    await shootBoth(boss, '32-admin-policy-refused');
    await editor.locator('fieldset[data-level="2"] [data-testid=add-target]').click();
    await editor.locator('fieldset[data-level="2"] select[name=target]').selectOption(String(ids.sup));
    await editor.locator('fieldset[data-level="2"] input[type=radio]').nth(1).check();
    await editor.locator('[data-testid=save-policy]').click();
    await boss.waitForSelector('[data-testid=policies] tr[data-policy="Crisis team"]');
    assert.match(
      await boss.locator('[data-testid=policies] tr[data-policy="Crisis team"]').textContent(),
      /Crisis on call/,
    );
    await shootBoth(boss, '33-admin-policies');

    await boss.click('a[href="#/admin/schedules"]');
    await boss.click('[data-testid=schedules-admin] tr[data-schedule="Crisis on call"] button');
    const schedule = boss.locator('[data-testid=schedule-editor]');
    await schedule.locator('[data-testid=add-override]').click();
    await schedule.locator('[data-override="1"] select[name=override-person]').selectOption(String(ids.sup));
    await shootBoth(boss, '34-admin-schedule-editor');
    await schedule.locator('[data-testid=save-schedule]').click();
    await boss.waitForSelector('[data-testid=schedule-editor]', { state: 'detached' });
    // The override (from now, twelve hours) puts the supervisor on call instead of the lead.
    await boss.waitForSelector(
      '[data-testid=schedules-admin] tr[data-schedule="Crisis on call"] td:nth-child(4):has-text("sup")',
    );
    await shootBoth(boss, '35-admin-schedules');

    await boss.click('a[href="#/admin/addresses"]');
    await boss.click('[data-testid=addresses] tr[data-account=lead] button');
    const addresses = boss.locator('[data-testid=address-editor]');
    await addresses.locator('input[name=webhook]').fill('ftp://pager.example.org/lead');
    await addresses.locator('input[name=email]').fill('lead@example.org');
    await addresses.locator('[data-testid=save-addresses]').click();
    await addresses.locator('#webhook-error').waitFor();
    await shootBoth(boss, '36-admin-paging-addresses');
    await addresses.locator('input[name=webhook]').fill('https://sms.example.org/hook');
    await addresses.locator('[data-testid=save-addresses]').click();
    await boss.waitForSelector('[data-testid=address-editor]', { state: 'detached' });
    const admin = await session('boss');
    assert.deepEqual(await admin('GET', `/api/admin/paging-addresses/${ids.lead}`), {
      webhook: 'https://sms.example.org/hook',
      email: 'lead@example.org',
    });
  });

  step('the supervisor scores an audit of the crisis contact; the operator acknowledges it', async () => {
    await sup.evaluate(() => (location.hash = '#/quality/audits'));
    await sup.click('[data-testid=sample]');
    const row = sup.locator(`[data-testid=audits] tr[data-contact="${contactId}"]`);
    await row.waitFor();
    assert.equal(await row.getAttribute('data-status'), 'pending');
    await shootBoth(sup, '37-quality-audit-queue');
    await row.locator('a').click();
    const audit = sup.locator('[data-testid=audit]');
    await audit.waitFor();
    // Everything the supervisor reviews: transcript (the lead's line too), the note as amended, the events.
    await audit.locator('.transcript li:has-text("crisis team")').waitFor();
    await audit.locator('.audit-note:has-text("A-120-7")').waitFor();
    await audit.locator('[data-testid=audit-timeline] li[data-kind=connect]').waitFor();
    const card = audit.locator('[data-testid=scorecard]');
    const items = card.locator('[data-item]');
    const n = await items.count();
    assert.ok(n >= 5, 'the scorecard has items');
    for (let i = 0; i < n; i++) {
      const value = i === 1 ? '1' : i === n - 1 ? 'na' : '2';
      await items.nth(i).locator(`input[value="${value}"]`).check();
    }
    // Written feedback is required.
    await card.locator('[data-testid=save-score]').click();
    await card.locator('.problem').waitFor();
    await card
      .locator('textarea[name=feedback]')
      .fill(
        'Calm and warm; you flagged the crisis at once. Explain confidentiality earlier. 处理及时，请更早说明保密原则。',
      );
    await shootBoth(sup, '38-quality-scorecard');
    await card.locator('[data-testid=save-score]').click();
    await sup.waitForSelector('[data-testid=audit][data-status=scored]');
    assert.match(await audit.locator('[data-testid=audit-total]').textContent(), /%/);

    await op.evaluate(() => (location.hash = '#/mine/audits'));
    const mine = op.locator(`[data-testid=audits] tr[data-contact="${contactId}"]`);
    await mine.waitFor();
    await shootBoth(op, '39-operator-my-audits');
    await mine.locator('a').click();
    await op.waitForSelector('[data-testid=audit-feedback]:has-text("flagged the crisis")');
    await op.fill('[data-testid=acknowledge-audit] textarea', 'Thank you, I will. 谢谢，我会注意。');
    await shootBoth(op, '40-operator-audit-feedback');
    await op.click('[data-testid=acknowledge-audit] button[type=submit]');
    await op.waitForSelector('[data-testid=audit][data-status=acknowledged]');
    await sup.reload();
    await sup.waitForSelector(
      '[data-testid=audit][data-status=acknowledged] [data-testid=audit-acknowledged]:has-text("Thank you")',
    );
  });

  step('training records, the assessment cycle, trends and KPIs', async () => {
    await sup.evaluate(() => (location.hash = '#/quality/training'));
    await sup.click('[data-testid=new-session]');
    const form = sup.locator('[data-testid=session-form]');
    await form.locator('input[name=title]').fill('Risk assessment and referral 风险评估与转介');
    await form.locator('input[name=trainer]').fill('Dr. Wang');
    await form.locator('input[name=module][value=risk_assessment]').check();
    await form.locator('input[name=module][value=basic_knowledge]').check();
    await form.locator(`input[name=attendee][value="${ids.op}"]`).check();
    await form.locator(`input[name=attendee][value="${ids.lead}"]`).check();
    await form.locator('[data-testid=save-session]').click();
    const session = sup.locator('[data-testid=sessions] tr[data-session]').first();
    await session.waitFor();
    await session.locator(`li[data-account="${ids.op}"] button`).click();
    await sup.waitForSelector(`[data-testid=sessions] li[data-account="${ids.op}"]:not(:has(button))`);
    // With the module done, the crisis certification can be granted.
    await sup.click('#certs-title + button');
    const grant = sup.locator('form[aria-label]:has(input[list=cert-kinds])');
    await grant.locator('select').selectOption(String(ids.op));
    await grant.locator('input[type=checkbox]').check();
    await grant.locator('button[type=submit]').click();
    await sup.waitForSelector('[data-testid=certifications] tr[data-state=valid]');
    await sup.waitForSelector(`[data-testid=training-hours] tr[data-account="${ids.op}"]`);
    await shootBoth(sup, '41-quality-training');

    await sup.evaluate(() => (location.hash = '#/quality/assessment'));
    const row = sup.locator(`[data-testid=assessment-table] tr[data-operator="${ids.op}"]`);
    await row.waitFor();
    assert.ok((await row.locator('svg.spark, .spark-empty').count()) >= 4, 'figures over the cycles');
    const cycle = await sup.locator('select[name=cycle]').inputValue();
    const csv = await sup.evaluate((c) => fetch(`/api/assessments/${c}?format=csv`).then((r) => r.text()), cycle);
    assert.match(csv, /op/);
    const html = await sup.evaluate((c) => fetch(`/api/assessments/${c}/report.html`).then((r) => r.text()), cycle);
    assert.match(html, /<html/i);
    await row.locator('[data-testid=sign-off]').click();
    await sup.locator('[data-testid=sign-off-form] textarea').fill('Reviewed with the operator.');
    await shootBoth(sup, '42-quality-assessment');
    await sup.click('[data-testid=confirm-sign-off]');
    await row.locator('[data-testid=signed-off]').waitFor();

    await sup.evaluate(() => (location.hash = '#/quality/trends'));
    await sup.waitForSelector('[data-testid=trend-series] tr[data-dimension=total]');
    await shootBoth(sup, '43-quality-trends');
    await sup.evaluate(() => (location.hash = '#/quality/kpi'));
    await sup.waitForSelector('[data-testid=kpi-total]');
    const kpiCsv = await sup.evaluate(() =>
      fetch(document.querySelector('[data-testid=kpi-csv]').getAttribute('href')).then((r) => r.text()),
    );
    assert.ok(kpiCsv.split('\n').length >= 2, 'KPI CSV has a header and rows');
    await shootBoth(sup, '44-quality-kpi');

    await op.evaluate(() => (location.hash = '#/mine/training'));
    await op.waitForSelector('[data-testid=certifications] tr[data-state=valid]');
    await shootBoth(op, '45-operator-my-training');
  });

  step('a new account made by the admin must change its password first', async () => {
    const name = `new${Date.now() % 100000}`;
    await boss.click('a[href="#/admin/accounts"]');
    await boss.waitForSelector('[data-testid=accounts]');
    await boss.click('.section-head button');
    const form = boss.locator('form[aria-label]').first();
    await form.locator('input[type=text]').first().fill(name);
    await form.locator('input[type=password]').fill(PASSWORD);
    // Voice excludes chat by default; this person may take chats during a call.
    assert.equal(await form.locator('input[name=voice_excludes_chat]').isChecked(), true);
    await form.locator('input[name=voice_excludes_chat]').uncheck();
    await form.locator('button[type=submit]').click();
    const row = `[data-testid=accounts] tr[data-account="${name}"]`;
    await boss.waitForSelector(row);
    const flagOf = async () => {
      const accounts = await (await session('boss'))('GET', '/api/admin/accounts');
      return accounts.find((a) => a.name === name).voice_excludes_chat;
    };
    assert.equal(await flagOf(), false);
    assert.equal(await boss.locator(`${row} td:nth-child(5) .hint`).count(), 1, 'shown beside the capacities');
    await shootBoth(boss, '46-admin-voice-excludes-chat');
    // And back, in the account editor.
    await boss.click(`${row} .row-actions button:first-child`);
    const editor = boss.locator('[data-testid=edit-account]');
    assert.equal(await editor.locator('input[name=voice_excludes_chat]').isChecked(), false);
    await editor.locator('input[name=voice_excludes_chat]').check();
    await editor.locator('button[type=submit]').click();
    await boss.waitForSelector(`${row} td:nth-child(5):not(:has(.hint))`);
    assert.equal(await flagOf(), true);

    const fresh = await openPage(browser);
    await fresh.goto(`${BASE}/console/`);
    await fresh.fill('input[name=name]', name);
    await fresh.fill('input[name=password]', PASSWORD);
    await fresh.click('form button[type=submit]');
    await fresh.waitForSelector('[data-testid=password-form]');
    await shootBoth(fresh, '17-forced-password-change');
    await fresh.fill('input[name=current]', PASSWORD);
    await fresh.fill('input[name=new]', `${PASSWORD} renewed`);
    await fresh.fill('input[name=again]', `${PASSWORD} renewed`);
    await fresh.click('[data-testid=password-form] button[type=submit]');
    await fresh.waitForSelector('.statusbar');
    await fresh.context().close();
  });

  step('an offer that no longer rings leaves the desk and stops ringing', async () => {
    const relay = await relayStaff(op);
    await op.evaluate(() => (location.hash = '#/desk'));
    await op.reload();
    await op.waitForSelector('[data-link=open]');
    await op.click('[data-testid=set-available]');
    const callers = await openPage(browser);
    await callers.goto(`${BASE}/api/public/info`);
    const offer = op.locator('[data-testid=offer]');
    const deskLink = op.locator('nav.mainnav a[href="#/desk"]');

    // The caller leaves and the offer's withdrawal is lost on the way: Accept, answered that
    // the contact is not offered any more, takes the card away at once.
    relay.hidden.add('offer_withdrawn');
    let contact = await callerJoins(callers);
    await op.locator(`[data-testid=offer][data-contact="${contact}"]`).waitFor();
    await callerLeaves(callers, contact);
    await op.click('[data-testid=accept]');
    await offer.waitFor({ state: 'detached' });
    assert.match(await op.locator('.notices').innerText(), /不再提供给你|找不到这个接入/);
    assert.doesNotMatch(await deskLink.innerText(), /\(\d+\)/, 'not counted in the navigation');

    // Again, and nobody answers: the card goes once its time is up on the server's clock, which
    // the console reads from the Date of the server's answers (here, answers dated 30 s on).
    contact = await callerJoins(callers);
    await op.locator(`[data-testid=offer][data-contact="${contact}"]`).waitFor();
    await callerLeaves(callers, contact);
    const later = async (route) => {
      const response = await route.fetch();
      const date = new Date(Date.parse(response.headers().date) + 30_000).toUTCString();
      await route.fulfill({ response, headers: { ...response.headers(), date } });
    };
    await op.route('**/api/**', later);
    await op.evaluate(() => (location.hash = '#/mine/training'));
    await op.waitForSelector('.offer-banner', { state: 'detached' });
    assert.doesNotMatch(await deskLink.innerText(), /\(\d+\)/, 'not counted in the navigation');
    await op.unroute('**/api/**', later);
    await op.evaluate(() => (location.hash = '#/desk'));
    await op.waitForSelector('[data-testid=set-available]');
    assert.equal(await offer.count(), 0, 'no card on the desk');
    relay.hidden.clear();

    // The connection drops and the server sees it go (the offer is rescinded), and meanwhile the
    // caller leaves: back again, the console drops the card, since `hello` names nothing ringing.
    contact = await callerJoins(callers);
    await op.locator(`[data-testid=offer][data-contact="${contact}"]`).waitFor();
    let hellos = relay.hellos;
    relay.hold();
    await relay.cut({ serverNotices: true });
    await callerLeaves(callers, contact);
    relay.release();
    await until(() => relay.hellos > hellos, 'the console is back');
    await offer.waitFor({ state: 'detached', timeout: 2_000 });

    // The connection drops without the server seeing it (a network change): the offer still
    // rings for this person, so the console back again keeps the card, and Accept takes it.
    contact = await callerJoins(callers);
    await op.locator(`[data-testid=offer][data-contact="${contact}"]`).waitFor();
    hellos = relay.hellos;
    await relay.cut({ serverNotices: false });
    await until(() => relay.hellos > hellos, 'the console is back');
    await op.waitForTimeout(500);
    assert.equal(await offer.count(), 1, 'the card stays');
    await op.click('[data-testid=accept]');
    const chat = op.locator(`article.chat[data-contact="${contact}"]`);
    await chat.waitFor();
    // The caller leaves, and the console does not hear of the wrap-up: a line written now is
    // refused (nobody would read it), and marked not sent at once, saying why, in Chinese.
    relay.hidden.add('wrap_up');
    await callerLeaves(callers, contact);
    await chat.locator(`#reply-${contact}`).fill('Are you still there? 你还在吗？');
    await chat.locator(`#reply-${contact}`).press('Enter');
    const refused = chat.locator('li[data-status=failed]');
    await refused.waitFor({ timeout: 3_000 });
    assert.match(await refused.locator('[data-testid=not-sent-why]').innerText(), /对话已经结束.*\(ended\)/);
    await shootBoth(op, '48-operator-line-refused');
    relay.hidden.clear();
    await op.reload();
    await chat.locator('.wrapup button.primary').click();
    await chat.waitFor({ state: 'detached' });
    await op.locator(`[data-testid=notes-to-finish] article[data-contact="${contact}"] .section-head button`).click();
    await callers.context().close();
  });

  step('the crisis desk shows incidents as they are after missed changes and a lost connection', async () => {
    const relay = await relayStaff(lead);
    await lead.evaluate(() => (location.hash = '#/crisis'));
    await lead.reload();
    await lead.waitForSelector('[data-link=open]');
    // The supervisor flags the first contact again (a new incident pages every crisis lead),
    // then acknowledges and resolves it, over HTTP.
    const supervisor = await session('sup');
    const flag = async () =>
      (await supervisor('POST', `/api/contacts/${contactId}/crisis`, { reason: 'Called back, distressed.' })).incident;
    const settle = async (id) => {
      await supervisor('POST', `/api/incidents/${id}/acknowledge`);
      await supervisor('POST', `/api/incidents/${id}/resolve`, { resolution: 'Spoke with the caller; safe.' });
    };
    const paged = (id) => lead.locator(`[data-testid=page-banner] .page-item[data-incident="${id}"]`);
    const row = (id) => lead.locator(`[data-testid=incidents] tr[data-incident="${id}"]`);

    // Its changes never reach the lead's console: Acknowledge is refused (resolved), and the
    // console reads the incident again, so its page stops.
    relay.hidden.add('incident_changed');
    let id = await flag();
    await paged(id).waitFor();
    await settle(id);
    await paged(id).locator('[data-testid=page-acknowledge]').click();
    await paged(id).waitFor({ state: 'detached' });

    // Refresh replaces the open incidents with the server's: the resolved one leaves the list.
    id = await flag();
    await row(id).and(lead.locator('[data-state=triggered]')).waitFor();
    await settle(id);
    await lead.click('.crisis-desk .wall-head button');
    await row(id).waitFor({ state: 'detached' });
    assert.equal(await paged(id).count(), 0, 'its page stopped');

    // Resolved while the lead's console was away: back again, it shows it no more.
    id = await flag();
    await paged(id).waitFor();
    relay.hold();
    await relay.cut({ serverNotices: true });
    await settle(id);
    const hellos = relay.hellos;
    relay.release();
    await until(() => relay.hellos > hellos, 'the console is back');
    await row(id).waitFor({ state: 'detached' });
    await paged(id).waitFor({ state: 'detached' });
    relay.hidden.clear();
  });

  step("a new queue gets the server's closed message and numbers, in Chinese and English", async () => {
    await boss.evaluate(() => (location.hash = '#/admin/queues'));
    await boss.click('#queues-title + button');
    const editor = boss.locator('.queue-editor');
    await editor.locator('input[pattern]').fill('evening');
    await editor.locator('input[required]:not([pattern])').fill('Evening line 晚间热线');
    await shootBoth(boss, '47-admin-new-queue');
    await editor.locator('button[type=submit]').click();
    await boss.waitForSelector('[data-testid=queues] th:text-is("evening")');
    const info = await (await fetch(`${BASE}/api/public/info`)).json();
    const evening = info.queues.find((q) => q.id === 'evening');
    assert.match(evening.closed_message, /不在服务时间/);
    assert.match(evening.closed_message, /closed now/);
    const names = evening.alternatives.map((a) => a.name).join(' | ');
    assert.match(names, /心理援助热线/);
    assert.deepEqual(
      evening.alternatives.map((a) => a.number),
      ['12356', '110', '120'],
    );
  });
});
