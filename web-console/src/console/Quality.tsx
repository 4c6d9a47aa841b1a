// Quality, training and assessment (loaded on first use). Supervisors and admins: the audit queue
// and scorecard (with the transcript, the notes as amended and the contact's events), training
// records (sessions, modules, hours, certifications with expiry), the assessment-cycle report with
// small inline plots of each operator's figures over the last cycles (sign-off, CSV, printable
// page), the contact trends (week-over-week rises flagged) and the KPI report (CSV). Operators and
// crisis leads: their own scored audits (acknowledge) and their own training.
import { Fragment } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import type {
  AuditDetail,
  AuditStatus,
  AuditView,
  Certification,
  CycleAssessment,
  FieldError,
  KpiReport,
  Kpis,
  Label,
  Me,
  NoteForm,
  OperatorAssessment,
  Outcome,
  QueueDefinition,
  SampleResult,
  Scorecard,
  StaffLine,
  AccessRecord,
  TrainingHours,
  TrainingModule,
  TrainingSession,
  TrendReport,
  TrendSeries,
} from '../proto/hotline';
import { ApiError, api } from '../shared/api';
import { errorText } from '../shared/errors';
import { clock, dateTime, localDate, timeOfDay } from '../shared/format';
import { useLang, useStrings, type Lang } from '../shared/i18n';
import { label } from './NotePanel';
import { qualityStrings, type QStrings } from './qualityStrings';
import type { Strings } from './strings';

type Names = Map<number, string>;
const MANAGER_TABS = ['audits', 'training', 'assessment', 'trends', 'kpi', 'access'] as const;
const MINE_TABS = ['audits', 'training'] as const;
const STATUSES: AuditStatus[] = ['pending', 'scored', 'acknowledged'];
const OUTCOMES: Outcome[] = ['meets', 'needs_improvement', 'not_eligible'];
const SCORES = [0, 1, 2] as const;

const pct = (r: number | null | undefined) => (r == null ? '—' : `${Math.round(r * 100)}%`);
const pct100 = (p: number | null | undefined) => (p == null ? '—' : `${Math.round(p)}%`);
const secs = (s: number | null | undefined) => (s == null ? '—' : clock(s * 1000));
const today = () => localDate();

/** A message said in the language of the moment it is shown (the language switch re-renders it). */
type Fb = { kind: 'ok' | 'error'; text: (q: QStrings) => string } | null;
const failed =
  (e: unknown) =>
  (q: QStrings): string =>
    errorText(e, q);

function Feedback({ fb }: { fb: Fb }) {
  const q = useStrings(qualityStrings);
  if (!fb) return <p class="feedback" role="status" />;
  return (
    <p class={`feedback ${fb.kind === 'ok' ? 'ok' : 'problem'}`} role={fb.kind === 'ok' ? 'status' : 'alert'}>
      {fb.text(q)}
    </p>
  );
}

/** A small line plot of a figure over time; missing values leave gaps. Labelled for screen readers. */
export function Spark({
  values,
  labels,
  title,
  width = 96,
  height = 26,
  highlightLast = false,
  dots = true,
}: {
  values: (number | null | undefined)[];
  labels: string[];
  title: string;
  width?: number;
  height?: number;
  highlightLast?: boolean;
  /** A dot on every value (few values), or only on the last one (daily series). */
  dots?: boolean;
}) {
  const nums = values.filter((v): v is number => v != null);
  const described = `${title}: ${values.map((v, i) => `${labels[i]} ${v == null ? '—' : Number(v.toFixed(1))}`).join(', ')}`;
  if (nums.length === 0) {
    return (
      <span class="spark-empty" aria-label={described}>
        —
      </span>
    );
  }
  const min = Math.min(...nums);
  const max = Math.max(...nums);
  const pad = 3;
  const x = (i: number) => (values.length === 1 ? width / 2 : pad + (i * (width - 2 * pad)) / (values.length - 1));
  const y = (v: number) => (max === min ? height / 2 : height - pad - ((v - min) * (height - 2 * pad)) / (max - min));
  const segments: string[][] = [[]];
  values.forEach((v, i) => {
    if (v == null) segments.push([]);
    else segments[segments.length - 1].push(`${x(i).toFixed(1)},${y(v).toFixed(1)}`);
  });
  const lastIndex = values.map((v) => v != null).lastIndexOf(true);
  return (
    <svg
      class="spark"
      width={width}
      height={height}
      viewBox={`0 0 ${width} ${height}`}
      role="img"
      aria-label={described}
    >
      <title>{described}</title>
      {segments
        .filter((s) => s.length > 1)
        .map((s, i) => (
          <polyline key={i} points={s.join(' ')} fill="none" stroke="currentColor" stroke-width="1.5" />
        ))}
      {values.map((v, i) =>
        v == null || (!dots && i !== lastIndex) ? null : (
          <circle
            key={i}
            cx={x(i)}
            cy={y(v)}
            r={i === lastIndex ? 2.6 : 1.4}
            class={i === lastIndex && highlightLast ? 'last' : ''}
          />
        ),
      )}
    </svg>
  );
}

export function Quality({
  t,
  me,
  mine,
  section,
  rest,
  names,
  queues,
}: {
  t: Strings;
  me: Me;
  mine: boolean;
  section: string;
  rest: string[];
  names: Names;
  queues: QueueDefinition[];
}) {
  const q = useStrings(qualityStrings);
  const tabs: readonly string[] = mine ? MINE_TABS : MANAGER_TABS;
  const current = tabs.includes(section) ? section : tabs[0];
  const base = mine ? '#/mine' : '#/quality';
  const id = /^\d+$/.test(rest[0] ?? '') ? Number(rest[0]) : null;
  return (
    <div class="quality">
      <h2>{mine ? q.mineTitle : q.title}</h2>
      <nav class="subnav" aria-label={mine ? q.mineTitle : q.title}>
        {tabs.map((tab) => (
          <a key={tab} href={`${base}/${tab}`} aria-current={current === tab ? 'page' : undefined}>
            {mine ? q.mineTabs[tab] : q.tabs[tab]}
          </a>
        ))}
      </nav>
      {current === 'audits' &&
        (id !== null ? (
          <AuditPage key={id} id={id} q={q} t={t} me={me} manager={!mine} names={names} base={base} />
        ) : mine ? (
          <MyAudits q={q} names={names} />
        ) : (
          <AuditQueue q={q} names={names} />
        ))}
      {current === 'training' && <Training q={q} me={me} manager={!mine} names={names} />}
      {current === 'assessment' && <Assessment q={q} me={me} names={names} />}
      {current === 'trends' && <Trends q={q} t={t} queues={queues} />}
      {current === 'kpi' && <KpiPage q={q} t={t} queues={queues} names={names} />}
      {current === 'access' && <AccessLog q={q} names={names} />}
    </div>
  );
}

// ---------- audits ----------

function scoreText(v: AuditView): string {
  return v.summary ? pct100(v.summary.percent ?? null) : '—';
}

function AuditQueue({ q, names }: { q: QStrings; names: Names }) {
  const lang = useLang();
  const [status, setStatus] = useState<AuditStatus | ''>('pending');
  const [audits, setAudits] = useState<AuditView[] | null>(null);
  const [fb, setFb] = useState<Fb>(null);
  const load = () =>
    api<AuditView[]>('GET', `/api/audits${status ? `?status=${status}` : ''}`).then(setAudits, (e) =>
      setFb({ kind: 'error', text: failed(e) }),
    );
  useEffect(() => {
    void load();
  }, [status]);
  return (
    <section aria-labelledby="audit-queue-title">
      <div class="section-head">
        <h3 id="audit-queue-title">{q.queue}</h3>
        <label>
          {q.status}{' '}
          <select name="status" value={status} onChange={(e) => setStatus(e.currentTarget.value as AuditStatus | '')}>
            <option value="">{q.all}</option>
            {STATUSES.map((s) => (
              <option key={s} value={s}>
                {q.statuses[s]}
              </option>
            ))}
          </select>
        </label>
        <button
          type="button"
          data-testid="sample"
          onClick={() =>
            api<SampleResult>('POST', '/api/audits/sample', {}).then(
              (r) => {
                setFb({ kind: 'ok', text: (l) => l.sampled(r.new, r.cycle) });
                void load();
              },
              (e) => setFb({ kind: 'error', text: failed(e) }),
            )
          }
        >
          {q.sample}
        </button>
      </div>
      <Feedback fb={fb} />
      {audits === null ? (
        <p role="status">{q.loading}</p>
      ) : audits.length === 0 ? (
        <p class="hint">{q.noAudits}</p>
      ) : (
        <AuditTable audits={audits} q={q} names={names} lang={lang} base="#/quality/audits" />
      )}
    </section>
  );
}

function AuditTable({
  audits,
  q,
  names,
  lang,
  base,
}: {
  audits: AuditView[];
  q: QStrings;
  names: Names;
  lang: Lang;
  base: string;
}) {
  return (
    <table class="grid" data-testid="audits">
      <thead>
        <tr>
          <th scope="col">#</th>
          <th scope="col">{q.contactCol}</th>
          <th scope="col">{q.operator}</th>
          <th scope="col">{q.cycle}</th>
          <th scope="col">{q.reason}</th>
          <th scope="col">{q.status}</th>
          <th scope="col">{q.score}</th>
          <th scope="col">{q.created}</th>
        </tr>
      </thead>
      <tbody>
        {audits.map(({ audit: a, ...v }) => (
          <tr key={a.id} data-audit={a.id} data-contact={a.contact} data-status={a.status}>
            <th scope="row">
              <a href={`${base}/${a.id}`}>{q.audit(a.id)}</a>
            </th>
            <td>{q.contact(a.contact)}</td>
            <td>{names.get(a.operator) ?? `#${a.operator}`}</td>
            <td>{a.cycle}</td>
            <td>{q.reasons[a.reason]}</td>
            <td>
              <span class={`audit-status audit-${a.status}`}>{q.statuses[a.status]}</span>
            </td>
            <td>{scoreText({ audit: a, ...v })}</td>
            <td>{dateTime(a.created_at, lang)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function MyAudits({ q, names }: { q: QStrings; names: Names }) {
  const lang = useLang();
  const [audits, setAudits] = useState<AuditView[] | null>(null);
  const [fb, setFb] = useState<Fb>(null);
  useEffect(() => {
    api<AuditView[]>('GET', '/api/audits').then(setAudits, (e) => setFb({ kind: 'error', text: failed(e) }));
  }, []);
  return (
    <section aria-labelledby="my-audits-title">
      <h3 id="my-audits-title">{q.mineTabs.audits}</h3>
      <p class="hint">{q.myAuditsHint}</p>
      <Feedback fb={fb} />
      {audits === null ? (
        <p role="status">{q.loading}</p>
      ) : audits.length === 0 ? (
        <p class="hint">{q.noMyAudits}</p>
      ) : (
        <AuditTable audits={audits} q={q} names={names} lang={lang} base="#/mine/audits" />
      )}
    </section>
  );
}

let formRequest: Promise<NoteForm> | null = null;
function noteForm(): Promise<NoteForm> {
  formRequest ??= api<NoteForm>('GET', '/api/notes/form').catch((e) => {
    formRequest = null;
    throw e;
  });
  return formRequest;
}

function AuditPage({
  id,
  q,
  t,
  me,
  manager,
  names,
  base,
}: {
  id: number;
  q: QStrings;
  t: Strings;
  me: Me;
  manager: boolean;
  names: Names;
  base: string;
}) {
  const lang = useLang();
  const [detail, setDetail] = useState<AuditDetail | null>(null);
  const [card, setCard] = useState<Scorecard | null>(null);
  const [form, setForm] = useState<NoteForm | null>(null);
  const [fb, setFb] = useState<Fb>(null);
  const load = () =>
    api<AuditDetail>('GET', `/api/audits/${id}`).then(setDetail, (e) => setFb({ kind: 'error', text: failed(e) }));
  useEffect(() => {
    void load();
    api<Scorecard>('GET', '/api/audits/scorecard').then(setCard, () => undefined);
    noteForm().then(setForm, () => undefined);
  }, [id]);
  if (!detail) return <p role="status">{fb?.text(q) ?? q.loading}</p>;
  const a = detail.audit;
  const nameOf = (who: number | null | undefined) => (who == null ? '—' : (names.get(who) ?? `#${who}`));
  // A scored audit is shown with the scorecard it was scored with.
  const stored = a.scorecard as unknown as Scorecard | undefined;
  const usedCard = stored?.sections ? stored : card;
  const editable = manager && a.status !== 'acknowledged' && a.operator !== me.id;

  return (
    <section class="audit-page" aria-labelledby="audit-title" data-testid="audit" data-status={a.status}>
      <p>
        <a href={base + '/audits'}>← {q.back}</a>
      </p>
      <header class="incident-head">
        <h3 id="audit-title">
          {q.audit(a.id)} · {q.contact(a.contact)}
        </h3>
        <span class={`audit-status audit-${a.status}`}>{q.statuses[a.status]}</span>
      </header>
      <dl class="facts">
        <dt>{q.operator}</dt>
        <dd>{nameOf(a.operator)}</dd>
        <dt>{q.cycle}</dt>
        <dd>{a.cycle}</dd>
        <dt>{q.reason}</dt>
        <dd>{q.reasons[a.reason]}</dd>
        {detail.summary && (
          <>
            <dt>{q.total}</dt>
            <dd data-testid="audit-total">
              {pct100(detail.summary.percent)} ({q.points(detail.summary.points, detail.summary.max_points)})
            </dd>
          </>
        )}
      </dl>
      <Feedback fb={fb} />
      <div class="audit-body">
        <div class="audit-record">
          <section aria-labelledby="audit-transcript">
            <h4 id="audit-transcript">{q.transcript}</h4>
            <Transcript lines={detail.transcript} t={t} names={names} lang={lang} />
          </section>
          <section aria-labelledby="audit-notes">
            <h4 id="audit-notes">{q.notes}</h4>
            {detail.notes.filter((n) => n.note.status === 'submitted').length === 0 ? (
              <p class="hint">{q.noNotes}</p>
            ) : (
              detail.notes
                .filter((n) => n.note.status === 'submitted')
                .map((n) => (
                  <article key={n.note.id} class="audit-note">
                    <p class="meta">
                      {nameOf(n.note.author)} · {dateTime(n.note.submitted_at ?? n.note.updated_at, lang)}
                    </p>
                    <dl class="note-view">
                      {inFormOrder(form, n.effective).map(([field, v]) => (
                        <div key={field}>
                          <dt>{fieldLabel(form, field, lang)}</dt>
                          <dd>{fieldValue(form, field, v, lang, t)}</dd>
                        </div>
                      ))}
                    </dl>
                    {n.note.amendments.map((am) => (
                      <p key={am.id} class="hint">
                        {q.amendedBy(nameOf(am.author), am.reason)} · {dateTime(am.at, lang)}
                      </p>
                    ))}
                  </article>
                ))
            )}
          </section>
          <section aria-labelledby="audit-events" class="timeline">
            <h4 id="audit-events">{q.timeline}</h4>
            <ol data-testid="audit-timeline">
              {detail.timeline.map((e) => (
                <li key={e.seq} data-kind={e.kind}>
                  <time class="meta">{timeOfDay(e.at, lang)}</time> {q.events[e.kind] ?? e.kind}
                  {e.operator != null ? ` · ${nameOf(e.operator)}` : ''}
                  {e.kind === 'risk_change' && typeof e.data.to === 'string'
                    ? ` → ${t.riskLevels[e.data.to as 'none'] ?? e.data.to}`
                    : ''}
                </li>
              ))}
            </ol>
          </section>
        </div>
        <div class="audit-score">
          {usedCard && (
            <ScoreForm
              key={`${a.id}-${a.status}-${a.scored_at ?? 0}`}
              detail={detail}
              card={usedCard}
              q={q}
              lang={lang}
              editable={editable}
              onScored={() => {
                setFb({ kind: 'ok', text: (l) => l.scored });
                void load();
              }}
            />
          )}
          {a.scored_at && <p class="hint">{q.scoredBy(nameOf(a.auditor), dateTime(a.scored_at, lang))}</p>}
          {a.acknowledged_at && (
            <div class="note" data-testid="audit-acknowledged">
              <p>{q.acknowledgedAt(dateTime(a.acknowledged_at, lang))}</p>
              {a.operator_comment && (
                <p>
                  {q.operatorComment}: {a.operator_comment}
                </p>
              )}
            </div>
          )}
          {a.operator === me.id && a.status === 'scored' && (
            <AcknowledgeForm
              id={a.id}
              q={q}
              onDone={() => {
                setFb({ kind: 'ok', text: (l) => l.acknowledged });
                void load();
              }}
            />
          )}
        </div>
      </div>
    </section>
  );
}

/** A note's values in the order of its form (unknown fields last). */
function inFormOrder(form: NoteForm | null, values: Record<string, unknown>): [string, unknown][] {
  const order = form?.sections.flatMap((s) => s.fields.map((f) => f.id)) ?? [];
  const rank = (id: string) => (order.includes(id) ? order.indexOf(id) : order.length);
  return Object.entries(values).sort(([a], [b]) => rank(a) - rank(b));
}

function fieldLabel(form: NoteForm | null, id: string, lang: Lang): string {
  const f = form?.sections.flatMap((s) => s.fields).find((x) => x.id === id);
  return f ? label(f.label, lang) : id;
}

function fieldValue(form: NoteForm | null, id: string, v: unknown, lang: Lang, t: Strings): string {
  const f = form?.sections.flatMap((s) => s.fields).find((x) => x.id === id);
  const opt = (options: { id: string; label: Label }[], x: unknown) => {
    const o = options.find((y) => y.id === x);
    return o ? label(o.label, lang) : String(x);
  };
  if (!f) return typeof v === 'string' ? v : JSON.stringify(v);
  const k = f.kind;
  switch (k.type) {
    case 'call_type':
    case 'choice':
      return opt(k.options, v);
    case 'multi_choice':
      return Array.isArray(v) ? v.map((x) => opt(k.options, x)).join('、') : String(v);
    case 'risk_level':
      return t.riskLevels[v as 'none'] ?? String(v);
    case 'bool':
      return v ? t.yes : t.no;
    case 'categories':
      return Object.entries((v ?? {}) as Record<string, string[]>)
        .map(([c, subs]) => {
          const cat = k.categories.find((x) => x.id === c);
          return cat ? `${label(cat.label, lang)}（${subs.map((s) => opt(cat.subcategories, s)).join('、')}）` : c;
        })
        .join('；');
    case 'referrals':
      return Array.isArray(v)
        ? (v as { service: string; reference?: string }[])
            .map((r) => `${opt(k.services, r.service)}${r.reference ? ` (${r.reference})` : ''}`)
            .join('；')
        : String(v);
    case 'text':
      return String(v);
  }
}

function Transcript({ lines, t, names, lang }: { lines: StaffLine[]; t: Strings; names: Names; lang: Lang }) {
  return (
    <div class="transcript readonly" tabIndex={0} role="log" aria-label={t.transcript}>
      <ol>
        {lines.map((l) => (
          <li
            key={l.seq}
            class={`line theirs from-${l.sender} ${l.visibility === 'operators' ? 'whisper' : ''}`}
            data-seq={l.seq}
          >
            <span class="who">
              {l.sender === 'caller'
                ? t.caller
                : l.sender === 'system'
                  ? t.system
                  : ((l.author != null ? names.get(l.author) : undefined) ??
                    (l.sender === 'operator' ? t.operator : t.participant))}
              {l.visibility === 'operators' && ` · ${t.whisperMark}`}
            </span>
            <p class="body">{l.body}</p>
            <span class="meta">{timeOfDay(l.at, lang)}</span>
          </li>
        ))}
      </ol>
    </div>
  );
}

function ScoreForm({
  detail,
  card,
  q,
  lang,
  editable,
  onScored,
}: {
  detail: AuditDetail;
  card: Scorecard;
  q: QStrings;
  lang: Lang;
  editable: boolean;
  onScored: () => void;
}) {
  const a = detail.audit;
  const [scores, setScores] = useState<Record<string, number | null>>(
    (a.scores as Record<string, number | null> | null | undefined) ?? {},
  );
  const [feedback, setFeedback] = useState(a.feedback ?? '');
  const [errors, setErrors] = useState<FieldError[]>([]);
  const [problem, setProblem] = useState<((q: QStrings) => string) | null>(null);
  const [editing, setEditing] = useState(editable && a.status === 'pending');
  const sectionScore = (id: string) => detail.summary?.sections.find((s) => s.id === id);
  const items = card.sections.flatMap((s) => s.items);
  const missing = items.filter((i) => !(i.id in scores)).length;
  const readOnly = !editing;

  return (
    <form
      class="scorecard"
      aria-labelledby="scorecard-title"
      data-testid="scorecard"
      noValidate
      onSubmit={(e) => {
        e.preventDefault();
        setProblem(null);
        if (!feedback.trim()) {
          setProblem(() => (l: QStrings) => l.feedbackRequired);
          return;
        }
        api<AuditView>('PUT', `/api/audits/${a.id}/score`, { scores, feedback: feedback.trim() }).then(
          () => {
            setErrors([]);
            setEditing(false);
            onScored();
          },
          (err) => {
            if (err instanceof ApiError && err.fields.length > 0) setErrors(err.fields);
            else setProblem(() => failed(err));
          },
        );
      }}
    >
      <h4 id="scorecard-title">{q.scorecard}</h4>
      {!readOnly && <p class="hint">{q.scoreHint}</p>}
      {card.sections.map((s) => {
        const ss = sectionScore(s.id);
        return (
          <fieldset key={s.id} data-section={s.id}>
            <legend>
              {label(s.label, lang)}
              {ss && <span class="section-score"> {pct100(ss.percent)}</span>}
            </legend>
            {s.items.map((item) => {
              const err = errors.find((x) => x.field === item.id || x.field === `scores.${item.id}`);
              const value = scores[item.id];
              const name = `score-${item.id}`;
              return (
                <div
                  key={item.id}
                  class={`score-item ${err ? 'invalid' : ''}`}
                  role="radiogroup"
                  aria-labelledby={`${name}-label`}
                  data-item={item.id}
                >
                  <span id={`${name}-label`} class="score-label">
                    {label(item.label, lang)}
                  </span>
                  {readOnly ? (
                    <strong class="score-value">{value === null ? q.notApplicable : (value ?? '—')}</strong>
                  ) : (
                    <span class="score-options">
                      {SCORES.map((n) => (
                        <label key={n} class="chip">
                          <input
                            type="radio"
                            name={name}
                            value={String(n)}
                            checked={value === n}
                            onChange={() => setScores({ ...scores, [item.id]: n })}
                          />
                          <span>{n}</span>
                        </label>
                      ))}
                      <label class="chip">
                        <input
                          type="radio"
                          name={name}
                          value="na"
                          checked={item.id in scores && value === null}
                          onChange={() => setScores({ ...scores, [item.id]: null })}
                        />
                        <span>{q.notApplicable}</span>
                      </label>
                    </span>
                  )}
                  {err && <span class="field-error">{err.message}</span>}
                </div>
              );
            })}
          </fieldset>
        );
      })}
      {readOnly ? (
        a.feedback && (
          <div class="audit-feedback" data-testid="audit-feedback">
            <h5>{q.feedback.replace(/（必填）|\s*\(required\)/, '')}</h5>
            <p>{a.feedback}</p>
          </div>
        )
      ) : (
        <label class="field">
          <span>{q.feedback}</span>
          <textarea
            name="feedback"
            rows={4}
            maxLength={4000}
            value={feedback}
            onInput={(e) => {
              setFeedback(e.currentTarget.value);
              setProblem(null);
            }}
          />
        </label>
      )}
      {!readOnly && missing > 0 && <p class="hint">{q.itemsMissing(missing)}</p>}
      {errors.length > 0 && (
        <p class="problem" role="alert">
          {errors.map((e) => `${e.field}: ${e.message}`).join('; ')}
        </p>
      )}
      {problem && (
        <p class="problem" role="alert">
          {problem(q)}
        </p>
      )}
      <div class="form-actions">
        {readOnly && editable && (
          <button type="button" onClick={() => setEditing(true)}>
            {q.rescore}
          </button>
        )}
        {!readOnly && (
          <button type="submit" class="primary" data-testid="save-score">
            {q.saveScore}
          </button>
        )}
      </div>
    </form>
  );
}

function AcknowledgeForm({ id, q, onDone }: { id: number; q: QStrings; onDone: () => void }) {
  const [comment, setComment] = useState('');
  const [problem, setProblem] = useState<((q: QStrings) => string) | null>(null);
  return (
    <form
      class="panel"
      data-testid="acknowledge-audit"
      onSubmit={(e) => {
        e.preventDefault();
        api('POST', `/api/audits/${id}/acknowledge`, comment.trim() ? { comment: comment.trim() } : {}).then(
          onDone,
          (err) => setProblem(() => failed(err)),
        );
      }}
    >
      <label class="field">
        <span>{q.comment}</span>
        <textarea
          name="comment"
          rows={2}
          maxLength={2000}
          value={comment}
          onInput={(e) => setComment(e.currentTarget.value)}
        />
      </label>
      {problem && (
        <p class="problem" role="alert">
          {problem(q)}
        </p>
      )}
      <button type="submit" class="primary">
        {q.acknowledge}
      </button>
    </form>
  );
}

// ---------- training ----------

function Training({ q, me, manager, names }: { q: QStrings; me: Me; manager: boolean; names: Names }) {
  const lang = useLang();
  const [modules, setModules] = useState<TrainingModule[]>([]);
  const [sessions, setSessions] = useState<TrainingSession[] | null>(null);
  const [hours, setHours] = useState<TrainingHours | null>(null);
  const [certs, setCerts] = useState<Certification[] | null>(null);
  const [creating, setCreating] = useState(false);
  const [granting, setGranting] = useState(false);
  const [fb, setFb] = useState<Fb>(null);
  const fail = (e: unknown) => setFb({ kind: 'error', text: failed(e) });
  const load = () => {
    api<TrainingModule[]>('GET', '/api/training/modules').then(setModules, fail);
    api<TrainingSession[]>('GET', '/api/training/sessions').then(setSessions, fail);
    api<TrainingHours>('GET', '/api/training/hours').then(setHours, fail);
    api<Certification[]>('GET', '/api/training/certifications').then(setCerts, fail);
  };
  useEffect(load, []);
  const moduleName = (id: string) => {
    const m = modules.find((x) => x.id === id);
    return m ? (lang === 'zh-CN' ? m.name_zh : m.name_en) : id;
  };
  const nameOf = (id: number) => names.get(id) ?? `#${id}`;
  const people = hours?.people.map((p) => p.account) ?? [];

  return (
    <div class="training">
      <Feedback fb={fb} />
      <section aria-labelledby="hours-title">
        <h3 id="hours-title">{hours ? q.hoursTitle(hours.year) : q.hours}</h3>
        {hours && (
          <table class="grid" data-testid="training-hours">
            <thead>
              <tr>
                <th scope="col">{q.person}</th>
                <th scope="col">{q.sessions}</th>
                <th scope="col">{q.trainings}</th>
                <th scope="col">{q.hours}</th>
                <th scope="col">{q.certifiedHours}</th>
                <th scope="col">{q.baseMissing}</th>
              </tr>
            </thead>
            <tbody>
              {hours.people.map((p) => (
                <tr key={p.account} data-account={p.account}>
                  <th scope="row">{nameOf(p.account)}</th>
                  <td>{p.sessions}</td>
                  <td class={p.systematic_sessions < hours.required_systematic ? 'alert' : ''}>
                    {q.systematicCount(p.systematic_sessions, hours.required_systematic)}
                  </td>
                  <td>{p.hours}</td>
                  <td>{p.certified_hours}</td>
                  <td>
                    {p.base_modules_missing.length === 0
                      ? q.allBaseDone
                      : p.base_modules_missing.map(moduleName).join('、')}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>

      <section aria-labelledby="sessions-title">
        <div class="section-head">
          <h3 id="sessions-title">{q.sessions}</h3>
          {manager && (
            <button
              type="button"
              data-testid="new-session"
              aria-expanded={creating}
              onClick={() => setCreating((c) => !c)}
            >
              {q.newSession}
            </button>
          )}
        </div>
        {creating && (
          <SessionForm
            q={q}
            modules={modules}
            people={people}
            nameOf={nameOf}
            lang={lang}
            onSaved={() => {
              setCreating(false);
              setFb({ kind: 'ok', text: (l) => l.sessionSaved });
              load();
            }}
          />
        )}
        {sessions && sessions.length === 0 && <p class="hint">{q.noSessions}</p>}
        {sessions && sessions.length > 0 && (
          <table class="grid" data-testid="sessions">
            <thead>
              <tr>
                <th scope="col">{q.heldOn}</th>
                <th scope="col">{q.sessionTitle}</th>
                <th scope="col">{q.module}</th>
                <th scope="col">{q.hours}</th>
                <th scope="col">{q.attendees}</th>
              </tr>
            </thead>
            <tbody>
              {sessions.map((s) => (
                <tr key={s.id} data-session={s.id}>
                  <td>{s.held_on}</td>
                  <th scope="row">
                    {s.title}
                    <span class="hint">
                      {' '}
                      · {s.trainer}
                      {s.systematic ? ` · ${q.trainings}` : ''}
                    </span>
                  </th>
                  <td>{s.modules.map(moduleName).join('、')}</td>
                  <td>{s.hours}</td>
                  <td>
                    <ul class="attendees">
                      {s.attendees
                        .filter((a) => manager || a.account === me.id)
                        .map((a) => (
                          <li key={a.account} data-account={a.account}>
                            {nameOf(a.account)} {a.questionnaire_done ? `✓ ${q.questionnaireDone}` : ''}
                            {!a.questionnaire_done && (manager || a.account === me.id) && (
                              <button
                                type="button"
                                class="link"
                                onClick={() =>
                                  api('PUT', `/api/training/sessions/${s.id}/attendees/${a.account}/questionnaire`, {
                                    done: true,
                                  }).then(load, fail)
                                }
                              >
                                {q.markDone}
                              </button>
                            )}
                          </li>
                        ))}
                    </ul>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>

      <section aria-labelledby="certs-title">
        <div class="section-head">
          <h3 id="certs-title">{q.certifications}</h3>
          {manager && (
            <button type="button" aria-expanded={granting} onClick={() => setGranting((g) => !g)}>
              {q.grant}
            </button>
          )}
        </div>
        {granting && (
          <GrantForm
            q={q}
            people={people}
            nameOf={nameOf}
            onSaved={() => {
              setGranting(false);
              setFb({ kind: 'ok', text: (l) => l.granted });
              load();
            }}
          />
        )}
        {certs && certs.length === 0 && <p class="hint">{q.noCertifications}</p>}
        {certs && certs.length > 0 && (
          <table class="grid" data-testid="certifications">
            <thead>
              <tr>
                <th scope="col">{q.person}</th>
                <th scope="col">{q.certification}</th>
                <th scope="col">{q.grantedAt}</th>
                <th scope="col">{q.expiresAt}</th>
                <th scope="col">{q.status}</th>
                {manager && <th scope="col">{q.revoke}</th>}
              </tr>
            </thead>
            <tbody>
              {certs.map((c) => (
                <CertRow
                  key={c.id}
                  c={c}
                  q={q}
                  lang={lang}
                  nameOf={nameOf}
                  manager={manager}
                  onChanged={load}
                  onError={fail}
                />
              ))}
            </tbody>
          </table>
        )}
      </section>

      <section aria-labelledby="modules-title">
        <h3 id="modules-title">{q.modules}</h3>
        <table class="grid" data-testid="modules">
          <thead>
            <tr>
              <th scope="col">{q.module}</th>
              <th scope="col">{q.kind}</th>
              <th scope="col">{q.hours}</th>
            </tr>
          </thead>
          <tbody>
            {modules.map((m) => (
              <tr key={m.id}>
                <th scope="row">{lang === 'zh-CN' ? m.name_zh : m.name_en}</th>
                <td>{q.kinds[m.kind]}</td>
                <td>{m.hours}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </section>
    </div>
  );
}

function CertRow({
  c,
  q,
  lang,
  nameOf,
  manager,
  onChanged,
  onError,
}: {
  c: Certification;
  q: QStrings;
  lang: Lang;
  nameOf: (id: number) => string;
  manager: boolean;
  onChanged: () => void;
  onError: (e: unknown) => void;
}) {
  const [revoking, setRevoking] = useState(false);
  const [reason, setReason] = useState('');
  const now = Date.now();
  const state = c.revoked_at
    ? 'revoked'
    : c.expires_at <= now
      ? 'expired'
      : c.expires_at - now < 30 * 86_400_000
        ? 'soon'
        : 'valid';
  const stateText = { revoked: q.revoked, expired: q.expired, soon: q.expiresSoon, valid: q.valid }[state];
  return (
    <tr data-cert={c.id} data-state={state}>
      <th scope="row">{nameOf(c.account)}</th>
      <td>{c.kind}</td>
      <td>{dateTime(c.granted_at, lang)}</td>
      <td class={state === 'expired' || state === 'soon' ? 'alert' : ''}>{dateTime(c.expires_at, lang)}</td>
      <td>
        <span class={`cert-state cert-${state}`}>{stateText}</span>
      </td>
      {manager && (
        <td>
          {!c.revoked_at &&
            (revoking ? (
              <form
                class="inline"
                onSubmit={(e) => {
                  e.preventDefault();
                  api('POST', `/api/training/certifications/${c.id}/revoke`, { reason: reason.trim() }).then(
                    onChanged,
                    onError,
                  );
                }}
              >
                <input
                  type="text"
                  required
                  aria-label={q.revokeReason}
                  placeholder={q.revokeReason}
                  value={reason}
                  onInput={(e) => setReason(e.currentTarget.value)}
                />
                <button type="submit" class="danger-button">
                  {q.revoke}
                </button>
              </form>
            ) : (
              <button type="button" class="danger-outline" onClick={() => setRevoking(true)}>
                {q.revoke}
              </button>
            ))}
        </td>
      )}
    </tr>
  );
}

function SessionForm({
  q,
  modules,
  people,
  nameOf,
  lang,
  onSaved,
}: {
  q: QStrings;
  modules: TrainingModule[];
  people: number[];
  nameOf: (id: number) => string;
  lang: Lang;
  onSaved: () => void;
}) {
  const [title, setTitle] = useState('');
  const [heldOn, setHeldOn] = useState(today());
  const [trainer, setTrainer] = useState('');
  const [systematic, setSystematic] = useState(true);
  const [chosen, setChosen] = useState<string[]>([]);
  const [attendees, setAttendees] = useState<number[]>([]);
  const [problem, setProblem] = useState<((q: QStrings) => string) | null>(null);
  const toggle = <T,>(list: T[], x: T, on: boolean) => (on ? [...list, x] : list.filter((y) => y !== x));
  return (
    <form
      class="panel"
      data-testid="session-form"
      onSubmit={(e) => {
        e.preventDefault();
        setProblem(null);
        api('POST', '/api/training/sessions', {
          title: title.trim(),
          held_on: heldOn,
          trainer: trainer.trim(),
          systematic,
          modules: chosen,
          attendees: attendees.map((account) => ({ account, questionnaire_done: false })),
        }).then(onSaved, (err) => setProblem(() => failed(err)));
      }}
    >
      <h4>{q.newSession}</h4>
      <div class="form-grid">
        <label>
          {q.sessionTitle}
          <input
            type="text"
            name="title"
            required
            maxLength={200}
            value={title}
            onInput={(e) => setTitle(e.currentTarget.value)}
          />
        </label>
        <label>
          {q.heldOn}
          <input type="date" name="held_on" required value={heldOn} onInput={(e) => setHeldOn(e.currentTarget.value)} />
        </label>
        <label>
          {q.trainer}
          <input
            type="text"
            name="trainer"
            required
            maxLength={100}
            value={trainer}
            onInput={(e) => setTrainer(e.currentTarget.value)}
          />
        </label>
        <label class="check">
          <input type="checkbox" checked={systematic} onChange={(e) => setSystematic(e.currentTarget.checked)} />
          <span>{q.systematic}</span>
        </label>
      </div>
      <fieldset>
        <legend>{q.module}</legend>
        <div class="chips">
          {modules.map((m) => (
            <label key={m.id} class="chip">
              <input
                type="checkbox"
                name="module"
                value={m.id}
                checked={chosen.includes(m.id)}
                onChange={(e) => setChosen(toggle(chosen, m.id, e.currentTarget.checked))}
              />
              <span>
                {lang === 'zh-CN' ? m.name_zh : m.name_en} · {m.hours}
              </span>
            </label>
          ))}
        </div>
      </fieldset>
      <fieldset>
        <legend>{q.attendees}</legend>
        <div class="chips">
          {people.map((p) => (
            <label key={p} class="chip">
              <input
                type="checkbox"
                name="attendee"
                value={String(p)}
                checked={attendees.includes(p)}
                onChange={(e) => setAttendees(toggle(attendees, p, e.currentTarget.checked))}
              />
              <span>{nameOf(p)}</span>
            </label>
          ))}
        </div>
      </fieldset>
      {problem && (
        <p class="problem" role="alert">
          {problem(q)}
        </p>
      )}
      <div class="form-actions">
        <button type="submit" class="primary" data-testid="save-session">
          {q.saveSession}
        </button>
      </div>
    </form>
  );
}

function GrantForm({
  q,
  people,
  nameOf,
  onSaved,
}: {
  q: QStrings;
  people: number[];
  nameOf: (id: number) => string;
  onSaved: () => void;
}) {
  const [account, setAccount] = useState(people[0] ?? 0);
  const [kind, setKind] = useState('crisis_certified');
  const [passed, setPassed] = useState(false);
  const [score, setScore] = useState('');
  const [note, setNote] = useState('');
  const [problem, setProblem] = useState<((q: QStrings) => string) | null>(null);
  return (
    <form
      class="panel form-grid"
      aria-label={q.grantTitle}
      onSubmit={(e) => {
        e.preventDefault();
        setProblem(null);
        api('POST', '/api/training/certifications', {
          account,
          certification: kind.trim(),
          assessment_passed: passed,
          assessment_score: score === '' ? null : Number(score),
          note: note.trim() || null,
        }).then(onSaved, (err) => setProblem(() => failed(err)));
      }}
    >
      <h4>{q.grantTitle}</h4>
      <label>
        {q.person}
        <select value={String(account)} onChange={(e) => setAccount(Number(e.currentTarget.value))}>
          {people.map((p) => (
            <option key={p} value={String(p)}>
              {nameOf(p)}
            </option>
          ))}
        </select>
      </label>
      <label>
        {q.certification}
        <input type="text" list="cert-kinds" value={kind} onInput={(e) => setKind(e.currentTarget.value)} />
        <datalist id="cert-kinds">
          <option value="crisis_certified" />
        </datalist>
      </label>
      <label>
        {q.assessmentScore}
        <input type="number" min={0} max={100} value={score} onInput={(e) => setScore(e.currentTarget.value)} />
      </label>
      <label>
        {q.note}
        <input type="text" value={note} onInput={(e) => setNote(e.currentTarget.value)} />
      </label>
      <label class="check">
        <input type="checkbox" checked={passed} onChange={(e) => setPassed(e.currentTarget.checked)} />
        <span>{q.assessmentPassed}</span>
      </label>
      {problem && (
        <p class="problem" role="alert">
          {problem(q)}
        </p>
      )}
      <div class="form-actions">
        <button type="submit" class="primary">
          {q.grant}
        </button>
      </div>
    </form>
  );
}

// ---------- assessment cycles ----------

/** Months per cycle, learned from the server (a quarter unless it says otherwise). */
let cycleMonths: number | null = null;

function cycleId(year: number, index: number, months: number): string {
  switch (months) {
    case 12:
      return `${year}`;
    case 6:
      return `${year}-H${index}`;
    case 3:
      return `${year}-Q${index}`;
    case 1:
      return `${year}-M${String(index).padStart(2, '0')}`;
    default:
      return `${year}-P${index}`;
  }
}

/** The current cycle and the `n - 1` before it, oldest first. */
function recentCycles(months: number, n: number): string[] {
  const d = new Date();
  let year = d.getFullYear();
  let index = Math.floor(d.getMonth() / months) + 1;
  const per = 12 / months;
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    out.unshift(cycleId(year, index, months));
    index -= 1;
    if (index < 1) {
      index = per;
      year -= 1;
    }
  }
  return out;
}

async function loadCycle(id: string): Promise<CycleAssessment> {
  return api<CycleAssessment>('GET', `/api/assessments/${encodeURIComponent(id)}`);
}

/** The current cycle's id: the server says how long a cycle is when a guess is refused. */
async function discoverCycles(n: number): Promise<string[]> {
  if (cycleMonths === null) {
    try {
      await loadCycle(recentCycles(3, 1)[0]);
      cycleMonths = 3;
    } catch (e) {
      const m = e instanceof ApiError ? /cycle of (\d+) month/.exec(e.message) : null;
      if (!m) throw e;
      cycleMonths = Number(m[1]);
    }
  }
  return recentCycles(cycleMonths, n);
}

function Assessment({ q, me, names }: { q: QStrings; me: Me; names: Names }) {
  const lang = useLang();
  const [cycles, setCycles] = useState<string[]>([]);
  const [selected, setSelected] = useState<string | null>(null);
  const [reports, setReports] = useState<Record<string, CycleAssessment | null>>({});
  const [fb, setFb] = useState<Fb>(null);
  const [signing, setSigning] = useState<number | null>(null);

  const loadAll = (ids: string[]) =>
    Promise.all(
      ids.map((id) =>
        loadCycle(id).then(
          (r) => [id, r] as const,
          () => [id, null] as const,
        ),
      ),
    ).then((pairs) => setReports(Object.fromEntries(pairs)));
  useEffect(() => {
    discoverCycles(4).then(
      (ids) => {
        setCycles(ids);
        setSelected(ids[ids.length - 1]);
        void loadAll(ids);
      },
      (e) => setFb({ kind: 'error', text: failed(e) }),
    );
  }, []);

  const report = selected ? reports[selected] : undefined;
  const history = (operator: number, pick: (o: OperatorAssessment) => number | null | undefined) =>
    cycles.map((c) => {
      const o = reports[c]?.operators.find((x) => x.operator === operator);
      return o ? pick(o) : null;
    });
  const nameOf = (id: number) => names.get(id) ?? `#${id}`;

  return (
    <section aria-labelledby="assessment-title" data-testid="assessment">
      <div class="section-head">
        <h3 id="assessment-title">{selected ? q.assessmentTitle(selected) : q.assessmentTitle('')}</h3>
        <label>
          {q.cycle}{' '}
          <select name="cycle" value={selected ?? ''} onChange={(e) => setSelected(e.currentTarget.value)}>
            {cycles.map((c) => (
              <option key={c} value={c}>
                {c}
              </option>
            ))}
          </select>
        </label>
        {selected && (
          <>
            <a
              href={`/api/assessments/${selected}?format=csv`}
              download={`assessment-${selected}.csv`}
              data-testid="assessment-csv"
            >
              {q.csv}
            </a>
            <a
              href={`/api/assessments/${selected}/report.html`}
              target="_blank"
              rel="noopener"
              data-testid="assessment-print"
            >
              {q.printable}
            </a>
          </>
        )}
      </div>
      <Feedback fb={fb} />
      {report === undefined && <p role="status">{q.loading}</p>}
      {report && (
        <>
          <p class="hint">
            {q.period(report.first_day, report.last_day)} ·{' '}
            {q.rules(report.rules.trainings_required, report.rules.audit_pass_percent, report.rules.min_contacts)}
          </p>
          {report.operators.length === 0 ? (
            <p class="hint">{q.noOperators}</p>
          ) : (
            <table class="grid assessment-table" data-testid="assessment-table">
              <thead>
                <tr>
                  <th scope="col">{q.operator}</th>
                  <th scope="col">{q.completed}</th>
                  <th scope="col">{q.aht}</th>
                  <th scope="col">{q.auditAvg}</th>
                  <th scope="col">{q.trainings}</th>
                  <th scope="col">{q.hours}</th>
                  <th scope="col">{q.outcome}</th>
                </tr>
              </thead>
              <tbody>
                {report.operators.map((o) => (
                  <Fragment key={o.operator}>
                    <tr data-operator={o.operator} data-outcome={o.sign_off?.outcome ?? o.computed}>
                      <th scope="row">
                        {o.name}
                        {o.certifications.length > 0 && <span class="hint"> · {o.certifications.join(', ')}</span>}
                      </th>
                      <td>
                        <Figure
                          value={o.kpis.completed}
                          spark={history(o.operator, (x) => x.kpis.completed)}
                          labels={cycles}
                          title={`${o.name} ${q.completed}`}
                        />
                      </td>
                      <td>
                        <Figure
                          value={secs(o.kpis.aht_seconds)}
                          spark={history(o.operator, (x) => x.kpis.aht_seconds)}
                          labels={cycles}
                          title={`${o.name} ${q.aht}`}
                        />
                      </td>
                      <td>
                        <Figure
                          value={`${pct100(o.audits.average_percent)} (${o.audits.scored})`}
                          spark={history(o.operator, (x) => x.audits.average_percent)}
                          labels={cycles}
                          title={`${o.name} ${q.auditAvg}`}
                        />
                      </td>
                      <td class={o.training.systematic_sessions < report.rules.trainings_required ? 'alert' : ''}>
                        <Figure
                          value={q.systematicCount(o.training.systematic_sessions, report.rules.trainings_required)}
                          spark={history(o.operator, (x) => x.training.systematic_sessions)}
                          labels={cycles}
                          title={`${o.name} ${q.trainings}`}
                        />
                      </td>
                      <td>
                        <Figure
                          value={o.training.hours}
                          spark={history(o.operator, (x) => x.training.hours)}
                          labels={cycles}
                          title={`${o.name} ${q.hours}`}
                        />
                      </td>
                      <td>
                        <span class={`outcome outcome-${o.sign_off?.outcome ?? o.computed}`}>
                          {q.outcomes[(o.sign_off?.outcome ?? o.computed) as Outcome] ?? o.sign_off?.outcome}
                        </span>
                        {o.reasons.length > 0 && !o.sign_off && (
                          <ul class="reasons">
                            {o.reasons.map((r) => (
                              <li key={r}>{r}</li>
                            ))}
                          </ul>
                        )}
                        {o.sign_off ? (
                          <>
                            <p class="hint" data-testid="signed-off">
                              {q.signedOff(nameOf(o.sign_off.signed_by), dateTime(o.sign_off.signed_at, lang))}
                              {o.sign_off.outcome !== o.sign_off.computed
                                ? ` · ${q.computed}: ${q.outcomes[o.sign_off.computed as Outcome] ?? o.sign_off.computed}`
                                : ''}
                              {o.sign_off.comment ? ` · ${o.sign_off.comment}` : ''}
                            </p>
                            {o.changed_since_sign_off.length > 0 && (
                              <details class="hint" data-testid="changed-since-sign-off">
                                <summary>{q.changedSinceSignOff(o.changed_since_sign_off.length)}</summary>
                                <ul>
                                  {o.changed_since_sign_off.map((c) => (
                                    <li key={c.figure}>
                                      {c.figure}: {c.signed || '—'} → {c.now || '—'}
                                    </li>
                                  ))}
                                </ul>
                              </details>
                            )}
                          </>
                        ) : (
                          me.role === 'supervisor' &&
                          o.operator !== me.id && (
                            <button type="button" data-testid="sign-off" onClick={() => setSigning(o.operator)}>
                              {q.signOff}
                            </button>
                          )
                        )}
                      </td>
                    </tr>
                    {signing === o.operator && selected && (
                      <tr>
                        <td colSpan={7}>
                          <SignOffForm
                            q={q}
                            cycle={selected}
                            o={o}
                            onDone={() => {
                              setSigning(null);
                              setFb({ kind: 'ok', text: (l) => l.signOffDone });
                              void loadAll(cycles);
                            }}
                            onCancel={() => setSigning(null)}
                          />
                        </td>
                      </tr>
                    )}
                  </Fragment>
                ))}
              </tbody>
            </table>
          )}
        </>
      )}
    </section>
  );
}

function Figure({
  value,
  spark,
  labels,
  title,
}: {
  value: string | number;
  spark: (number | null | undefined)[];
  labels: string[];
  title: string;
}) {
  return (
    <span class="figure">
      <span class="figure-value">{value}</span>
      <Spark values={spark} labels={labels} title={title} highlightLast />
    </span>
  );
}

function SignOffForm({
  q,
  cycle,
  o,
  onDone,
  onCancel,
}: {
  q: QStrings;
  cycle: string;
  o: OperatorAssessment;
  onDone: () => void;
  onCancel: () => void;
}) {
  const [outcome, setOutcome] = useState<Outcome>(o.computed);
  const [comment, setComment] = useState('');
  const [problem, setProblem] = useState<((q: QStrings) => string) | null>(null);
  return (
    <form
      class="sign-off"
      aria-label={q.signOffTitle(o.name)}
      data-testid="sign-off-form"
      onSubmit={(e) => {
        e.preventDefault();
        api('POST', `/api/assessments/${cycle}/${o.operator}/sign-off`, { outcome, comment: comment.trim() }).then(
          onDone,
          (err) => setProblem(() => failed(err)),
        );
      }}
    >
      <h4>{q.signOffTitle(o.name)}</h4>
      <div role="radiogroup" aria-label={q.outcome} class="chips">
        {OUTCOMES.map((x) => (
          <label key={x} class="chip">
            <input type="radio" name="outcome" value={x} checked={outcome === x} onChange={() => setOutcome(x)} />
            <span>
              {q.outcomes[x]}
              {x === o.computed ? ` (${q.computed})` : ''}
            </span>
          </label>
        ))}
      </div>
      <label class="field">
        <span>{q.signOffComment}</span>
        <textarea
          name="comment"
          rows={2}
          maxLength={4000}
          value={comment}
          onInput={(e) => setComment(e.currentTarget.value)}
        />
      </label>
      {problem && (
        <p class="problem" role="alert">
          {problem(q)}
        </p>
      )}
      <div class="form-actions">
        <button type="button" onClick={onCancel}>
          {q.cancel}
        </button>
        <button type="submit" class="primary" data-testid="confirm-sign-off">
          {q.signOff}
        </button>
      </div>
    </form>
  );
}

// ---------- trends ----------

function seriesKey(s: TrendSeries, q: QStrings, t: Strings, queues: QueueDefinition[]): string {
  switch (s.dimension) {
    case 'total':
      return q.dimensions.total;
    case 'queue':
      return queues.find((x) => x.id === s.key)?.name ?? s.key;
    case 'risk':
      return t.riskLevels[s.key as 'none'] ?? s.key;
    default:
      return s.key;
  }
}

function Trends({ q, t, queues }: { q: QStrings; t: Strings; queues: QueueDefinition[] }) {
  const [from, setFrom] = useState(localDate(27));
  const [to, setTo] = useState(today());
  const [report, setReport] = useState<TrendReport | null>(null);
  const [form, setForm] = useState<NoteForm | null>(null);
  const [fb, setFb] = useState<Fb>(null);
  const lang = useLang();
  const query = `from=${from}&to=${to}`;
  const load = () =>
    api<TrendReport>('GET', `/api/reports/trends?${query}`).then(setReport, (e) =>
      setFb({ kind: 'error', text: failed(e) }),
    );
  useEffect(() => {
    void load();
    noteForm().then(setForm, () => undefined);
  }, []);
  // Categories and call types are named as the note form names them.
  const name = (s: TrendSeries) => {
    if (s.dimension === 'category' || s.dimension === 'call_type') {
      for (const f of form?.sections.flatMap((x) => x.fields) ?? []) {
        if (f.kind.type === 'categories' && s.dimension === 'category') {
          const c = f.kind.categories.find((x) => x.id === s.key);
          if (c) return label(c.label, lang);
        }
        if (f.kind.type === 'call_type' && s.dimension === 'call_type') {
          const c = f.kind.options.find((x) => x.id === s.key);
          if (c) return label(c.label, lang);
        }
      }
    }
    return seriesKey(s, q, t, queues);
  };
  return (
    <section aria-labelledby="trends-title" data-testid="trends">
      <form
        class="section-head filters"
        onSubmit={(e) => {
          e.preventDefault();
          void load();
        }}
      >
        <h3 id="trends-title">{report ? q.trendsTitle(report.first_day, report.last_day) : q.tabs.trends}</h3>
        <label>
          {q.from} <input type="date" value={from} onInput={(e) => setFrom(e.currentTarget.value)} />
        </label>
        <label>
          {q.to} <input type="date" value={to} onInput={(e) => setTo(e.currentTarget.value)} />
        </label>
        <button type="submit">{q.show}</button>
        <a href={`/api/reports/trends?${query}&format=csv`} download="trends.csv" data-testid="trends-csv">
          {q.csv}
        </a>
      </form>
      <Feedback fb={fb} />
      <p class="hint">{q.alertsHint}</p>
      {report && report.series.length === 0 && <p class="hint">{q.noSeries}</p>}
      {report && report.series.length > 0 && (
        <table class="grid" data-testid="trend-series">
          <thead>
            <tr>
              <th scope="col">{q.dimension}</th>
              <th scope="col">{q.key}</th>
              <th scope="col">{q.daily}</th>
              <th scope="col">{q.last7}</th>
              <th scope="col">{q.prev7}</th>
              <th scope="col">{q.change}</th>
            </tr>
          </thead>
          <tbody>
            {report.series.map((s) => {
              const w = s.week_over_week;
              return (
                <tr
                  key={`${s.dimension}/${s.key}`}
                  class={w.alert ? 'row-red' : ''}
                  data-dimension={s.dimension}
                  data-key={s.key}
                  data-alert={w.alert ? 'true' : 'false'}
                >
                  <td>{q.dimensions[s.dimension] ?? s.dimension}</td>
                  <th scope="row">{name(s)}</th>
                  <td>
                    <Spark
                      values={s.points.map((p) => p.count)}
                      labels={s.points.map((p) => p.day)}
                      title={name(s)}
                      width={140}
                      height={28}
                      dots={false}
                    />
                  </td>
                  <td>{w.last_7_days}</td>
                  <td>{w.previous_7_days}</td>
                  <td class={w.alert ? 'alert' : ''}>
                    {w.change_ratio == null
                      ? w.last_7_days > 0
                        ? `+${w.last_7_days}`
                        : '—'
                      : `${w.change_ratio > 0 ? '+' : ''}${Math.round(w.change_ratio * 100)}%`}
                    {w.alert && <span class="alert-mark"> ▲ {q.alert}</span>}
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
    </section>
  );
}

// ---------- KPIs ----------

function KpiCells({ k, thresholds }: { k: Kpis; thresholds: number[] }) {
  return (
    <>
      <td>{k.arrived ?? '—'}</td>
      <td>{k.answered}</td>
      <td>{pct(k.answer_rate)}</td>
      <td>{secs(k.asa_seconds)}</td>
      {thresholds.map((th) => (
        <td key={th}>{pct(k.service_levels.find((s) => s.threshold_seconds === th)?.ratio)}</td>
      ))}
      <td>
        {k.abandoned ?? '—'}
        {k.short_abandoned ? ` (+${k.short_abandoned})` : ''}
      </td>
      <td>{secs(k.aht_seconds)}</td>
      <td>{pct(k.occupancy?.ratio)}</td>
    </>
  );
}

function KpiPage({ q, t, queues, names }: { q: QStrings; t: Strings; queues: QueueDefinition[]; names: Names }) {
  const [from, setFrom] = useState(localDate(6));
  const [to, setTo] = useState(today());
  const [queue, setQueue] = useState('');
  const [report, setReport] = useState<KpiReport | null>(null);
  const [fb, setFb] = useState<Fb>(null);
  const query = `from=${from}&to=${to}${queue ? `&queue=${encodeURIComponent(queue)}` : ''}`;
  const load = () =>
    api<KpiReport>('GET', `/api/reports/kpi?${query}`).then(setReport, (e) =>
      setFb({ kind: 'error', text: failed(e) }),
    );
  useEffect(() => {
    void load();
  }, []);
  const th = report?.service_level_thresholds_seconds ?? [];
  const head = (first: string) => (
    <tr>
      <th scope="col">{first}</th>
      <th scope="col">{q.kpis.arrived}</th>
      <th scope="col">{q.kpis.answered}</th>
      <th scope="col">{q.kpis.answer_rate}</th>
      <th scope="col">{q.kpis.asa}</th>
      {th.map((s) => (
        <th scope="col" key={s}>
          {q.kpis.sl(s)}
        </th>
      ))}
      <th scope="col">{q.kpis.abandoned}</th>
      <th scope="col">{q.kpis.aht}</th>
      <th scope="col">{q.kpis.occupancy}</th>
    </tr>
  );
  const k = report?.total;
  return (
    <section aria-labelledby="kpi-title" data-testid="kpi">
      <form
        class="section-head filters"
        onSubmit={(e) => {
          e.preventDefault();
          void load();
        }}
      >
        <h3 id="kpi-title">{q.kpiTitle}</h3>
        <label>
          {q.from} <input type="date" value={from} onInput={(e) => setFrom(e.currentTarget.value)} />
        </label>
        <label>
          {q.to} <input type="date" value={to} onInput={(e) => setTo(e.currentTarget.value)} />
        </label>
        <label>
          {q.queueFilter}{' '}
          <select value={queue} onChange={(e) => setQueue(e.currentTarget.value)}>
            <option value="">{q.all}</option>
            {queues.map((x) => (
              <option key={x.id} value={x.id}>
                {x.name}
              </option>
            ))}
          </select>
        </label>
        <button type="submit">{q.show}</button>
        <a href={`/api/reports/kpi?${query}&format=csv`} download="kpi.csv" data-testid="kpi-csv">
          {q.csv}
        </a>
      </form>
      <Feedback fb={fb} />
      {report && k && (
        <>
          <p class="hint">
            {q.kpiPeriod(
              report.from_local.slice(0, 16).replace('T', ' '),
              report.to_local.slice(0, 16).replace('T', ' '),
              report.time_zone,
            )}
          </p>
          <dl class="kpi-cards" data-testid="kpi-total">
            <div>
              <dt>{q.kpis.arrived}</dt>
              <dd>{k.arrived ?? '—'}</dd>
            </div>
            <div>
              <dt>{q.kpis.answer_rate}</dt>
              <dd>{pct(k.answer_rate)}</dd>
            </div>
            <div>
              <dt>{q.kpis.asa}</dt>
              <dd>{secs(k.asa_seconds)}</dd>
            </div>
            {k.service_levels.map((s) => (
              <div key={s.threshold_seconds}>
                <dt>{q.kpis.sl(s.threshold_seconds)}</dt>
                <dd>{pct(s.ratio)}</dd>
              </div>
            ))}
            <div>
              <dt>{q.kpis.abandon_rate}</dt>
              <dd>{pct(k.abandon_rate)}</dd>
            </div>
            <div>
              <dt>{q.kpis.aht}</dt>
              <dd>{secs(k.aht_seconds)}</dd>
            </div>
            <div>
              <dt>{q.kpis.occupancy}</dt>
              <dd>{pct(k.occupancy?.ratio)}</dd>
            </div>
            <div>
              <dt>{q.kpis.high_risk_asa}</dt>
              <dd>{secs(k.high_risk.asa_seconds)}</dd>
            </div>
            <div>
              <dt>{q.kpis.imminent_risk_asa}</dt>
              <dd>{secs(k.imminent_risk.asa_seconds)}</dd>
            </div>
            <div>
              <dt>{q.kpis.incidents}</dt>
              <dd>{k.crisis.incidents ?? '—'}</dd>
            </div>
            <div>
              <dt>{q.kpis.mtta}</dt>
              <dd>{secs(k.crisis.mean_time_to_acknowledge_seconds)}</dd>
            </div>
          </dl>
          {report.by_queue.length > 0 && (
            <>
              <h4>{q.byQueue}</h4>
              <table class="grid" data-testid="kpi-queues">
                <thead>{head(t.queue)}</thead>
                <tbody>
                  {report.by_queue.map((r) => (
                    <tr key={r.queue}>
                      <th scope="row">{queues.find((x) => x.id === r.queue)?.name ?? r.queue}</th>
                      <KpiCells k={r.kpis} thresholds={th} />
                    </tr>
                  ))}
                </tbody>
              </table>
            </>
          )}
          {report.by_operator.length > 0 && (
            <>
              <h4>{q.byOperator}</h4>
              <table class="grid" data-testid="kpi-operators">
                <thead>{head(q.operator)}</thead>
                <tbody>
                  {report.by_operator.map((r) => (
                    <tr key={r.operator}>
                      <th scope="row">{names.get(r.operator) ?? `#${r.operator}`}</th>
                      <KpiCells k={r.kpis} thresholds={th} />
                    </tr>
                  ))}
                </tbody>
              </table>
            </>
          )}
        </>
      )}
    </section>
  );
}

// ---------- access log ----------

function AccessLog({ q, names }: { q: QStrings; names: Names }) {
  const lang = useLang();
  const [records, setRecords] = useState<AccessRecord[] | null>(null);
  const [fb, setFb] = useState<Fb>(null);
  useEffect(() => {
    api<AccessRecord[]>('GET', '/api/access-log?limit=200').then(setRecords, (e) =>
      setFb({ kind: 'error', text: failed(e) }),
    );
  }, []);
  return (
    <section aria-labelledby="access-title">
      <h3 id="access-title">{q.accessTitle}</h3>
      <p class="hint">{q.accessHint}</p>
      <Feedback fb={fb} />
      {records && (
        <table class="grid" data-testid="access-log">
          <thead>
            <tr>
              <th scope="col">{q.at}</th>
              <th scope="col">{q.reader}</th>
              <th scope="col">{q.contactCol}</th>
              <th scope="col">{q.what}</th>
            </tr>
          </thead>
          <tbody>
            {records.map((r) => (
              <tr key={r.id}>
                <td>{dateTime(r.at, lang)}</td>
                <th scope="row">{names.get(r.reader) ?? `#${r.reader}`}</th>
                <td>{q.contact(r.contact)}</td>
                <td>{q.whats[r.what] ?? r.what}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
