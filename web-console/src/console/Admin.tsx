// Administration (admin role): accounts, the skill catalogue, queues, and paging (escalation
// policies, on-call schedules, paging addresses: AdminPaging.tsx). Loaded on first use.
import { useEffect, useState } from 'preact/hooks';
import type {
  AccountPatch,
  AccountView,
  NewAccountRequest,
  OpeningHours,
  QueueDefinition,
  Role,
  SkillInfo,
  SkillLevel,
} from '../proto/hotline';
import { api } from '../shared/api';
import { errorText } from '../shared/errors';
import { Addresses, Policies, Schedules } from './AdminPaging';
import type { Strings } from './strings';

const ROLES: Role[] = ['operator', 'crisis_lead', 'supervisor', 'admin'];

type Feedback = { kind: 'ok' | 'error'; text: string } | null;

function FeedbackLine({ feedback }: { feedback: Feedback }) {
  if (!feedback) return <p class="feedback" role="status" />;
  return feedback.kind === 'ok' ? (
    <p class="feedback ok" role="status">
      {feedback.text}
    </p>
  ) : (
    <p class="feedback problem" role="alert">
      {feedback.text}
    </p>
  );
}

const splitList = (s: string) =>
  s
    .split(/[,，\s]+/)
    .map((x) => x.trim())
    .filter(Boolean);

export function Admin({ t, section, onQueuesChanged }: { t: Strings; section: string; onQueuesChanged: () => void }) {
  const tabs: [string, string][] = [
    ['accounts', t.accounts],
    ['skills', t.skills],
    ['queues', t.queuesAdmin],
    ['policies', t.pg.policies],
    ['schedules', t.pg.schedules],
    ['addresses', t.pg.addresses],
  ];
  const current = tabs.some(([id]) => id === section) ? section : 'accounts';
  return (
    <div class="admin">
      <h2>{t.admin}</h2>
      <nav class="subnav" aria-label={t.admin}>
        {tabs.map(([id, label]) => (
          <a key={id} href={`#/admin/${id}`} aria-current={current === id ? 'page' : undefined}>
            {label}
          </a>
        ))}
      </nav>
      {current === 'accounts' && <Accounts t={t} />}
      {current === 'skills' && <Skills t={t} />}
      {current === 'queues' && <Queues t={t} onChanged={onQueuesChanged} />}
      {current === 'policies' && <Policies t={t} />}
      {current === 'schedules' && <Schedules t={t} />}
      {current === 'addresses' && <Addresses t={t} />}
    </div>
  );
}

// ---------- accounts ----------

function Accounts({ t }: { t: Strings }) {
  const [accounts, setAccounts] = useState<AccountView[] | null>(null);
  const [skills, setSkills] = useState<SkillInfo[]>([]);
  const [feedback, setFeedback] = useState<Feedback>(null);
  const [editing, setEditing] = useState<{ id: number; what: 'edit' | 'password' | 'skills' } | null>(null);
  const [creating, setCreating] = useState(false);

  const load = () => {
    api<AccountView[]>('GET', '/api/admin/accounts')
      .then(setAccounts)
      .catch((e) => setFeedback({ kind: 'error', text: errorText(e, t) }));
    api<SkillInfo[]>('GET', '/api/skills')
      .then(setSkills)
      .catch(() => undefined);
  };
  useEffect(load, []);

  const replace = (a: AccountView) => setAccounts((list) => list?.map((x) => (x.id === a.id ? a : x)) ?? [a]);
  const selected = accounts?.find((a) => a.id === editing?.id) ?? null;

  return (
    <section aria-labelledby="accounts-title">
      <div class="section-head">
        <h3 id="accounts-title">{t.accounts}</h3>
        <button type="button" onClick={() => setCreating((c) => !c)} aria-expanded={creating}>
          {t.newAccount}
        </button>
      </div>
      <FeedbackLine feedback={feedback} />
      {creating && (
        <NewAccount
          t={t}
          onCreated={(a) => {
            setAccounts((list) => [...(list ?? []), a]);
            setCreating(false);
            setFeedback({ kind: 'ok', text: t.created });
          }}
          onError={(e) => setFeedback({ kind: 'error', text: errorText(e, t) })}
        />
      )}
      {accounts === null ? (
        <p>{t.loading}</p>
      ) : (
        <table class="grid" data-testid="accounts">
          <thead>
            <tr>
              <th scope="col">{t.accountName}</th>
              <th scope="col">{t.displayName}</th>
              <th scope="col">{t.role}</th>
              <th scope="col">{t.languages}</th>
              <th scope="col">{t.capacity}</th>
              <th scope="col">{t.skills}</th>
              <th scope="col">{t.state}</th>
              <th scope="col">{t.actions}</th>
            </tr>
          </thead>
          <tbody>
            {accounts.map((a) => (
              <tr key={a.id} data-account={a.name} class={a.disabled ? 'muted' : ''}>
                <th scope="row">
                  {a.name} <span class="hint">#{a.id}</span>
                </th>
                <td>{a.display_name}</td>
                <td>{t.roles[a.role]}</td>
                <td>{a.languages.join(', ') || '—'}</td>
                <td>
                  {a.chat_capacity} / {a.voice_capacity}
                  {!a.voice_excludes_chat && <span class="hint"> · {t.chatDuringCalls}</span>}
                </td>
                <td>{a.skills.map((s) => `${s.skill} ${s.proficiency}`).join(', ') || '—'}</td>
                <td>{a.disabled ? t.disabled : t.enabled}</td>
                <td>
                  <div class="row-actions">
                    <button type="button" onClick={() => setEditing({ id: a.id, what: 'edit' })}>
                      {t.edit}
                    </button>
                    <button type="button" onClick={() => setEditing({ id: a.id, what: 'skills' })}>
                      {t.skills}
                    </button>
                    <button type="button" onClick={() => setEditing({ id: a.id, what: 'password' })}>
                      {t.resetPassword}
                    </button>
                  </div>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {selected && editing?.what === 'edit' && (
        <EditAccount
          key={selected.id}
          t={t}
          account={selected}
          onSaved={(a) => {
            replace(a);
            setEditing(null);
            setFeedback({ kind: 'ok', text: t.saved });
          }}
          onCancel={() => setEditing(null)}
          onError={(e) => setFeedback({ kind: 'error', text: errorText(e, t) })}
        />
      )}
      {selected && editing?.what === 'skills' && (
        <AccountSkills
          key={selected.id}
          t={t}
          account={selected}
          catalogue={skills}
          onSaved={(a) => {
            replace(a);
            setEditing(null);
            setFeedback({ kind: 'ok', text: t.saved });
          }}
          onCancel={() => setEditing(null)}
          onError={(e) => setFeedback({ kind: 'error', text: errorText(e, t) })}
        />
      )}
      {selected && editing?.what === 'password' && (
        <ResetPassword
          key={selected.id}
          t={t}
          account={selected}
          onDone={() => {
            setEditing(null);
            setFeedback({ kind: 'ok', text: t.passwordReset });
          }}
          onCancel={() => setEditing(null)}
          onError={(e) => setFeedback({ kind: 'error', text: errorText(e, t) })}
        />
      )}
    </section>
  );
}

/** An account's capacities per channel, and whether a voice contact keeps chats away. */
type Capacities = { chat: number; voice: number; voiceExcludesChat: boolean };

function CapacityFields({ t, form, set }: { t: Strings; form: Capacities; set: (patch: Partial<Capacities>) => void }) {
  return (
    <>
      <label>
        {t.chatCapacity}
        <input
          type="number"
          min={0}
          max={8}
          value={form.chat}
          onInput={(e) => set({ chat: Number(e.currentTarget.value) })}
        />
      </label>
      <label>
        {t.voiceCapacity}
        <input
          type="number"
          min={0}
          max={1}
          value={form.voice}
          onInput={(e) => set({ voice: Number(e.currentTarget.value) })}
        />
      </label>
      <label class="check">
        <input
          type="checkbox"
          name="voice_excludes_chat"
          checked={form.voiceExcludesChat}
          onChange={(e) => set({ voiceExcludesChat: e.currentTarget.checked })}
        />
        <span>{t.voiceExcludesChat}</span>
      </label>
    </>
  );
}

function NewAccount({
  t,
  onCreated,
  onError,
}: {
  t: Strings;
  onCreated: (a: AccountView) => void;
  onError: (e: unknown) => void;
}) {
  const [form, setForm] = useState({
    name: '',
    display_name: '',
    role: 'operator' as Role,
    password: '',
    languages: 'zh',
    chat: 2,
    voice: 1,
    voiceExcludesChat: true,
  });
  const set = (patch: Partial<typeof form>) => setForm({ ...form, ...patch });
  return (
    <form
      class="panel form-grid"
      aria-label={t.newAccount}
      onSubmit={(e) => {
        e.preventDefault();
        const body: NewAccountRequest = {
          name: form.name.trim(),
          display_name: form.display_name.trim() || form.name.trim(),
          role: form.role,
          password: form.password,
          languages: splitList(form.languages),
          chat_capacity: form.chat,
          voice_capacity: form.voice,
          voice_excludes_chat: form.voiceExcludesChat,
        };
        api<AccountView>('POST', '/api/admin/accounts', body).then(onCreated, onError);
      }}
    >
      <label>
        {t.accountName}
        <input
          type="text"
          required
          value={form.name}
          onInput={(e) => set({ name: e.currentTarget.value })}
          autoComplete="off"
        />
      </label>
      <label>
        {t.displayName}
        <input type="text" value={form.display_name} onInput={(e) => set({ display_name: e.currentTarget.value })} />
      </label>
      <label>
        {t.role}
        <select value={form.role} onChange={(e) => set({ role: e.currentTarget.value as Role })}>
          {ROLES.map((r) => (
            <option key={r} value={r}>
              {t.roles[r]}
            </option>
          ))}
        </select>
      </label>
      <label>
        {t.initialPassword}
        <input
          type="password"
          required
          minLength={10}
          value={form.password}
          onInput={(e) => set({ password: e.currentTarget.value })}
          autoComplete="new-password"
        />
      </label>
      <label>
        {t.languages} <span class="hint">{t.languagesHint}</span>
        <input type="text" value={form.languages} onInput={(e) => set({ languages: e.currentTarget.value })} />
      </label>
      <CapacityFields t={t} form={form} set={set} />
      <div class="form-actions">
        <button type="submit" class="primary">
          {t.create}
        </button>
      </div>
    </form>
  );
}

function EditAccount({
  t,
  account,
  onSaved,
  onCancel,
  onError,
}: {
  t: Strings;
  account: AccountView;
  onSaved: (a: AccountView) => void;
  onCancel: () => void;
  onError: (e: unknown) => void;
}) {
  const [form, setForm] = useState({
    display_name: account.display_name,
    role: account.role,
    languages: account.languages.join(', '),
    chat: account.chat_capacity,
    voice: account.voice_capacity,
    voiceExcludesChat: account.voice_excludes_chat,
    disabled: account.disabled,
  });
  const set = (patch: Partial<typeof form>) => setForm({ ...form, ...patch });
  return (
    <form
      class="panel form-grid"
      aria-label={`${t.edit} ${account.name}`}
      data-testid="edit-account"
      onSubmit={(e) => {
        e.preventDefault();
        const patch: AccountPatch = {
          display_name: form.display_name.trim(),
          role: form.role,
          languages: splitList(form.languages),
          chat_capacity: form.chat,
          voice_capacity: form.voice,
          voice_excludes_chat: form.voiceExcludesChat,
          disabled: form.disabled,
        };
        api<AccountView>('PATCH', `/api/admin/accounts/${account.id}`, patch).then(onSaved, onError);
      }}
    >
      <h4>
        {t.edit}: {account.name}
      </h4>
      <label>
        {t.displayName}
        <input type="text" value={form.display_name} onInput={(e) => set({ display_name: e.currentTarget.value })} />
      </label>
      <label>
        {t.role}
        <select value={form.role} onChange={(e) => set({ role: e.currentTarget.value as Role })}>
          {ROLES.map((r) => (
            <option key={r} value={r}>
              {t.roles[r]}
            </option>
          ))}
        </select>
      </label>
      <label>
        {t.languages} <span class="hint">{t.languagesHint}</span>
        <input
          type="text"
          name="languages"
          value={form.languages}
          onInput={(e) => set({ languages: e.currentTarget.value })}
        />
      </label>
      <CapacityFields t={t} form={form} set={set} />
      <label class="check">
        <input type="checkbox" checked={form.disabled} onChange={(e) => set({ disabled: e.currentTarget.checked })} />
        <span>{t.disabled}</span>
      </label>
      <div class="form-actions">
        <button type="button" onClick={onCancel}>
          {t.cancel}
        </button>
        <button type="submit" class="primary">
          {t.save}
        </button>
      </div>
    </form>
  );
}

function AccountSkills({
  t,
  account,
  catalogue,
  onSaved,
  onCancel,
  onError,
}: {
  t: Strings;
  account: AccountView;
  catalogue: SkillInfo[];
  onSaved: (a: AccountView) => void;
  onCancel: () => void;
  onError: (e: unknown) => void;
}) {
  const [rows, setRows] = useState<SkillLevel[]>(account.skills);
  const unused = catalogue.filter((s) => !rows.some((r) => r.skill === s.skill));
  return (
    <form
      class="panel"
      aria-label={t.skillsOf(account.name)}
      onSubmit={(e) => {
        e.preventDefault();
        api<AccountView>('PUT', `/api/admin/accounts/${account.id}/skills`, rows).then(onSaved, onError);
      }}
    >
      <h4>{t.skillsOf(account.name)}</h4>
      <p class="hint">{t.proficiencyHint}</p>
      <ul class="rows">
        {rows.map((r, i) => (
          <li key={r.skill}>
            <span class="skill-name">{r.skill}</span>
            <label>
              {t.proficiency}{' '}
              <select
                value={r.proficiency}
                onChange={(e) =>
                  setRows(rows.map((x, j) => (j === i ? { ...x, proficiency: Number(e.currentTarget.value) } : x)))
                }
              >
                {[1, 2, 3, 4, 5].map((n) => (
                  <option key={n} value={n}>
                    {n}
                  </option>
                ))}
              </select>
            </label>
            <button type="button" onClick={() => setRows(rows.filter((_, j) => j !== i))}>
              {t.remove}
            </button>
          </li>
        ))}
      </ul>
      {unused.length > 0 && (
        <label>
          {t.addSkill}{' '}
          <select
            value=""
            onChange={(e) => {
              const skill = e.currentTarget.value;
              if (skill) setRows([...rows, { skill, proficiency: 3 }]);
            }}
          >
            <option value="">—</option>
            {unused.map((s) => (
              <option key={s.skill} value={s.skill}>
                {s.skill} — {s.description}
              </option>
            ))}
          </select>
        </label>
      )}
      <div class="form-actions">
        <button type="button" onClick={onCancel}>
          {t.cancel}
        </button>
        <button type="submit" class="primary">
          {t.save}
        </button>
      </div>
    </form>
  );
}

function ResetPassword({
  t,
  account,
  onDone,
  onCancel,
  onError,
}: {
  t: Strings;
  account: AccountView;
  onDone: () => void;
  onCancel: () => void;
  onError: (e: unknown) => void;
}) {
  const [password, setPassword] = useState('');
  return (
    <form
      class="panel form-grid"
      aria-label={t.newPasswordFor(account.name)}
      onSubmit={(e) => {
        e.preventDefault();
        api('POST', `/api/admin/accounts/${account.id}/password`, { password }).then(onDone, onError);
      }}
    >
      <label>
        {t.newPasswordFor(account.name)}
        <input
          type="password"
          required
          minLength={10}
          value={password}
          onInput={(e) => setPassword(e.currentTarget.value)}
          autoComplete="new-password"
        />
      </label>
      <div class="form-actions">
        <button type="button" onClick={onCancel}>
          {t.cancel}
        </button>
        <button type="submit" class="primary">
          {t.resetPassword}
        </button>
      </div>
    </form>
  );
}

// ---------- skills ----------

function Skills({ t }: { t: Strings }) {
  const [skills, setSkills] = useState<SkillInfo[] | null>(null);
  const [form, setForm] = useState({ skill: '', description: '' });
  const [feedback, setFeedback] = useState<Feedback>(null);
  const load = () => {
    api<SkillInfo[]>('GET', '/api/skills').then(setSkills, (e) =>
      setFeedback({ kind: 'error', text: errorText(e, t) }),
    );
  };
  useEffect(load, []);
  return (
    <section aria-labelledby="skills-title">
      <h3 id="skills-title">{t.skills}</h3>
      <FeedbackLine feedback={feedback} />
      {skills && (
        <table class="grid" data-testid="skills">
          <thead>
            <tr>
              <th scope="col">{t.skill}</th>
              <th scope="col">{t.description}</th>
              <th scope="col">{t.actions}</th>
            </tr>
          </thead>
          <tbody>
            {skills.map((s) => (
              <tr key={s.skill}>
                <th scope="row">{s.skill}</th>
                <td>{s.description}</td>
                <td>
                  <button type="button" onClick={() => setForm({ skill: s.skill, description: s.description })}>
                    {t.edit}
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <form
        class="panel form-grid"
        aria-label={t.addSkill}
        onSubmit={(e) => {
          e.preventDefault();
          const skill = form.skill.trim();
          api('PUT', `/api/admin/skills/${encodeURIComponent(skill)}`, { description: form.description.trim() }).then(
            () => {
              setFeedback({ kind: 'ok', text: t.saved });
              setForm({ skill: '', description: '' });
              load();
            },
            (e) => setFeedback({ kind: 'error', text: errorText(e, t) }),
          );
        }}
      >
        <label>
          {t.skillId}
          <input
            type="text"
            required
            pattern="[a-z0-9_\-]{1,40}"
            value={form.skill}
            onInput={(e) => setForm({ ...form, skill: e.currentTarget.value })}
          />
        </label>
        <label>
          {t.description}
          <input
            type="text"
            value={form.description}
            onInput={(e) => setForm({ ...form, description: e.currentTarget.value })}
          />
        </label>
        <div class="form-actions">
          <button type="submit" class="primary">
            {t.save}
          </button>
        </div>
      </form>
    </section>
  );
}

// ---------- queues ----------

/** A queue with every optional part spelled out (the server leaves defaults out). */
type Queue = Required<QueueDefinition>;

function complete(q: QueueDefinition): Queue {
  return {
    required_skills: [],
    languages: [],
    relaxation: [],
    never_relax: false,
    overflow_to: null,
    max_wait_ms: null,
    opening_hours: { kind: 'always' },
    closed_message: '',
    alternatives: [],
    ...q,
  };
}

function blankQueue(): Queue {
  return {
    id: '',
    name: '',
    required_skills: [],
    languages: [],
    relaxation: [],
    never_relax: false,
    overflow_to: null,
    max_wait_ms: null,
    opening_hours: { kind: 'always' },
    // Left empty, the server's own bilingual message and numbers apply (see `definition`).
    closed_message: '',
    alternatives: [],
  };
}

/**
 * The queue as sent: a blank closed message or an empty list of numbers is left out, so the
 * server puts its standard ones (Chinese and English) in their place. The console keeps no copy
 * of them to drift from the server's; a queue must list numbers anyway (an empty list is
 * refused).
 */
function definition(q: Queue, languages: string): QueueDefinition {
  const { closed_message, alternatives, ...rest } = q;
  return {
    ...rest,
    id: q.id.trim(),
    languages: splitList(languages),
    ...(closed_message.trim() ? { closed_message } : {}),
    ...(alternatives.length ? { alternatives } : {}),
  };
}

function Queues({ t, onChanged }: { t: Strings; onChanged: () => void }) {
  const [queues, setQueues] = useState<Queue[] | null>(null);
  const [skills, setSkills] = useState<SkillInfo[]>([]);
  const [editing, setEditing] = useState<{ draft: Queue; isNew: boolean } | null>(null);
  const [feedback, setFeedback] = useState<Feedback>(null);
  const load = () => {
    api<QueueDefinition[]>('GET', '/api/queues').then(
      (list) => setQueues(list.map(complete)),
      (e) => setFeedback({ kind: 'error', text: errorText(e, t) }),
    );
    api<SkillInfo[]>('GET', '/api/skills').then(setSkills, () => undefined);
  };
  useEffect(load, []);
  const hours = (h: OpeningHours) =>
    h.kind === 'always'
      ? t.always
      : `${t.daily} ${minutesToTime(h.open_minute)}–${minutesToTime(h.close_minute)} (UTC${h.utc_offset_minutes >= 0 ? '+' : ''}${h.utc_offset_minutes / 60})`;
  return (
    <section aria-labelledby="queues-title">
      <div class="section-head">
        <h3 id="queues-title">{t.queuesAdmin}</h3>
        <button type="button" onClick={() => setEditing({ draft: blankQueue(), isNew: true })}>
          {t.newQueue}
        </button>
      </div>
      <FeedbackLine feedback={feedback} />
      {queues && (
        <table class="grid" data-testid="queues">
          <thead>
            <tr>
              <th scope="col">{t.code}</th>
              <th scope="col">{t.name}</th>
              <th scope="col">{t.requiredSkills}</th>
              <th scope="col">{t.languages}</th>
              <th scope="col">{t.openingHours}</th>
              <th scope="col">{t.overflowTo}</th>
              <th scope="col">{t.actions}</th>
            </tr>
          </thead>
          <tbody>
            {queues.map((q) => (
              <tr key={q.id}>
                <th scope="row">{q.id}</th>
                <td>{q.name}</td>
                <td>{q.required_skills.map((r) => `${r.skill} ≥${r.min_proficiency}`).join(', ') || '—'}</td>
                <td>{q.languages.join(', ') || '—'}</td>
                <td>{hours(q.opening_hours)}</td>
                <td>{q.overflow_to ?? '—'}</td>
                <td>
                  <button type="button" onClick={() => setEditing({ draft: structuredClone(q), isNew: false })}>
                    {t.edit}
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {editing && queues && (
        <QueueEditor
          key={editing.draft.id || 'new'}
          t={t}
          initial={editing.draft}
          isNew={editing.isNew}
          queues={queues}
          skills={skills}
          onSaved={() => {
            setEditing(null);
            setFeedback({ kind: 'ok', text: t.saved });
            load();
            onChanged();
          }}
          onDeleted={() => {
            setEditing(null);
            setFeedback({ kind: 'ok', text: t.deleted });
            load();
            onChanged();
          }}
          onCancel={() => setEditing(null)}
          onError={(e) => setFeedback({ kind: 'error', text: errorText(e, t) })}
        />
      )}
    </section>
  );
}

function minutesToTime(m: number): string {
  return `${String(Math.floor(m / 60) % 24).padStart(2, '0')}:${String(m % 60).padStart(2, '0')}`;
}

function timeToMinutes(s: string): number {
  const [h, m] = s.split(':').map(Number);
  return (h || 0) * 60 + (m || 0);
}

function QueueEditor({
  t,
  initial,
  isNew,
  queues,
  skills,
  onSaved,
  onDeleted,
  onCancel,
  onError,
}: {
  t: Strings;
  initial: Queue;
  isNew: boolean;
  queues: Queue[];
  skills: SkillInfo[];
  onSaved: () => void;
  onDeleted: () => void;
  onCancel: () => void;
  onError: (e: unknown) => void;
}) {
  const [q, setQ] = useState<Queue>(initial);
  const [languages, setLanguages] = useState(initial.languages.join(', '));
  const [confirmDelete, setConfirmDelete] = useState(false);
  const set = (patch: Partial<Queue>) => setQ({ ...q, ...patch });
  const h = q.opening_hours;
  const unusedSkills = skills.filter((s) => !q.required_skills.some((r) => r.skill === s.skill));

  return (
    <form
      class="panel queue-editor"
      aria-label={isNew ? t.newQueue : `${t.edit} ${q.id}`}
      onSubmit={(e) => {
        e.preventDefault();
        const body = definition(q, languages);
        api<QueueDefinition>('PUT', `/api/admin/queues/${encodeURIComponent(body.id)}`, body).then(onSaved, onError);
      }}
    >
      <h4>{isNew ? t.newQueue : `${t.edit}: ${q.id}`}</h4>
      <div class="form-grid">
        <label>
          {t.queueId}
          <input
            type="text"
            required
            pattern="[a-z0-9_\-]{1,40}"
            value={q.id}
            readOnly={!isNew}
            onInput={(e) => set({ id: e.currentTarget.value })}
          />
        </label>
        <label>
          {t.queueName}
          <input type="text" required value={q.name} onInput={(e) => set({ name: e.currentTarget.value })} />
        </label>
        <label>
          {t.languages} <span class="hint">{t.languagesHint}</span>
          <input type="text" value={languages} onInput={(e) => setLanguages(e.currentTarget.value)} />
        </label>
        <label>
          {t.overflowTo}
          <select value={q.overflow_to ?? ''} onChange={(e) => set({ overflow_to: e.currentTarget.value || null })}>
            <option value="">{t.none}</option>
            {queues
              .filter((x) => x.id !== q.id)
              .map((x) => (
                <option key={x.id} value={x.id}>
                  {x.name}
                </option>
              ))}
          </select>
        </label>
        <label>
          {t.maxWait}
          <input
            type="number"
            min={0}
            value={q.max_wait_ms === null ? '' : Math.round(q.max_wait_ms / 1000)}
            onInput={(e) =>
              set({ max_wait_ms: e.currentTarget.value === '' ? null : Number(e.currentTarget.value) * 1000 })
            }
          />
        </label>
      </div>

      <fieldset>
        <legend>{t.requiredSkills}</legend>
        <ul class="rows">
          {q.required_skills.map((r, i) => (
            <li key={r.skill}>
              <span class="skill-name">{r.skill}</span>
              <label>
                {t.minProficiency}{' '}
                <select
                  value={r.min_proficiency}
                  onChange={(e) =>
                    set({
                      required_skills: q.required_skills.map((x, j) =>
                        j === i ? { ...x, min_proficiency: Number(e.currentTarget.value) } : x,
                      ),
                    })
                  }
                >
                  {[1, 2, 3, 4, 5].map((n) => (
                    <option key={n} value={n}>
                      {n}
                    </option>
                  ))}
                </select>
              </label>
              <button
                type="button"
                onClick={() => set({ required_skills: q.required_skills.filter((_, j) => j !== i) })}
              >
                {t.remove}
              </button>
            </li>
          ))}
        </ul>
        {unusedSkills.length > 0 && (
          <label>
            {t.addSkill}{' '}
            <select
              value=""
              onChange={(e) => {
                const skill = e.currentTarget.value;
                if (skill) set({ required_skills: [...q.required_skills, { skill, min_proficiency: 3 }] });
              }}
            >
              <option value="">—</option>
              {unusedSkills.map((s) => (
                <option key={s.skill} value={s.skill}>
                  {s.skill}
                </option>
              ))}
            </select>
          </label>
        )}
      </fieldset>

      <fieldset>
        <legend>{t.relaxation}</legend>
        <label class="check">
          <input
            type="checkbox"
            checked={q.never_relax}
            onChange={(e) => set({ never_relax: e.currentTarget.checked })}
          />
          <span>{t.neverRelax}</span>
        </label>
        <ul class="rows">
          {q.relaxation.map((step, i) => {
            const update = (patch: Partial<typeof step>) =>
              set({ relaxation: q.relaxation.map((x, j) => (j === i ? { ...x, ...patch } : x)) });
            return (
              <li key={i}>
                <label>
                  {t.relaxAfter}{' '}
                  <input
                    type="number"
                    min={0}
                    value={Math.round(step.after_ms / 1000)}
                    onInput={(e) => update({ after_ms: Number(e.currentTarget.value) * 1000 })}
                  />
                </label>
                <label>
                  {t.relaxCap}{' '}
                  <select
                    value={step.max_proficiency ?? ''}
                    onChange={(e) =>
                      update({ max_proficiency: e.currentTarget.value === '' ? null : Number(e.currentTarget.value) })
                    }
                  >
                    <option value="">—</option>
                    {[1, 2, 3, 4, 5].map((n) => (
                      <option key={n} value={n}>
                        {n}
                      </option>
                    ))}
                  </select>
                </label>
                <label class="check">
                  <input
                    type="checkbox"
                    checked={step.drop_skills}
                    onChange={(e) => update({ drop_skills: e.currentTarget.checked })}
                  />
                  <span>{t.relaxDrop}</span>
                </label>
                <button type="button" onClick={() => set({ relaxation: q.relaxation.filter((_, j) => j !== i) })}>
                  {t.remove}
                </button>
              </li>
            );
          })}
        </ul>
        <button
          type="button"
          onClick={() => {
            const last = q.relaxation[q.relaxation.length - 1]?.after_ms ?? 0;
            set({
              relaxation: [...q.relaxation, { after_ms: last + 60_000, max_proficiency: null, drop_skills: false }],
            });
          }}
        >
          {t.addStep}
        </button>
      </fieldset>

      <fieldset>
        <legend>{t.openingHours}</legend>
        <label class="choice">
          <input
            type="radio"
            name="hours"
            checked={h.kind === 'always'}
            onChange={() => set({ opening_hours: { kind: 'always' } })}
          />
          <span>{t.always}</span>
        </label>
        <label class="choice">
          <input
            type="radio"
            name="hours"
            checked={h.kind === 'daily'}
            onChange={() =>
              set({
                opening_hours: { kind: 'daily', open_minute: 8 * 60, close_minute: 22 * 60, utc_offset_minutes: 480 },
              })
            }
          />
          <span>{t.daily}</span>
        </label>
        {h.kind === 'daily' && (
          <div class="form-grid">
            <label>
              {t.opensAt}
              <input
                type="time"
                value={minutesToTime(h.open_minute)}
                onInput={(e) => set({ opening_hours: { ...h, open_minute: timeToMinutes(e.currentTarget.value) } })}
              />
            </label>
            <label>
              {t.closesAt}
              <input
                type="time"
                value={minutesToTime(h.close_minute)}
                onInput={(e) => set({ opening_hours: { ...h, close_minute: timeToMinutes(e.currentTarget.value) } })}
              />
            </label>
            <label>
              {t.utcOffset}
              <input
                type="number"
                value={h.utc_offset_minutes}
                onInput={(e) => set({ opening_hours: { ...h, utc_offset_minutes: Number(e.currentTarget.value) } })}
              />
            </label>
          </div>
        )}
      </fieldset>

      <label class="field">
        {t.closedMessage} <span class="hint">{t.closedMessageHint}</span>
        <textarea
          rows={2}
          name="closed_message"
          value={q.closed_message}
          onInput={(e) => set({ closed_message: e.currentTarget.value })}
        />
      </label>

      <fieldset>
        <legend>{t.alternatives}</legend>
        {q.alternatives.length === 0 && <p class="hint">{t.alternativesHint}</p>}
        <ul class="rows">
          {q.alternatives.map((a, i) => {
            const update = (patch: Partial<typeof a>) =>
              set({ alternatives: q.alternatives.map((x, j) => (j === i ? { ...x, ...patch } : x)) });
            return (
              <li key={i}>
                <label>
                  {t.altName}{' '}
                  <input type="text" value={a.name} onInput={(e) => update({ name: e.currentTarget.value })} />
                </label>
                <label>
                  {t.altNumber}{' '}
                  <input type="text" value={a.number} onInput={(e) => update({ number: e.currentTarget.value })} />
                </label>
                <button type="button" onClick={() => set({ alternatives: q.alternatives.filter((_, j) => j !== i) })}>
                  {t.remove}
                </button>
              </li>
            );
          })}
        </ul>
        <button type="button" onClick={() => set({ alternatives: [...q.alternatives, { name: '', number: '' }] })}>
          {t.addAlternative}
        </button>
      </fieldset>

      <div class="form-actions">
        {!isNew &&
          (confirmDelete ? (
            <span class="confirm">
              {t.confirmDelete(q.id)}{' '}
              <button type="button" onClick={() => setConfirmDelete(false)}>
                {t.cancel}
              </button>
              <button
                type="button"
                class="danger-button"
                onClick={() => api('DELETE', `/api/admin/queues/${encodeURIComponent(q.id)}`).then(onDeleted, onError)}
              >
                {t.deleteQueue}
              </button>
            </span>
          ) : (
            <button type="button" class="danger-outline" onClick={() => setConfirmDelete(true)}>
              {t.deleteQueue}
            </button>
          ))}
        <button type="button" onClick={onCancel}>
          {t.cancel}
        </button>
        <button type="submit" class="primary">
          {t.save}
        </button>
      </div>
    </form>
  );
}
