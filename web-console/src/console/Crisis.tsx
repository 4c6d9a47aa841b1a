// The crisis desk (crisis leads, supervisors, admins): incidents by state, one incident's
// timeline, acknowledge, join the live contact (barge, monitor or whisper) and see its chat,
// record what was done (emergency services, help confirmed, referral, outcome), resolve (help
// must be confirmed once emergency services were called), and who is on call with the schedules.
import { useEffect, useState } from 'preact/hooks';
import type {
  CalendarFeed,
  EmergencyService,
  IncidentDetail,
  IncidentView,
  OnCallNow,
  PolicyRef,
  QueueDefinition,
  Schedule,
  ScheduleOnCall,
  StaffEvent,
  StepRequest,
  TimelineEntry,
} from '../proto/hotline';
import { ApiError, api } from '../shared/api';
import { errorText } from '../shared/errors';
import { dateTime, timeOfDay } from '../shared/format';
import { useLang } from '../shared/i18n';
import { ChatView, type Colleague } from './ChatView';
import type { StaffState, StaffStore } from './staff';
import type { Strings } from './strings';

const FILTERS = ['open', 'triggered', 'acknowledged', 'resolved', 'all'] as const;
type Filter = (typeof FILTERS)[number];
const SERVICES: EmergencyService[] = ['ambulance_120', 'police_110', 'fire_119', 'other'];
type StepKind = 'emergency_services_contacted' | 'help_confirmed' | 'referral_made' | 'outcome';
const STEP_KINDS: StepKind[] = ['emergency_services_contacted', 'help_confirmed', 'referral_made', 'outcome'];

function matches(i: IncidentView, f: Filter): boolean {
  if (f === 'all') return true;
  if (f === 'open') return i.state !== 'resolved';
  return i.state === f;
}

/** A message said in the language of the moment it is shown (the switch re-renders it). */
type Say = (t: Strings) => string;
const failure =
  (e: unknown): Say =>
  (tr) =>
    errorText(e, tr);

export function sourceText(i: IncidentView, t: Strings, nameOf: (id: number) => string): string {
  const s = i.source;
  return s.kind === 'routing'
    ? t.crisis.source.routing
    : s.kind === 'note'
      ? t.crisis.source.note(nameOf(s.operator))
      : t.crisis.source.operator(nameOf(s.operator));
}

export function IncidentState({ incident, t }: { incident: IncidentView; t: Strings }) {
  return (
    <span class={`incident-state incident-${incident.state}`} data-state={incident.state}>
      {t.crisis.states[incident.state]}
    </span>
  );
}

/** True when the last call to emergency services has no confirmation after it (the server's rule). */
function helpUnconfirmed(timeline: TimelineEntry[]): boolean {
  let waiting = false;
  for (const e of timeline) {
    if (e.kind === 'emergency_services_contacted') waiting = true;
    if (e.kind === 'help_confirmed') waiting = false;
  }
  return waiting;
}

export function CrisisDesk({
  store,
  state,
  t,
  selected,
  queues,
  colleagues,
  names,
}: {
  store: StaffStore;
  state: StaffState;
  t: Strings;
  selected: number | null;
  queues: QueueDefinition[];
  colleagues: Colleague[] | null;
  names: Map<number, string>;
}) {
  const lang = useLang();
  const [filter, setFilter] = useState<Filter>('open');
  const [problem, setProblem] = useState<Say | null>(null);
  const nameOf = (id: number) => names.get(id) ?? `#${id}`;

  // The open ones as the server has them replace this console's (a change missed while away
  // goes); the other filters add what they list.
  const load = () => {
    const closed =
      filter === 'resolved' || filter === 'all'
        ? api<IncidentView[]>('GET', `/api/incidents?state=${filter}`).then((list) => store.mergeIncidents(list))
        : Promise.resolve();
    Promise.all([store.reloadOpenIncidents(), closed]).then(
      () => setProblem(null),
      (e) => setProblem(() => failure(e)),
    );
  };
  useEffect(load, [filter]);
  // Whether a contact is live comes with the floor; the socket sends it only when it changes.
  useEffect(() => {
    api<StaffEvent>('GET', '/api/wallboard').then(
      (f) => store.setFloor(f),
      () => undefined,
    );
  }, []);

  const incidents = Object.values(state.incidents)
    .filter((i) => matches(i, filter))
    .sort((a, b) => b.id - a.id);

  return (
    <div class="crisis-desk">
      <div class="crisis-main">
        <div class="wall-head">
          <h2>{t.crisis.title}</h2>
          <button type="button" onClick={load}>
            {t.refresh}
          </button>
        </div>
        <nav class="subnav" aria-label={t.crisis.filterLabel}>
          {FILTERS.map((f) => (
            <a
              key={f}
              href={`#/crisis${selected ? `/${selected}` : ''}`}
              aria-current={filter === f ? 'page' : undefined}
              data-filter={f}
              onClick={(e) => {
                e.preventDefault();
                setFilter(f);
              }}
            >
              {t.crisis.filters[f]}
            </a>
          ))}
        </nav>
        {problem && (
          <p class="problem" role="alert">
            {problem(t)}
          </p>
        )}
        {incidents.length === 0 ? (
          <p class="hint">{t.crisis.none}</p>
        ) : (
          <table class="grid" data-testid="incidents">
            <thead>
              <tr>
                <th scope="col">{t.crisis.columns.incident}</th>
                <th scope="col">{t.crisis.columns.state}</th>
                <th scope="col">{t.crisis.columns.contact}</th>
                <th scope="col">{t.crisis.columns.source}</th>
                <th scope="col">{t.crisis.columns.reason}</th>
                <th scope="col">{t.crisis.columns.since}</th>
              </tr>
            </thead>
            <tbody>
              {incidents.map((i) => (
                <tr
                  key={i.id}
                  data-incident={i.id}
                  data-state={i.state}
                  class={`${i.state === 'triggered' ? 'row-red' : ''} ${selected === i.id ? 'selected' : ''}`}
                >
                  <th scope="row">
                    <a href={`#/crisis/${i.id}`} aria-current={selected === i.id ? 'true' : undefined}>
                      {t.crisis.incident(i.id)}
                    </a>
                  </th>
                  <td>
                    <IncidentState incident={i} t={t} />
                  </td>
                  <td>{t.contact(i.contact)}</td>
                  <td>{sourceText(i, t, nameOf)}</td>
                  <td>{i.reason ?? '—'}</td>
                  <td>{dateTime(i.created_at, lang)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
        {selected === null ? (
          <p class="hint">{t.crisis.pick}</p>
        ) : (
          <IncidentPanel
            key={selected}
            id={selected}
            store={store}
            state={state}
            t={t}
            queues={queues}
            colleagues={colleagues}
            names={names}
          />
        )}
      </div>
      <aside class="crisis-side">
        <OnCall t={t} />
        <Schedules t={t} />
      </aside>
    </div>
  );
}

function IncidentPanel({
  id,
  store,
  state,
  t,
  queues,
  colleagues,
  names,
}: {
  id: number;
  store: StaffStore;
  state: StaffState;
  t: Strings;
  queues: QueueDefinition[];
  colleagues: Colleague[] | null;
  names: Map<number, string>;
}) {
  const lang = useLang();
  const [detail, setDetail] = useState<IncidentDetail | null>(null);
  const [feedback, setFeedback] = useState<{ kind: 'ok' | 'error'; text: Say } | null>(null);
  const nameOf = (who: number) => names.get(who) ?? `#${who}`;
  const known = state.incidents[id];
  const changes = state.incidentChanges[id] ?? 0;

  const load = () =>
    api<IncidentDetail>('GET', `/api/incidents/${id}`).then(
      (d) => {
        setDetail(d);
        store.mergeIncidents([d.incident]);
      },
      (e) => setFeedback({ kind: 'error', text: failure(e) }),
    );
  // Every change announced for this incident (steps and joins included) reloads its timeline.
  const chat = detail ? state.chats.find((c) => c.id === detail.incident.contact) : undefined;
  useEffect(() => {
    void load();
  }, [id, changes]);

  if (!detail) {
    return (
      <section class="panel" aria-busy="true">
        <p role="status">{feedback?.text(t) ?? t.loading}</p>
      </section>
    );
  }
  const incident = known ?? detail.incident;
  const floorContact = state.floor?.contacts.find((c) => c.id === incident.contact);
  const live = floorContact?.state === 'assigned';
  const open = incident.state !== 'resolved';

  const join = (mode: 'barge' | 'monitor' | 'whisper') => {
    store.join(incident.contact, mode);
  };

  return (
    <section
      class="panel incident"
      aria-labelledby={`incident-${id}-title`}
      data-testid="incident"
      data-incident={id}
      data-state={incident.state}
    >
      <header class="incident-head">
        <h3 id={`incident-${id}-title`}>
          {t.crisis.incident(id)} · {t.contact(incident.contact)}
        </h3>
        <IncidentState incident={incident} t={t} />
      </header>
      <dl class="facts">
        <dt>{t.crisis.columns.source}</dt>
        <dd>{sourceText(incident, t, nameOf)}</dd>
        {incident.reason && (
          <>
            <dt>{t.crisis.columns.reason}</dt>
            <dd>{incident.reason}</dd>
          </>
        )}
        <dt>{t.crisis.columns.since}</dt>
        <dd>{dateTime(incident.created_at, lang)}</dd>
        <dt>{t.crisis.policyLabel}</dt>
        <dd>
          {policyName(incident.policy, t)} · {t.crisis.level(incident.level, incident.cycle)}
        </dd>
      </dl>
      <div class="chat-actions" aria-live="polite">
        {incident.state === 'triggered' && (
          <button
            type="button"
            class="primary"
            data-testid="acknowledge"
            onClick={() =>
              store.acknowledge(id).then(
                () => setFeedback({ kind: 'ok', text: (tr) => tr.crisis.ackDone }),
                (e) => setFeedback({ kind: 'error', text: failure(e) }),
              )
            }
          >
            {t.crisis.acknowledge}
          </button>
        )}
        {open && !chat && live && (
          <>
            <button type="button" class="primary" data-testid="join-barge" onClick={() => join('barge')}>
              {t.crisis.joinBarge}
            </button>
            <button type="button" data-testid="join-monitor" onClick={() => join('monitor')}>
              {t.crisis.joinMonitor}
            </button>
            <button type="button" onClick={() => join('whisper')}>
              {t.crisis.joinWhisper}
            </button>
          </>
        )}
        {open && !chat && !live && <p class="hint">{t.crisis.notLive}</p>}
      </div>
      {feedback && (
        <p
          class={`feedback ${feedback.kind === 'ok' ? 'ok' : 'problem'}`}
          role={feedback.kind === 'ok' ? 'status' : 'alert'}
        >
          {feedback.text(t)}
        </p>
      )}

      {chat && (
        <section class="joined incident-chat" aria-label={t.crisis.contactTitle(chat.id)}>
          <ChatView chat={chat} store={store} t={t} queues={queues} colleagues={colleagues} names={names} />
        </section>
      )}

      <div class="incident-work">
        {open && (
          <div class="incident-forms">
            <StepForm id={id} t={t} onRecorded={(d) => setDetail(d)} />
            <ResolveForm
              id={id}
              t={t}
              unconfirmed={helpUnconfirmed(detail.timeline)}
              onResolved={(i) => {
                store.mergeIncidents([i]);
                void load();
              }}
            />
          </div>
        )}
        <section class="timeline" aria-labelledby={`timeline-${id}`}>
          <h4 id={`timeline-${id}`}>{t.crisis.timeline}</h4>
          <ol data-testid="timeline">
            {detail.timeline.map((e) => (
              <li key={e.id} data-kind={e.kind}>
                <time class="meta">{timeOfDay(e.at, lang)}</time> {timelineText(e, t, nameOf)}
              </li>
            ))}
          </ol>
        </section>
      </div>
    </section>
  );
}

export function timelineText(e: TimelineEntry, t: Strings, nameOf: (id: number) => string): string {
  const actor = e.actor != null ? nameOf(e.actor) : t.crisis.system;
  const tl = t.tl;
  switch (e.kind) {
    case 'triggered':
    case 'flagged': {
      const who =
        e.source.kind === 'routing'
          ? t.crisis.source.routing
          : e.source.kind === 'note'
            ? t.crisis.source.note(nameOf(e.source.operator))
            : nameOf(e.source.operator);
      const text = e.kind === 'triggered' ? tl.triggered(who) : tl.flagged(who);
      return e.reason ? `${text} · ${tl.reason(e.reason)}` : text;
    }
    case 'fallback_policy':
      return tl.fallback;
    case 'escalated':
      return tl.escalated(e.level, e.cycle, e.targets.map(nameOf).join('、') || t.crisis.nobody, tl.causes[e.cause]);
    case 'nobody_to_page':
      return tl.nobodyToPage(e.level, e.detail);
    case 'policy_exhausted':
      return tl.exhausted(e.cycles);
    case 'paged':
      return tl.paged(
        e.target != null ? nameOf(e.target) : 'webhook',
        tl.channels[e.channel],
        tl.outcomes[e.outcome],
        e.attempt,
      );
    case 'acknowledged':
      return tl.acknowledged(nameOf(e.by));
    case 'retriggered':
      return tl.retriggered(Math.round(e.ack_timeout_ms / 60_000));
    case 'overdue_timer_fired':
      return tl.overdue(Math.round(e.overdue_ms / 1000));
    case 'joined_contact':
      return tl.joined(nameOf(e.who));
    case 'emergency_services_contacted': {
      const service = e.service === 'other' && e.detail ? e.detail : t.crisis.services[e.service];
      return (
        [
          tl.emergency(service),
          e.reference ? tl.reference(e.reference) : null,
          e.service !== 'other' && e.detail ? e.detail : null,
        ]
          .filter(Boolean)
          .join(' · ') + ` (${actor})`
      );
    }
    case 'help_confirmed':
      return `${tl.helpConfirmed(e.how)} (${actor})`;
    case 'referral_made':
      return `${tl.referral(e.service)}${e.reference ? ` · ${tl.reference(e.reference)}` : ''} (${actor})`;
    case 'outcome':
      return `${tl.outcome(e.text)} (${actor})`;
    case 'resolved':
      return [
        tl.resolved(nameOf(e.by), e.resolution),
        e.unconfirmed_reason ? tl.unconfirmed(e.unconfirmed_reason) : null,
      ]
        .filter(Boolean)
        .join(' · ');
  }
}

function StepForm({ id, t, onRecorded }: { id: number; t: Strings; onRecorded: (d: IncidentDetail) => void }) {
  const [kind, setKind] = useState<StepKind>('emergency_services_contacted');
  const [service, setService] = useState<EmergencyService>('ambulance_120');
  const [text, setText] = useState('');
  const [reference, setReference] = useState('');
  const [detail, setDetail] = useState('');
  const [feedback, setFeedback] = useState<{ kind: 'ok' | 'error'; text: Say } | null>(null);

  const body = (): StepRequest => {
    const ref = reference.trim() || null;
    switch (kind) {
      case 'emergency_services_contacted':
        return { kind, service, reference: ref, detail: detail.trim() || null };
      case 'help_confirmed':
        return { kind, how: text.trim() };
      case 'referral_made':
        return { kind, service: text.trim(), reference: ref };
      case 'outcome':
        return { kind, text: text.trim() };
    }
  };

  return (
    <form
      class="step-form"
      aria-labelledby={`step-${id}`}
      data-testid="step-form"
      onSubmit={(e) => {
        e.preventDefault();
        api<IncidentDetail>('POST', `/api/incidents/${id}/steps`, body()).then(
          (d) => {
            setText('');
            setReference('');
            setDetail('');
            setFeedback({ kind: 'ok', text: (tr) => tr.crisis.recorded });
            onRecorded(d);
          },
          (err) => setFeedback({ kind: 'error', text: failure(err) }),
        );
      }}
    >
      <h4 id={`step-${id}`}>{t.crisis.recordStep}</h4>
      <fieldset>
        <legend>{t.crisis.stepKind}</legend>
        <div class="chips">
          {STEP_KINDS.map((k) => (
            <label key={k} class="chip">
              <input
                type="radio"
                name={`step-kind-${id}`}
                value={k}
                checked={kind === k}
                onChange={() => {
                  setKind(k);
                  setFeedback(null);
                }}
              />
              <span>{t.crisis.stepKinds[k]}</span>
            </label>
          ))}
        </div>
      </fieldset>
      {kind === 'emergency_services_contacted' && (
        <>
          <label class="field">
            <span>{t.crisis.service}</span>
            <select
              name="service"
              value={service}
              onChange={(e) => setService(e.currentTarget.value as EmergencyService)}
            >
              {SERVICES.map((s) => (
                <option key={s} value={s}>
                  {t.crisis.services[s]}
                </option>
              ))}
            </select>
          </label>
          <label class="field">
            <span>{t.crisis.reference}</span>
            <input
              type="text"
              name="reference"
              maxLength={200}
              value={reference}
              onInput={(e) => setReference(e.currentTarget.value)}
            />
          </label>
          <label class="field">
            <span>{t.crisis.serviceDetail}</span>
            <input
              type="text"
              name="detail"
              maxLength={200}
              required={service === 'other'}
              value={detail}
              onInput={(e) => setDetail(e.currentTarget.value)}
            />
          </label>
        </>
      )}
      {kind !== 'emergency_services_contacted' && (
        <label class="field">
          <span>
            {kind === 'help_confirmed'
              ? t.crisis.how
              : kind === 'referral_made'
                ? t.crisis.referralService
                : t.crisis.outcome}
          </span>
          {kind === 'referral_made' ? (
            <input
              type="text"
              name="text"
              required
              maxLength={200}
              value={text}
              onInput={(e) => setText(e.currentTarget.value)}
            />
          ) : (
            <textarea
              name="text"
              rows={2}
              required
              maxLength={2000}
              value={text}
              onInput={(e) => setText(e.currentTarget.value)}
            />
          )}
        </label>
      )}
      {kind === 'referral_made' && (
        <label class="field">
          <span>{t.crisis.reference}</span>
          <input
            type="text"
            name="reference"
            maxLength={200}
            value={reference}
            onInput={(e) => setReference(e.currentTarget.value)}
          />
        </label>
      )}
      <div class="form-actions">
        <button type="submit" class="primary" data-testid="record-step">
          {t.crisis.record}
        </button>
      </div>
      {feedback && (
        <p
          class={`feedback ${feedback.kind === 'ok' ? 'ok' : 'problem'}`}
          role={feedback.kind === 'ok' ? 'status' : 'alert'}
        >
          {feedback.text(t)}
        </p>
      )}
    </form>
  );
}

function ResolveForm({
  id,
  t,
  unconfirmed,
  onResolved,
}: {
  id: number;
  t: Strings;
  unconfirmed: boolean;
  onResolved: (i: IncidentView) => void;
}) {
  const [resolution, setResolution] = useState('');
  const [reason, setReason] = useState('');
  const [problem, setProblem] = useState<Say | null>(null);
  return (
    <form
      class="resolve-form"
      aria-labelledby={`resolve-${id}`}
      data-testid="resolve-form"
      onSubmit={(e) => {
        e.preventDefault();
        setProblem(null);
        api<IncidentView>('POST', `/api/incidents/${id}/resolve`, {
          resolution: resolution.trim(),
          unconfirmed_reason: reason.trim() || null,
        }).then(onResolved, (err) => {
          // 422 when help was not confirmed: say why in the console's words, then the server's.
          const help = err instanceof ApiError && err.status === 422 && /help_confirmed/.test(err.message);
          setProblem(() => (help ? (tr: Strings) => `${tr.crisis.refusedHelp} (${err.message})` : failure(err)));
        });
      }}
    >
      <h4 id={`resolve-${id}`}>{t.crisis.resolve}</h4>
      <p class="hint rule">{t.crisis.helpRule}</p>
      {unconfirmed && (
        <p class="warn-note" data-testid="help-unconfirmed">
          {t.crisis.helpUnconfirmed}
        </p>
      )}
      <label class="field">
        <span>{t.crisis.resolution}</span>
        <textarea
          name="resolution"
          rows={2}
          required
          maxLength={2000}
          value={resolution}
          onInput={(e) => setResolution(e.currentTarget.value)}
        />
      </label>
      {unconfirmed && (
        <label class="field">
          <span>{t.crisis.unconfirmedReason}</span>
          <textarea
            name="unconfirmed"
            rows={2}
            maxLength={2000}
            value={reason}
            onInput={(e) => setReason(e.currentTarget.value)}
          />
        </label>
      )}
      {problem && (
        <p class="problem" role="alert" data-testid="resolve-problem">
          {problem(t)}
        </p>
      )}
      <div class="form-actions">
        <button type="submit" class="primary" data-testid="resolve">
          {t.crisis.resolve}
        </button>
      </div>
    </form>
  );
}

function OnCall({ t }: { t: Strings }) {
  const [now, setNow] = useState<OnCallNow | null>(null);
  const [problem, setProblem] = useState<Say | null>(null);
  useEffect(() => {
    api<OnCallNow>('GET', '/api/oncall').then(setNow, (e) => setProblem(() => failure(e)));
  }, []);
  return (
    <section class="panel oncall" aria-labelledby="oncall-title" data-testid="oncall">
      <h3 id="oncall-title">{t.crisis.onCall}</h3>
      {problem && <p class="problem">{problem(t)}</p>}
      {now && (
        <>
          {now.people.length === 0 ? (
            <p class="problem">{t.crisis.nobodyOnCall}</p>
          ) : (
            <ul class="people">
              {now.people.map((p) => (
                <li key={p.id} data-person={p.id}>
                  {p.name}
                </li>
              ))}
            </ul>
          )}
          <p class="hint">{t.crisis.policy(policyName(now.policy, t))}</p>
          {now.problems.map((p) => (
            <p key={p} class="warn-note">
              {p}
            </p>
          ))}
        </>
      )}
    </section>
  );
}

/** A policy's name; the built-in fallback (no id) in the console's language. */
function policyName(policy: PolicyRef, t: Strings): string {
  return policy.id == null ? t.crisis.fallbackPolicy : policy.name;
}

function Schedules({ t }: { t: Strings }) {
  const [schedules, setSchedules] = useState<Schedule[] | null>(null);
  const [problem, setProblem] = useState<Say | null>(null);
  // A calendar app sends no cookie: it reads the schedules through a secret address, shown once.
  const [feed, setFeed] = useState<string | null>(null);
  useEffect(() => {
    api<Schedule[]>('GET', '/api/admin/schedules').then(setSchedules, (e) => setProblem(() => failure(e)));
  }, []);
  const newFeed = () =>
    api<CalendarFeed>('POST', '/api/me/calendar-feed').then(
      (f) => setFeed(f.token),
      (e) => setProblem(() => failure(e)),
    );
  const stopFeed = () =>
    api('DELETE', '/api/me/calendar-feed').then(
      () => setFeed(null),
      (e) => setProblem(() => failure(e)),
    );
  return (
    <section class="panel schedules" aria-labelledby="schedules-title" data-testid="schedules">
      <h3 id="schedules-title">{t.crisis.schedules}</h3>
      {problem && <p class="problem">{problem(t)}</p>}
      {schedules?.length === 0 && <p class="hint">{t.crisis.noSchedules}</p>}
      {schedules?.map((s) => (
        <ScheduleShifts key={s.id} schedule={s} t={t} feed={feed} />
      ))}
      {!!schedules?.length && (
        <p class="feed">
          <button type="button" onClick={newFeed} data-testid="calendar-feed-new">
            {feed ? t.crisis.feedRenew : t.crisis.feedNew}
          </button>
          <button type="button" onClick={stopFeed}>
            {t.crisis.feedStop}
          </button>
          <span class="hint">{t.crisis.feedHint}</span>
        </p>
      )}
    </section>
  );
}

/** The next shifts of a schedule, from the server's own answer (who is on call at a time, until when). */
function ScheduleShifts({ schedule, t, feed }: { schedule: Schedule; t: Strings; feed: string | null }) {
  const lang = useLang();
  const [shifts, setShifts] = useState<ScheduleOnCall[] | null>(null);
  useEffect(() => {
    let cancelled = false;
    (async () => {
      const out: ScheduleOnCall[] = [];
      let at = Date.now();
      for (let i = 0; i < 6; i++) {
        const s = await api<ScheduleOnCall>('GET', `/api/schedules/${schedule.id}/oncall?at=${at}`);
        out.push(s);
        if (!s.until || s.until <= at) break;
        at = s.until;
      }
      if (!cancelled) setShifts(out);
    })().catch(() => setShifts([]));
    return () => {
      cancelled = true;
    };
  }, [schedule.id, schedule.updated_at]);
  return (
    <article class="schedule" data-schedule={schedule.id}>
      <h4>{schedule.name}</h4>
      <p class="hint">
        {t.crisis.timeZone}: {schedule.time_zone ?? 'Asia/Shanghai'}
      </p>
      {shifts && (
        <>
          <h5>{t.crisis.upcoming}</h5>
          <ol class="shifts">
            {shifts.map((s, i) => (
              <li key={s.at} class={i === 0 ? 'now' : ''}>
                <strong>{s.person?.name ?? t.crisis.nobody}</strong>
                {s.source?.type === 'override' ? ` (${t.crisis.override})` : ''}{' '}
                <span class="meta">
                  {t.crisis.shift(dateTime(s.at, lang), s.until ? dateTime(s.until, lang) : '…')}
                </span>
              </li>
            ))}
          </ol>
        </>
      )}
      <a href={`/api/schedules/${schedule.id}/calendar.ics?weeks=4`} download={`oncall-${schedule.id}.ics`}>
        {t.crisis.exportIcs}
      </a>
      {feed && (
        <label class="feed-address">
          {t.crisis.feedAddress}
          <input
            readOnly
            data-testid="calendar-feed"
            value={`${location.origin}/api/calendar-feeds/${feed}/schedules/${schedule.id}/calendar.ics?weeks=8`}
            onFocus={(e) => e.currentTarget.select()}
          />
        </label>
      )}
    </article>
  );
}
