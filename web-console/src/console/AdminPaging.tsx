// Administration of paging (admin role): escalation policies (ordered levels of people or
// schedules, a delay before the next level, notify all or round robin, repeat), on-call
// schedules (rotations and overrides in a time zone) and each person's paging addresses.
import { useEffect, useState } from 'preact/hooks';
import type {
  AccountView,
  EscalationPolicy,
  FieldError,
  Level,
  LevelMode,
  Override,
  PagingAddresses,
  PolicyDefinition,
  Rotation,
  RotationLength,
  Schedule,
  ScheduleDefinition,
  ScheduleOnCall,
  Target,
} from '../proto/hotline';
import { ApiError, api } from '../shared/api';
import { errorText } from '../shared/errors';
import { dateTime, localDate } from '../shared/format';
import { useLang } from '../shared/i18n';
import type { Strings } from './strings';

/** Said in the language of the moment it is shown (the language switch re-renders it). */
type Feedback = { kind: 'ok' | 'error'; text: (t: Strings) => string } | null;

const MODES: LevelMode[] = ['notify_all', 'round_robin'];
const LENGTHS: RotationLength[] = ['daily', 'weekly'];
const ZONES = ['Asia/Shanghai', 'Asia/Hong_Kong', 'Asia/Macau', 'Asia/Taipei', 'Asia/Urumqi', 'UTC'];

function FeedbackLine({ feedback, t }: { feedback: Feedback; t: Strings }) {
  if (!feedback) return <p class="feedback" role="status" />;
  return feedback.kind === 'ok' ? (
    <p class="feedback ok" role="status">
      {feedback.text(t)}
    </p>
  ) : (
    <p class="feedback problem" role="alert">
      {feedback.text(t)}
    </p>
  );
}

/** `levels[0].targets[1].id` in people's words: "Level 1 · Who is paged 2". */
function fieldPath(path: string, t: Strings): string {
  const words: Record<string, string> = {
    name: t.pg.name,
    repeat: t.pg.repeat,
    delay_ms: t.pg.delay,
    mode: t.pg.mode,
    time_zone: t.pg.timeZone,
    handoff_time: t.pg.handoff,
    start_date: t.pg.startDate,
    start: t.pg.from,
    end: t.pg.to,
    person: t.pg.person,
    length: t.pg.length,
    levels: t.pg.levels,
    targets: t.pg.targets,
    rotations: t.pg.rotations,
    participants: t.pg.participants,
    overrides: t.pg.overrides,
  };
  return path
    .split('.')
    .map((part) => {
      const m = /^(\w+)\[(\d+)\]$/.exec(part);
      if (!m) return words[part] ?? part;
      const n = Number(m[2]) + 1;
      switch (m[1]) {
        case 'levels':
          return t.pg.level(n);
        case 'targets':
          return `${t.pg.targets} ${n}`;
        case 'rotations':
          return t.pg.rotation(n);
        case 'participants':
          return `${t.pg.participants} ${n}`;
        case 'overrides':
          return `${t.pg.overrides} ${n}`;
        default:
          return part;
      }
    })
    .filter((w) => w !== 'id')
    .join(' · ');
}

function Problems({ problems, t }: { problems: FieldError[]; t: Strings }) {
  if (problems.length === 0) return null;
  return (
    <div class="problem" role="alert" data-testid="field-problems">
      <p>{t.pg.refused}</p>
      <ul>
        {problems.map((p, i) => (
          <li key={i} data-field={p.field}>
            {p.field ? `${fieldPath(p.field, t)}: ` : ''}
            {p.message}
          </li>
        ))}
      </ul>
    </div>
  );
}

function useDirectory() {
  const [accounts, setAccounts] = useState<AccountView[]>([]);
  const [schedules, setSchedules] = useState<Schedule[] | null>(null);
  const [feedback, setFeedback] = useState<Feedback>(null);
  const loadSchedules = () =>
    api<Schedule[]>('GET', '/api/admin/schedules').then(setSchedules, (e) =>
      setFeedback({ kind: 'error', text: (tr) => errorText(e, tr) }),
    );
  useEffect(() => {
    api<AccountView[]>('GET', '/api/admin/accounts').then(setAccounts, (e) =>
      setFeedback({ kind: 'error', text: (tr) => errorText(e, tr) }),
    );
    void loadSchedules();
  }, []);
  return { accounts, schedules, loadSchedules, feedback, setFeedback };
}

function move<T>(list: T[], i: number, by: number): T[] {
  const j = i + by;
  if (j < 0 || j >= list.length) return list;
  const out = [...list];
  [out[i], out[j]] = [out[j], out[i]];
  return out;
}

// ---------- escalation policies ----------

export function Policies({ t }: { t: Strings }) {
  const { accounts, schedules, feedback, setFeedback } = useDirectory();
  const [policies, setPolicies] = useState<EscalationPolicy[] | null>(null);
  const [editing, setEditing] = useState<{ id: number | null; draft: PolicyDefinition } | null>(null);
  const load = () =>
    api<EscalationPolicy[]>('GET', '/api/admin/escalation-policies').then(setPolicies, (e) =>
      setFeedback({ kind: 'error', text: (tr) => errorText(e, tr) }),
    );
  useEffect(() => {
    void load();
  }, []);
  const personName = (id: number) => accounts.find((a) => a.id === id)?.display_name ?? `#${id}`;
  const scheduleName = (id: number) => schedules?.find((s) => s.id === id)?.name ?? `#${id}`;
  const targetName = (x: Target) =>
    x.type === 'person' ? personName(x.id) : `${t.pg.schedule}: ${scheduleName(x.id)}`;

  return (
    <section aria-labelledby="policies-title">
      <div class="section-head">
        <h3 id="policies-title">{t.pg.policies}</h3>
        <button
          type="button"
          data-testid="new-policy"
          onClick={() =>
            setEditing({
              id: null,
              draft: {
                name: '',
                default_for_crisis: false,
                repeat: 1,
                levels: [{ targets: [], delay_ms: 5 * 60_000, mode: 'notify_all' }],
              },
            })
          }
        >
          {t.pg.newPolicy}
        </button>
      </div>
      <FeedbackLine feedback={feedback} t={t} />
      {policies && !policies.some((p) => p.default_for_crisis) && <p class="note">{t.pg.fallback}</p>}
      {policies && policies.length > 0 && (
        <table class="grid" data-testid="policies">
          <thead>
            <tr>
              <th scope="col">{t.pg.name}</th>
              <th scope="col">{t.pg.levels}</th>
              <th scope="col">{t.pg.repeatCol}</th>
              <th scope="col">{t.actions}</th>
            </tr>
          </thead>
          <tbody>
            {policies.map((p) => (
              <tr key={p.id} data-policy={p.name}>
                <th scope="row">
                  {p.name}
                  {p.default_for_crisis && <span class="tag"> {t.pg.isDefault}</span>}
                </th>
                <td>
                  <ol class="levels-summary">
                    {p.levels.map((l, i) => (
                      <li key={i}>
                        {l.targets.map(targetName).join('、') || '—'} · {t.pg.modes[l.mode ?? 'notify_all']} ·{' '}
                        {t.pg.minutes(Math.round(l.delay_ms / 60_000))}
                      </li>
                    ))}
                  </ol>
                </td>
                <td>{t.pg.repeatTimes(p.repeat ?? 0)}</td>
                <td>
                  <button
                    type="button"
                    onClick={() =>
                      setEditing({
                        id: p.id,
                        draft: {
                          name: p.name,
                          default_for_crisis: p.default_for_crisis ?? false,
                          repeat: p.repeat ?? 0,
                          levels: structuredClone(p.levels),
                        },
                      })
                    }
                  >
                    {t.edit}
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {editing && (
        <PolicyEditor
          key={editing.id ?? 'new'}
          t={t}
          id={editing.id}
          initial={editing.draft}
          accounts={accounts}
          schedules={schedules ?? []}
          onSaved={() => {
            setEditing(null);
            setFeedback({ kind: 'ok', text: (tr) => tr.saved });
            void load();
          }}
          onDeleted={() => {
            setEditing(null);
            setFeedback({ kind: 'ok', text: (tr) => tr.deleted });
            void load();
          }}
          onCancel={() => setEditing(null)}
        />
      )}
    </section>
  );
}

function TargetRow({
  target,
  accounts,
  schedules,
  t,
  onChange,
  onRemove,
}: {
  target: Target;
  accounts: AccountView[];
  schedules: Schedule[];
  t: Strings;
  onChange: (x: Target) => void;
  onRemove: () => void;
}) {
  const people = accounts.filter((a) => !a.disabled);
  return (
    <li>
      <select
        aria-label={t.pg.targets}
        value={target.type}
        onChange={(e) => {
          const type = e.currentTarget.value as Target['type'];
          const id = type === 'person' ? (people[0]?.id ?? 0) : (schedules[0]?.id ?? 0);
          onChange({ type, id });
        }}
      >
        <option value="person">{t.pg.person}</option>
        <option value="schedule">{t.pg.schedule}</option>
      </select>
      <select
        aria-label={target.type === 'person' ? t.pg.person : t.pg.schedule}
        name="target"
        value={String(target.id)}
        onChange={(e) => onChange({ ...target, id: Number(e.currentTarget.value) })}
      >
        {target.type === 'person'
          ? people.map((a) => (
              <option key={a.id} value={String(a.id)}>
                {a.display_name} ({t.roles[a.role]})
              </option>
            ))
          : schedules.map((s) => (
              <option key={s.id} value={String(s.id)}>
                {s.name}
              </option>
            ))}
      </select>
      <button type="button" onClick={onRemove}>
        {t.remove}
      </button>
    </li>
  );
}

function PolicyEditor({
  t,
  id,
  initial,
  accounts,
  schedules,
  onSaved,
  onDeleted,
  onCancel,
}: {
  t: Strings;
  id: number | null;
  initial: PolicyDefinition;
  accounts: AccountView[];
  schedules: Schedule[];
  onSaved: () => void;
  onDeleted: () => void;
  onCancel: () => void;
}) {
  const [p, setP] = useState<PolicyDefinition>(initial);
  const [problems, setProblems] = useState<FieldError[]>([]);
  const [confirmDelete, setConfirmDelete] = useState(false);
  const set = (patch: Partial<PolicyDefinition>) => setP({ ...p, ...patch });
  const setLevel = (i: number, patch: Partial<Level>) =>
    set({ levels: p.levels.map((l, j) => (j === i ? { ...l, ...patch } : l)) });
  const refused = (e: unknown) =>
    setProblems(e instanceof ApiError && e.fields.length > 0 ? e.fields : [{ field: '', message: errorText(e, t) }]);

  return (
    <form
      class="panel policy-editor"
      aria-label={id === null ? t.pg.newPolicy : `${t.edit} ${initial.name}`}
      data-testid="policy-editor"
      onSubmit={(e) => {
        e.preventDefault();
        setProblems([]);
        const body: PolicyDefinition = { ...p, name: p.name.trim() };
        const req =
          id === null
            ? api('POST', '/api/admin/escalation-policies', body)
            : api('PUT', `/api/admin/escalation-policies/${id}`, body);
        req.then(onSaved, refused);
      }}
    >
      <h4>{id === null ? t.pg.newPolicy : `${t.edit}: ${initial.name}`}</h4>
      <div class="form-grid">
        <label>
          {t.pg.name}
          <input
            type="text"
            name="name"
            required
            maxLength={80}
            value={p.name}
            onInput={(e) => set({ name: e.currentTarget.value })}
          />
        </label>
        <label>
          {t.pg.repeat}
          <input
            type="number"
            name="repeat"
            min={0}
            max={10}
            value={p.repeat ?? 0}
            onInput={(e) => set({ repeat: Number(e.currentTarget.value) })}
          />
        </label>
        <label class="check">
          <input
            type="checkbox"
            name="default"
            checked={p.default_for_crisis ?? false}
            onChange={(e) => set({ default_for_crisis: e.currentTarget.checked })}
          />
          <span>{t.pg.defaultForCrisis}</span>
        </label>
      </div>
      <ol class="levels">
        {p.levels.map((l, i) => (
          <li key={i}>
            <fieldset data-level={i + 1}>
              <legend>{t.pg.level(i + 1)}</legend>
              <p class="field-label">{t.pg.targets}</p>
              <ul class="rows">
                {l.targets.map((x, j) => (
                  <TargetRow
                    key={j}
                    target={x}
                    accounts={accounts}
                    schedules={schedules}
                    t={t}
                    onChange={(nx) => setLevel(i, { targets: l.targets.map((y, k) => (k === j ? nx : y)) })}
                    onRemove={() => setLevel(i, { targets: l.targets.filter((_, k) => k !== j) })}
                  />
                ))}
              </ul>
              <button
                type="button"
                data-testid="add-target"
                onClick={() => {
                  const first = accounts.find((a) => !a.disabled && a.role === 'crisis_lead') ?? accounts[0];
                  setLevel(i, { targets: [...l.targets, { type: 'person', id: first?.id ?? 0 }] });
                }}
              >
                {t.pg.addTarget}
              </button>
              <div class="form-grid">
                <label>
                  {t.pg.delay}
                  <input
                    type="number"
                    name="delay"
                    min={1}
                    max={1440}
                    value={Math.round(l.delay_ms / 60_000)}
                    onInput={(e) => setLevel(i, { delay_ms: Math.round(Number(e.currentTarget.value) * 60_000) })}
                  />
                </label>
                <div role="radiogroup" aria-label={t.pg.mode} class="mode">
                  <span class="field-label">{t.pg.mode}</span>
                  {MODES.map((m) => (
                    <label key={m} class="choice">
                      <input
                        type="radio"
                        name={`mode-${i}`}
                        checked={(l.mode ?? 'notify_all') === m}
                        onChange={() => setLevel(i, { mode: m })}
                      />
                      <span>{t.pg.modes[m]}</span>
                    </label>
                  ))}
                </div>
              </div>
              <div class="row-actions">
                <button type="button" disabled={i === 0} onClick={() => set({ levels: move(p.levels, i, -1) })}>
                  {t.pg.moveUp}
                </button>
                <button
                  type="button"
                  disabled={i === p.levels.length - 1}
                  onClick={() => set({ levels: move(p.levels, i, 1) })}
                >
                  {t.pg.moveDown}
                </button>
                <button
                  type="button"
                  disabled={p.levels.length === 1}
                  onClick={() => set({ levels: p.levels.filter((_, j) => j !== i) })}
                >
                  {t.pg.removeLevel}
                </button>
              </div>
            </fieldset>
          </li>
        ))}
      </ol>
      <button
        type="button"
        data-testid="add-level"
        onClick={() => set({ levels: [...p.levels, { targets: [], delay_ms: 5 * 60_000, mode: 'notify_all' }] })}
      >
        {t.pg.addLevel}
      </button>
      <Problems problems={problems} t={t} />
      <div class="form-actions">
        {id !== null &&
          (confirmDelete ? (
            <span class="confirm">
              {t.pg.confirmDelete(initial.name)}{' '}
              <button type="button" onClick={() => setConfirmDelete(false)}>
                {t.cancel}
              </button>
              <button
                type="button"
                class="danger-button"
                onClick={() => api('DELETE', `/api/admin/escalation-policies/${id}`).then(onDeleted, refused)}
              >
                {t.pg.deletePolicy}
              </button>
            </span>
          ) : (
            <button type="button" class="danger-outline" onClick={() => setConfirmDelete(true)}>
              {t.pg.deletePolicy}
            </button>
          ))}
        <button type="button" onClick={onCancel}>
          {t.cancel}
        </button>
        <button type="submit" class="primary" data-testid="save-policy">
          {t.save}
        </button>
      </div>
    </form>
  );
}

// ---------- schedules ----------

/** `YYYY-MM-DDTHH:MM` in this browser's zone, for datetime-local inputs. */
function localInput(ms: number): string {
  const d = new Date(ms);
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
}

function fromLocalInput(s: string): number {
  const ms = new Date(s).getTime();
  return Number.isNaN(ms) ? 0 : ms;
}

export function Schedules({ t }: { t: Strings }) {
  const { accounts, schedules, loadSchedules, feedback, setFeedback } = useDirectory();
  const [editing, setEditing] = useState<{ id: number | null; draft: ScheduleDefinition } | null>(null);
  const personName = (id: number) => accounts.find((a) => a.id === id)?.display_name ?? `#${id}`;

  return (
    <section aria-labelledby="schedules-admin-title">
      <div class="section-head">
        <h3 id="schedules-admin-title">{t.pg.schedules}</h3>
        <button
          type="button"
          data-testid="new-schedule"
          onClick={() =>
            setEditing({
              id: null,
              draft: {
                name: '',
                time_zone: 'Asia/Shanghai',
                rotations: [
                  {
                    length: 'weekly',
                    handoff_time: '09:00',
                    start_date: localDate(),
                    participants: [],
                  },
                ],
                overrides: [],
              },
            })
          }
        >
          {t.pg.newSchedule}
        </button>
      </div>
      <FeedbackLine feedback={feedback} t={t} />
      {schedules && schedules.length > 0 && (
        <table class="grid" data-testid="schedules-admin">
          <thead>
            <tr>
              <th scope="col">{t.pg.name}</th>
              <th scope="col">{t.crisis.timeZone}</th>
              <th scope="col">{t.pg.rotations}</th>
              <th scope="col">{t.pg.onCallNow}</th>
              <th scope="col">{t.actions}</th>
            </tr>
          </thead>
          <tbody>
            {schedules.map((s) => (
              <tr key={s.id} data-schedule={s.name}>
                <th scope="row">{s.name}</th>
                <td>{s.time_zone ?? 'Asia/Shanghai'}</td>
                <td>
                  <ul class="levels-summary">
                    {s.rotations.map((r, i) => (
                      <li key={i}>
                        {t.pg.lengths[r.length]} · {r.handoff_time} · {r.start_date}:{' '}
                        {r.participants.map(personName).join(' → ')}
                      </li>
                    ))}
                  </ul>
                  {(s.overrides ?? []).length > 0 && (
                    <span class="hint">
                      {t.pg.overrides}: {(s.overrides ?? []).length}
                    </span>
                  )}
                </td>
                <td>
                  <OnCallCell id={s.id} version={s.updated_at} t={t} />
                </td>
                <td>
                  <button
                    type="button"
                    onClick={() =>
                      setEditing({
                        id: s.id,
                        draft: {
                          name: s.name,
                          time_zone: s.time_zone ?? 'Asia/Shanghai',
                          rotations: structuredClone(s.rotations),
                          overrides: structuredClone(s.overrides ?? []),
                        },
                      })
                    }
                  >
                    {t.edit}
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {editing && (
        <ScheduleEditor
          key={editing.id ?? 'new'}
          t={t}
          id={editing.id}
          initial={editing.draft}
          accounts={accounts}
          onSaved={() => {
            setEditing(null);
            setFeedback({ kind: 'ok', text: (tr) => tr.saved });
            void loadSchedules();
          }}
          onDeleted={() => {
            setEditing(null);
            setFeedback({ kind: 'ok', text: (tr) => tr.deleted });
            void loadSchedules();
          }}
          onCancel={() => setEditing(null)}
        />
      )}
    </section>
  );
}

function OnCallCell({ id, version, t }: { id: number; version: number; t: Strings }) {
  const lang = useLang();
  const [now, setNow] = useState<ScheduleOnCall | null>(null);
  useEffect(() => {
    api<ScheduleOnCall>('GET', `/api/schedules/${id}/oncall`).then(setNow, () => setNow(null));
  }, [id, version]);
  if (!now) return <span>—</span>;
  return (
    <span>
      <strong>{now.person?.name ?? t.crisis.nobody}</strong>
      {now.until ? ` ${t.pg.until(dateTime(now.until, lang))}` : ''}
    </span>
  );
}

function ScheduleEditor({
  t,
  id,
  initial,
  accounts,
  onSaved,
  onDeleted,
  onCancel,
}: {
  t: Strings;
  id: number | null;
  initial: ScheduleDefinition;
  accounts: AccountView[];
  onSaved: () => void;
  onDeleted: () => void;
  onCancel: () => void;
}) {
  const [s, setS] = useState<ScheduleDefinition>(initial);
  const [problems, setProblems] = useState<FieldError[]>([]);
  const [confirmDelete, setConfirmDelete] = useState(false);
  const set = (patch: Partial<ScheduleDefinition>) => setS({ ...s, ...patch });
  const setRotation = (i: number, patch: Partial<Rotation>) =>
    set({ rotations: s.rotations.map((r, j) => (j === i ? { ...r, ...patch } : r)) });
  const overrides = s.overrides ?? [];
  const setOverride = (i: number, patch: Partial<Override>) =>
    set({ overrides: overrides.map((o, j) => (j === i ? { ...o, ...patch } : o)) });
  const people = accounts.filter((a) => !a.disabled);
  const nameOf = (pid: number) => accounts.find((a) => a.id === pid)?.display_name ?? `#${pid}`;
  const refused = (e: unknown) =>
    setProblems(e instanceof ApiError && e.fields.length > 0 ? e.fields : [{ field: '', message: errorText(e, t) }]);

  return (
    <form
      class="panel schedule-editor"
      aria-label={id === null ? t.pg.newSchedule : `${t.edit} ${initial.name}`}
      data-testid="schedule-editor"
      onSubmit={(e) => {
        e.preventDefault();
        setProblems([]);
        const body: ScheduleDefinition = {
          ...s,
          name: s.name.trim(),
          time_zone: (s.time_zone ?? '').trim() || undefined,
        };
        const req =
          id === null ? api('POST', '/api/admin/schedules', body) : api('PUT', `/api/admin/schedules/${id}`, body);
        req.then(onSaved, refused);
      }}
    >
      <h4>{id === null ? t.pg.newSchedule : `${t.edit}: ${initial.name}`}</h4>
      <div class="form-grid">
        <label>
          {t.pg.name}
          <input
            type="text"
            name="name"
            required
            maxLength={80}
            value={s.name}
            onInput={(e) => set({ name: e.currentTarget.value })}
          />
        </label>
        <label>
          {t.pg.timeZone}
          <input
            type="text"
            name="time_zone"
            list="time-zones"
            value={s.time_zone ?? ''}
            onInput={(e) => set({ time_zone: e.currentTarget.value })}
          />
          <datalist id="time-zones">
            {ZONES.map((z) => (
              <option key={z} value={z} />
            ))}
          </datalist>
        </label>
      </div>
      <ol class="levels">
        {s.rotations.map((r, i) => (
          <li key={i}>
            <fieldset data-rotation={i + 1}>
              <legend>{t.pg.rotation(i + 1)}</legend>
              <div class="form-grid">
                <label>
                  {t.pg.length}
                  <select
                    value={r.length}
                    onChange={(e) => setRotation(i, { length: e.currentTarget.value as RotationLength })}
                  >
                    {LENGTHS.map((l) => (
                      <option key={l} value={l}>
                        {t.pg.lengths[l]}
                      </option>
                    ))}
                  </select>
                </label>
                <label>
                  {t.pg.handoff}
                  <input
                    type="time"
                    value={r.handoff_time}
                    onInput={(e) => setRotation(i, { handoff_time: e.currentTarget.value })}
                  />
                </label>
                <label>
                  {t.pg.startDate}
                  <input
                    type="date"
                    value={r.start_date}
                    onInput={(e) => setRotation(i, { start_date: e.currentTarget.value })}
                  />
                </label>
              </div>
              <p class="field-label">{t.pg.participants}</p>
              <ol class="rows participants">
                {r.participants.map((pid, j) => (
                  <li key={`${pid}-${j}`}>
                    <span class="skill-name">{nameOf(pid)}</span>
                    <button
                      type="button"
                      disabled={j === 0}
                      onClick={() => setRotation(i, { participants: move(r.participants, j, -1) })}
                    >
                      {t.pg.moveUp}
                    </button>
                    <button
                      type="button"
                      disabled={j === r.participants.length - 1}
                      onClick={() => setRotation(i, { participants: move(r.participants, j, 1) })}
                    >
                      {t.pg.moveDown}
                    </button>
                    <button
                      type="button"
                      onClick={() => setRotation(i, { participants: r.participants.filter((_, k) => k !== j) })}
                    >
                      {t.remove}
                    </button>
                  </li>
                ))}
              </ol>
              <label>
                {t.pg.addParticipant}{' '}
                <select
                  value=""
                  name="add-participant"
                  onChange={(e) => {
                    const pid = Number(e.currentTarget.value);
                    if (pid) setRotation(i, { participants: [...r.participants, pid] });
                    e.currentTarget.value = '';
                  }}
                >
                  <option value="">—</option>
                  {people.map((a) => (
                    <option key={a.id} value={String(a.id)}>
                      {a.display_name} ({t.roles[a.role]})
                    </option>
                  ))}
                </select>
              </label>
              {s.rotations.length > 1 && (
                <div class="row-actions">
                  <button type="button" onClick={() => set({ rotations: s.rotations.filter((_, j) => j !== i) })}>
                    {t.pg.removeRotation}
                  </button>
                </div>
              )}
            </fieldset>
          </li>
        ))}
      </ol>
      <button
        type="button"
        onClick={() =>
          set({
            rotations: [
              ...s.rotations,
              {
                length: 'weekly',
                handoff_time: '09:00',
                start_date: localDate(),
                participants: [],
              },
            ],
          })
        }
      >
        {t.pg.addRotation}
      </button>
      <fieldset class="overrides">
        <legend>{t.pg.overrides}</legend>
        <p class="hint">{t.pg.overrideHint}</p>
        <ul class="rows">
          {overrides.map((o, i) => (
            <li key={i} data-override={i + 1}>
              <label>
                {t.pg.from}{' '}
                <input
                  type="datetime-local"
                  name="override-start"
                  value={localInput(o.start)}
                  onInput={(e) => setOverride(i, { start: fromLocalInput(e.currentTarget.value) })}
                />
              </label>
              <label>
                {t.pg.to}{' '}
                <input
                  type="datetime-local"
                  name="override-end"
                  value={localInput(o.end)}
                  onInput={(e) => setOverride(i, { end: fromLocalInput(e.currentTarget.value) })}
                />
              </label>
              <label>
                {t.pg.person}{' '}
                <select
                  name="override-person"
                  value={String(o.person)}
                  onChange={(e) => setOverride(i, { person: Number(e.currentTarget.value) })}
                >
                  {people.map((a) => (
                    <option key={a.id} value={String(a.id)}>
                      {a.display_name}
                    </option>
                  ))}
                </select>
              </label>
              <button type="button" onClick={() => set({ overrides: overrides.filter((_, j) => j !== i) })}>
                {t.remove}
              </button>
            </li>
          ))}
        </ul>
        <button
          type="button"
          data-testid="add-override"
          onClick={() => {
            const start = Math.floor(Date.now() / 60_000) * 60_000;
            const person = people.find((a) => a.role === 'crisis_lead')?.id ?? people[0]?.id ?? 0;
            set({ overrides: [...overrides, { start, end: start + 12 * 3_600_000, person }] });
          }}
        >
          {t.pg.addOverride}
        </button>
      </fieldset>
      <Problems problems={problems} t={t} />
      <div class="form-actions">
        {id !== null &&
          (confirmDelete ? (
            <span class="confirm">
              {t.pg.confirmDelete(initial.name)}{' '}
              <button type="button" onClick={() => setConfirmDelete(false)}>
                {t.cancel}
              </button>
              <button
                type="button"
                class="danger-button"
                onClick={() => api('DELETE', `/api/admin/schedules/${id}`).then(onDeleted, refused)}
              >
                {t.pg.deleteSchedule}
              </button>
            </span>
          ) : (
            <button type="button" class="danger-outline" onClick={() => setConfirmDelete(true)}>
              {t.pg.deleteSchedule}
            </button>
          ))}
        <button type="button" onClick={onCancel}>
          {t.cancel}
        </button>
        <button type="submit" class="primary" data-testid="save-schedule">
          {t.save}
        </button>
      </div>
    </form>
  );
}

// ---------- paging addresses ----------

export function Addresses({ t }: { t: Strings }) {
  const { accounts, feedback, setFeedback } = useDirectory();
  const [editing, setEditing] = useState<AccountView | null>(null);
  const people = accounts.filter((a) => !a.disabled);
  return (
    <section aria-labelledby="addresses-title">
      <h3 id="addresses-title">{t.pg.addresses}</h3>
      <p class="hint">{t.pg.consoleAlways}</p>
      <FeedbackLine feedback={feedback} t={t} />
      <table class="grid" data-testid="addresses">
        <thead>
          <tr>
            <th scope="col">{t.accountName}</th>
            <th scope="col">{t.role}</th>
            <th scope="col">{t.actions}</th>
          </tr>
        </thead>
        <tbody>
          {people.map((a) => (
            <tr key={a.id} data-account={a.name}>
              <th scope="row">{a.display_name}</th>
              <td>{t.roles[a.role]}</td>
              <td>
                <button type="button" onClick={() => setEditing(a)}>
                  {t.pg.editAddresses}
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {editing && (
        <AddressEditor
          key={editing.id}
          t={t}
          account={editing}
          onSaved={() => {
            setEditing(null);
            setFeedback({ kind: 'ok', text: (tr) => tr.saved });
          }}
          onCancel={() => setEditing(null)}
        />
      )}
    </section>
  );
}

function AddressEditor({
  t,
  account,
  onSaved,
  onCancel,
}: {
  t: Strings;
  account: AccountView;
  onSaved: () => void;
  onCancel: () => void;
}) {
  const [form, setForm] = useState<{ webhook: string; email: string } | null>(null);
  const [problems, setProblems] = useState<FieldError[]>([]);
  useEffect(() => {
    api<PagingAddresses>('GET', `/api/admin/paging-addresses/${account.id}`).then(
      (a) => setForm({ webhook: a.webhook ?? '', email: a.email ?? '' }),
      (e) => setProblems([{ field: '', message: errorText(e, t) }]),
    );
  }, [account.id]);
  const errorOf = (field: string) => problems.find((p) => p.field === field);
  return (
    <form
      class="panel form-grid"
      aria-label={t.pg.addressesOf(account.display_name)}
      data-testid="address-editor"
      noValidate
      onSubmit={(e) => {
        e.preventDefault();
        if (!form) return;
        setProblems([]);
        const body: PagingAddresses = { webhook: form.webhook.trim() || null, email: form.email.trim() || null };
        api('PUT', `/api/admin/paging-addresses/${account.id}`, body).then(onSaved, (err) =>
          setProblems(
            err instanceof ApiError && err.fields.length > 0 ? err.fields : [{ field: '', message: errorText(err, t) }],
          ),
        );
      }}
    >
      <h4>{t.pg.addressesOf(account.display_name)}</h4>
      {form && (
        <>
          <label class={errorOf('webhook') ? 'invalid' : ''}>
            {t.pg.webhook}
            <input
              type="url"
              name="webhook"
              value={form.webhook}
              aria-invalid={errorOf('webhook') ? true : undefined}
              aria-describedby={errorOf('webhook') ? 'webhook-error' : undefined}
              onInput={(e) => setForm({ ...form, webhook: e.currentTarget.value })}
            />
            {errorOf('webhook') && (
              <span class="field-error" id="webhook-error">
                {errorOf('webhook')!.message}
              </span>
            )}
          </label>
          <label class={errorOf('email') ? 'invalid' : ''}>
            {t.pg.email}
            <input
              type="email"
              name="email"
              value={form.email}
              aria-invalid={errorOf('email') ? true : undefined}
              aria-describedby={errorOf('email') ? 'email-error' : undefined}
              onInput={(e) => setForm({ ...form, email: e.currentTarget.value })}
            />
            {errorOf('email') && (
              <span class="field-error" id="email-error">
                {errorOf('email')!.message}
              </span>
            )}
          </label>
        </>
      )}
      {problems
        .filter((p) => !p.field)
        .map((p, i) => (
          <p key={i} class="problem" role="alert">
            {p.message}
          </p>
        ))}
      <div class="form-actions">
        <button type="button" onClick={onCancel}>
          {t.cancel}
        </button>
        <button type="submit" class="primary" disabled={!form} data-testid="save-addresses">
          {t.save}
        </button>
      </div>
    </form>
  );
}
