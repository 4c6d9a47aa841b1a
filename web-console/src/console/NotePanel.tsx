// The contact note: the form as the server defines it (`GET /api/notes/form`, sections of typed
// fields with labels in both languages), filled beside the chat and saved as a draft while the
// operator types; submitted and refused field by field (each message shown at its field, the
// draft kept); then read only, with amendments (a reason is required) after submission.
import { useEffect, useRef, useState } from 'preact/hooks';
import type { Field, FieldError, Label, NoteForm, NoteView, RiskLevel } from '../proto/hotline';
import { ApiError, api } from '../shared/api';
import { errorText } from '../shared/errors';
import { dateTime, timeOfDay } from '../shared/format';
import { useLang, type Lang } from '../shared/i18n';
import type { Strings } from './strings';

type Values = Record<string, unknown>;
type Referral = { service: string; reference?: string };

const LEVELS: RiskLevel[] = ['none', 'low', 'medium', 'high', 'imminent'];
const COLOUR: Record<RiskLevel, string> = {
  none: 'green',
  low: 'green',
  medium: 'yellow',
  high: 'red',
  imminent: 'red',
};
const SAVE_AFTER_MS = 800;

let formRequest: Promise<NoteForm> | null = null;

/** The form in force, read once per page. */
function loadForm(): Promise<NoteForm> {
  formRequest ??= api<NoteForm>('GET', '/api/notes/form').catch((e) => {
    formRequest = null;
    throw e;
  });
  return formRequest;
}

export function label(l: Label, lang: Lang): string {
  return lang === 'zh-CN' ? l.zh : l.en;
}

function isEmpty(v: unknown): boolean {
  if (v === null || v === undefined) return true;
  if (typeof v === 'string') return v.trim() === '';
  if (Array.isArray(v)) return v.length === 0;
  if (typeof v === 'object') return Object.keys(v as object).length === 0;
  return false;
}

/** The values worth sending: empty answers are left out (the server treats them as missing). */
function clean(values: Values): Values {
  const out: Values = {};
  for (const [k, v] of Object.entries(values)) if (!isEmpty(v)) out[k] = v;
  return out;
}

function allFields(form: NoteForm): Field[] {
  return form.sections.flatMap((s) => s.fields);
}

/** Whether the chosen call type is a data contact (none chosen counts as data, like the server). */
function dataContact(form: NoteForm, values: Values): boolean {
  for (const f of allFields(form)) {
    if (f.kind.type !== 'call_type') continue;
    const chosen = f.kind.options.find((o) => o.id === values[f.id]);
    return chosen ? chosen.data === true : true;
  }
  return true;
}

function requiredNow(field: Field, data: boolean): boolean {
  return field.required === 'always' || (field.required === 'data_contact' && data);
}

/** A value for people: option labels instead of ids. */
function display(field: Field, v: unknown, lang: Lang, t: Strings): string {
  if (isEmpty(v)) return t.note.notFilled;
  const k = field.kind;
  const pick = (options: { id: string; label: Label }[], id: unknown) =>
    options.find((o) => o.id === id)?.label ?? null;
  switch (k.type) {
    case 'call_type':
    case 'choice': {
      const l = pick(k.options, v);
      return l ? label(l, lang) : String(v);
    }
    case 'multi_choice':
      return (v as string[]).map((id) => (pick(k.options, id) ? label(pick(k.options, id)!, lang) : id)).join('、');
    case 'bool':
      return v ? t.note.yes : t.note.no;
    case 'risk_level':
      return t.riskLevels[v as RiskLevel] ?? String(v);
    case 'categories':
      return Object.entries(v as Record<string, string[]>)
        .map(([cat, subs]) => {
          const c = k.categories.find((x) => x.id === cat);
          if (!c) return `${cat}: ${subs.join(', ')}`;
          const names = subs.map((s) => {
            const sub = c.subcategories.find((x) => x.id === s);
            return sub ? label(sub.label, lang) : s;
          });
          return `${label(c.label, lang)}（${names.join('、')}）`;
        })
        .join('；');
    case 'referrals':
      return (v as Referral[])
        .map((r) => {
          const s = pick(k.services, r.service);
          const name = s ? label(s, lang) : r.service;
          return r.reference ? `${name} (${r.reference})` : name;
        })
        .join('；');
    case 'text':
      return String(v);
  }
}

function fieldMessage(e: FieldError, t: Strings): string {
  return e.message === 'is required' ? t.note.fieldRequired : e.message;
}

export function NotePanel({
  contact,
  t,
  me,
  names,
  onSubmitted,
  onDrafted,
}: {
  contact: number;
  t: Strings;
  me: number | undefined;
  names: Map<number, string>;
  onSubmitted?: () => void;
  /** The note is started: a field filled here, or a draft of it found on the server. */
  onDrafted?: () => void;
}) {
  const lang = useLang();
  const [form, setForm] = useState<NoteForm | null>(null);
  const [note, setNote] = useState<NoteView | null>(null);
  const [values, setValues] = useState<Values>({});
  const [mode, setMode] = useState<'edit' | 'view' | 'amend'>('edit');
  const [save, setSave] = useState<{ state: 'idle' | 'saving' | 'saved' | 'error'; at?: number; error?: string }>({
    state: 'idle',
  });
  const [errors, setErrors] = useState<FieldError[]>([]);
  // Messages are said in the language of the moment they are shown.
  const [problem, setProblem] = useState<((t: Strings) => string) | null>(null);
  const [busy, setBusy] = useState(false);
  const [reason, setReason] = useState('');
  const [done, setDone] = useState(false);
  const timer = useRef<number | undefined>(undefined);
  const pending = useRef<Values | null>(null);
  const chain = useRef<Promise<unknown>>(Promise.resolve());
  const summaryRef = useRef<HTMLDivElement>(null);
  const prefix = `note-${contact}`;

  const load = () =>
    Promise.all([loadForm(), api<NoteView[]>('GET', `/api/contacts/${contact}/notes`)]).then(([f, notes]) => {
      setForm(f);
      const mine = notes.find((n) => n.note.author === me) ?? null;
      setNote(mine);
      if (mine?.note.status === 'submitted') {
        setMode('view');
        onSubmitted?.();
        setValues(mine.effective);
      } else {
        setMode('edit');
        setValues(mine?.note.fields ?? {});
        if (mine) {
          setSave({ state: 'saved', at: mine.note.updated_at });
          onDrafted?.();
        }
      }
    });

  useEffect(() => {
    load().catch((e) =>
      setProblem(() => (tr: Strings) => tr.note.loadFailed + (e instanceof Error ? e.message : String(e))),
    );
    return () => flush();
  }, [contact]);

  /** Saves the draft now (one request at a time, in order). */
  const flush = () => {
    window.clearTimeout(timer.current);
    const fields = pending.current;
    if (!fields) return chain.current;
    pending.current = null;
    setSave({ state: 'saving' });
    chain.current = chain.current
      .catch(() => undefined)
      .then(() => api<NoteView>('PUT', `/api/contacts/${contact}/note`, { fields: clean(fields) }))
      .then(
        (view) => {
          setNote(view);
          setSave({ state: 'saved', at: view.note.updated_at });
        },
        (e) => setSave({ state: 'error', error: e instanceof ApiError ? e.message : String(e) }),
      );
    return chain.current;
  };

  const change = (id: string, v: unknown) => {
    if (mode === 'edit') onDrafted?.();
    setValues((prev) => {
      const next = { ...prev, [id]: v };
      if (mode === 'edit') {
        pending.current = next;
        window.clearTimeout(timer.current);
        timer.current = window.setTimeout(flush, SAVE_AFTER_MS);
      }
      return next;
    });
    if (errors.some((e) => e.field === id)) setErrors(errors.filter((e) => e.field !== id));
  };

  const refused = (e: unknown) => {
    if (e instanceof ApiError && e.code === 'invalid_fields' && e.fields.length > 0) {
      setErrors(e.fields);
      setProblem(null);
      window.setTimeout(() => summaryRef.current?.focus(), 0);
    } else {
      setProblem(() => (tr: Strings) => errorText(e, tr));
    }
  };

  const submit = async () => {
    setBusy(true);
    setDone(false);
    setProblem(null);
    await flush();
    try {
      const view = await api<NoteView>('POST', `/api/contacts/${contact}/note/submit`, { fields: clean(values) });
      setNote(view);
      setValues(view.effective);
      setErrors([]);
      setMode('view');
      onSubmitted?.();
    } catch (e) {
      if (e instanceof ApiError && e.status === 409) {
        await load().catch(() => undefined);
      } else refused(e);
    } finally {
      setBusy(false);
    }
  };

  const amend = async () => {
    if (!note) return;
    const before = note.effective;
    const after = clean(values);
    const changes: Values = {};
    for (const id of new Set([...Object.keys(before), ...Object.keys(after)])) {
      if (JSON.stringify(before[id] ?? null) !== JSON.stringify(after[id] ?? null)) changes[id] = after[id] ?? null;
    }
    if (Object.keys(changes).length === 0) {
      setProblem(() => (tr: Strings) => tr.note.amendNoChange);
      return;
    }
    setBusy(true);
    setProblem(null);
    try {
      await api('POST', `/api/notes/${note.note.id}/amendments`, { reason: reason.trim(), changes });
      await load();
      setErrors([]);
      setReason('');
      setDone(true);
    } catch (e) {
      refused(e);
    } finally {
      setBusy(false);
    }
  };

  if (!form) {
    return (
      <section class="note-panel" aria-labelledby={`${prefix}-title`} data-testid="note">
        <h4 id={`${prefix}-title`}>{t.note.title}</h4>
        {problem ? (
          <p class="problem" role="alert">
            {problem(t)}
          </p>
        ) : (
          <p class="hint" role="status">
            {t.note.loading}
          </p>
        )}
      </section>
    );
  }

  const data = dataContact(form, values);
  const errorOf = (id: string) => errors.find((e) => e.field === id);
  const fieldsById = new Map(allFields(form).map((f) => [f.id, f]));

  return (
    <section
      class="note-panel"
      aria-labelledby={`${prefix}-title`}
      data-testid="note"
      data-contact={contact}
      data-mode={mode}
    >
      <h4 id={`${prefix}-title`}>{t.note.title}</h4>
      {mode === 'view' && note ? (
        <>
          <p class="note" role="status" data-testid="note-submitted">
            {t.note.submitted(dateTime(note.note.submitted_at ?? note.note.updated_at, lang))}
          </p>
          {done && (
            <p class="feedback ok" role="status">
              {t.note.amended}
            </p>
          )}
          <dl class="note-view">
            {allFields(form)
              .filter((f) => !isEmpty(note.effective[f.id]))
              .map((f) => (
                <div key={f.id} data-field={f.id}>
                  <dt>{label(f.label, lang)}</dt>
                  <dd>{display(f, note.effective[f.id], lang, t)}</dd>
                </div>
              ))}
          </dl>
          {note.note.amendments.length > 0 && (
            <section class="amendments" aria-label={t.note.amendments}>
              <h5>{t.note.amendments}</h5>
              <ol>
                {note.note.amendments.map((a) => (
                  <li key={a.id} data-testid="amendment">
                    <p class="meta">
                      {t.note.amendmentBy(names.get(a.author) ?? `#${a.author}`, dateTime(a.at, lang))}
                    </p>
                    <p>
                      {t.note.reason}: {a.reason}
                    </p>
                    <ul>
                      {Object.entries(a.changes).map(([id, v]) => {
                        const f = fieldsById.get(id);
                        return (
                          <li key={id}>
                            {f ? label(f.label, lang) : id}: {f ? display(f, v, lang, t) : JSON.stringify(v)}
                          </li>
                        );
                      })}
                    </ul>
                  </li>
                ))}
              </ol>
            </section>
          )}
          {note.note.author === me && (
            <button
              type="button"
              data-testid="note-amend"
              onClick={() => {
                setValues(note.effective);
                setDone(false);
                setMode('amend');
              }}
            >
              {t.note.amend}
            </button>
          )}
        </>
      ) : (
        <form
          class="note-form"
          noValidate
          onSubmit={(e) => {
            e.preventDefault();
            if (mode === 'amend') void amend();
            else void submit();
          }}
        >
          {mode === 'amend' ? (
            <p class="note">{t.note.amendTitle}</p>
          ) : (
            <p class="save-state" role="status" data-save={save.state}>
              {save.state === 'saving'
                ? t.note.saving
                : save.state === 'saved' && save.at
                  ? t.note.draftSaved(timeOfDay(save.at, lang))
                  : save.state === 'error'
                    ? t.note.saveFailed + save.error
                    : t.note.notStarted}
            </p>
          )}
          {errors.length > 0 && (
            <div class="problem error-summary" role="alert" tabIndex={-1} ref={summaryRef} data-testid="note-errors">
              <p>{t.note.fixFields(errors.length)}</p>
              <ul>
                {errors.map((e) => {
                  const f = fieldsById.get(e.field);
                  return (
                    <li key={e.field}>
                      <a
                        href={`#${prefix}-${e.field}`}
                        onClick={(ev) => {
                          ev.preventDefault();
                          focusField(`${prefix}-${e.field}`);
                        }}
                      >
                        {f ? label(f.label, lang) : e.field}
                      </a>
                      : {fieldMessage(e, t)}
                    </li>
                  );
                })}
              </ul>
            </div>
          )}
          <div class="note-body">
            {form.sections.map((section) => {
              const lone =
                section.fields.length === 1 && label(section.fields[0].label, lang) === label(section.label, lang);
              return (
                <div class="note-section" key={section.id} data-section={section.id}>
                  {!lone && <h5>{label(section.label, lang)}</h5>}
                  {section.fields.map((f) => (
                    <FieldInput
                      key={f.id}
                      field={f}
                      id={`${prefix}-${f.id}`}
                      value={values[f.id]}
                      required={requiredNow(f, data)}
                      error={errorOf(f.id)}
                      lang={lang}
                      t={t}
                      onChange={(v) => change(f.id, v)}
                    />
                  ))}
                </div>
              );
            })}
          </div>
          {mode === 'amend' && (
            <label class="field">
              <span>{t.note.amendReason}</span>
              <textarea
                rows={2}
                name="amend-reason"
                required
                maxLength={500}
                value={reason}
                onInput={(e) => setReason(e.currentTarget.value)}
              />
            </label>
          )}
          {problem && (
            <p class="problem" role="alert">
              {problem(t)}
            </p>
          )}
          <div class="form-actions">
            {mode === 'amend' ? (
              <>
                <button
                  type="button"
                  onClick={() => {
                    setMode('view');
                    setErrors([]);
                    setProblem(null);
                    if (note) setValues(note.effective);
                  }}
                >
                  {t.cancel}
                </button>
                <button
                  type="submit"
                  class="primary"
                  disabled={busy || !reason.trim()}
                  data-testid="note-save-amendment"
                >
                  {t.note.saveAmendment}
                </button>
              </>
            ) : (
              <button type="submit" class="primary" disabled={busy} data-testid="note-submit">
                {busy ? t.note.submitting : t.note.submit}
              </button>
            )}
          </div>
        </form>
      )}
    </section>
  );
}

function focusField(id: string) {
  const el = document.getElementById(id);
  if (!el) return;
  const target = el.matches('input, select, textarea') ? el : el.querySelector<HTMLElement>('input, select, textarea');
  (target ?? el).focus();
  el.scrollIntoView({ block: 'center' });
}

function FieldInput({
  field,
  id,
  value,
  required,
  error,
  lang,
  t,
  onChange,
}: {
  field: Field;
  id: string;
  value: unknown;
  required: boolean;
  error: FieldError | undefined;
  lang: Lang;
  t: Strings;
  onChange: (v: unknown) => void;
}) {
  const name = label(field.label, lang);
  const errId = `${id}-error`;
  const describedBy = error ? errId : undefined;
  const mark = required ? (
    <span class="req"> ({field.required === 'always' ? t.note.required : t.note.requiredData})</span>
  ) : null;
  const message = error ? (
    <p class="field-error" id={errId}>
      {fieldMessage(error, t)}
    </p>
  ) : null;
  const k = field.kind;
  const cls = (extra = '') => `note-field${extra ? ` ${extra}` : ''}${error ? ' invalid' : ''}`;
  const labelId = `${id}-label`;
  // Groups of inputs are labelled by their field's name (role group / radiogroup).
  const group = (role: 'group' | 'radiogroup', extra = '') => ({
    'data-field': field.id,
    class: cls(extra),
    id,
    role,
    'aria-labelledby': labelId,
    'aria-describedby': describedBy,
    'aria-invalid': error ? true : undefined,
  });
  const groupLabel = (
    <span class="field-label" id={labelId}>
      {name}
      {mark}
    </span>
  );

  // One of a few options: radio chips; many: a select.
  const radios = (options: { id: string; label: string; colour?: string }[], extra = '') => (
    <div {...group('radiogroup', extra)}>
      {groupLabel}
      <div class="chips">
        {options.map((o) => (
          <label key={o.id} class="chip">
            <input type="radio" name={id} value={o.id} checked={value === o.id} onChange={() => onChange(o.id)} />
            {o.colour && <span class={`dot dot-${o.colour}`} aria-hidden="true" />}
            <span>{o.label}</span>
          </label>
        ))}
      </div>
      {message}
    </div>
  );

  switch (k.type) {
    case 'call_type':
      return radios(k.options.map((o) => ({ id: o.id, label: label(o.label, lang) })));
    case 'risk_level':
      return radios(LEVELS.map((r) => ({ id: r, label: t.riskLevels[r], colour: COLOUR[r] })));
    case 'choice':
      if (k.options.length <= 4)
        return radios(
          k.options.map((o) => ({ id: o.id, label: label(o.label, lang) })),
          'row',
        );
      return (
        <div data-field={field.id} class={cls('row')}>
          <label for={id}>
            {name}
            {mark}
          </label>
          <select
            id={id}
            value={typeof value === 'string' ? value : ''}
            aria-invalid={error ? true : undefined}
            aria-describedby={describedBy}
            onChange={(e) => onChange(e.currentTarget.value || null)}
          >
            <option value="">{t.note.choose}</option>
            {k.options.map((o) => (
              <option key={o.id} value={o.id}>
                {label(o.label, lang)}
              </option>
            ))}
          </select>
          {message}
        </div>
      );
    case 'bool':
      return (
        <div data-field={field.id} class={cls()}>
          <label class="check">
            <input
              type="checkbox"
              id={id}
              checked={value === true}
              aria-invalid={error ? true : undefined}
              aria-describedby={describedBy}
              onChange={(e) => onChange(e.currentTarget.checked)}
            />
            <span>
              {name}
              {mark}
            </span>
          </label>
          {message}
        </div>
      );
    case 'text': {
      const text = typeof value === 'string' ? value : '';
      const left = k.max_chars - [...text].length;
      const long = k.max_chars > 200;
      return (
        <div data-field={field.id} class={cls(long ? '' : 'row')}>
          <label for={id}>
            {name}
            {mark}
          </label>
          {long ? (
            <textarea
              id={id}
              rows={3}
              value={text}
              aria-invalid={error ? true : undefined}
              aria-describedby={describedBy}
              onInput={(e) => onChange(e.currentTarget.value)}
            />
          ) : (
            <input
              type="text"
              id={id}
              value={text}
              aria-invalid={error ? true : undefined}
              aria-describedby={describedBy}
              onInput={(e) => onChange(e.currentTarget.value)}
            />
          )}
          {left < k.max_chars / 5 && <span class={`hint ${left < 0 ? 'over' : ''}`}>{t.note.charsLeft(left)}</span>}
          {message}
        </div>
      );
    }
    case 'multi_choice': {
      const chosen = Array.isArray(value) ? (value as string[]) : [];
      return (
        <div {...group('group')}>
          {groupLabel}
          <div class="chips">
            {k.options.map((o) => (
              <label key={o.id} class="chip">
                <input
                  type="checkbox"
                  value={o.id}
                  checked={chosen.includes(o.id)}
                  onChange={(e) =>
                    onChange(e.currentTarget.checked ? [...chosen, o.id] : chosen.filter((x) => x !== o.id))
                  }
                />
                <span>{label(o.label, lang)}</span>
              </label>
            ))}
          </div>
          {message}
        </div>
      );
    }
    case 'categories': {
      const map =
        value && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, string[]>) : {};
      const toggle = (cat: string, sub: string, on: boolean) => {
        const subs = map[cat] ?? [];
        const nextSubs = on ? [...subs, sub] : subs.filter((s) => s !== sub);
        const next = { ...map };
        if (nextSubs.length) next[cat] = nextSubs;
        else delete next[cat];
        onChange(next);
      };
      return (
        <div {...group('group')}>
          {groupLabel}
          <div class="categories">
            {k.categories.map((c) => {
              const subs = map[c.id] ?? [];
              return (
                <details key={c.id} open={subs.length > 0} data-category={c.id}>
                  <summary>
                    {label(c.label, lang)}
                    {subs.length > 0 && <span class="count"> ({subs.length})</span>}
                  </summary>
                  <div class="chips">
                    {c.subcategories.map((s) => (
                      <label key={s.id} class="chip">
                        <input
                          type="checkbox"
                          value={s.id}
                          checked={subs.includes(s.id)}
                          onChange={(e) => toggle(c.id, s.id, e.currentTarget.checked)}
                        />
                        <span>{label(s.label, lang)}</span>
                      </label>
                    ))}
                  </div>
                </details>
              );
            })}
          </div>
          {message}
        </div>
      );
    }
    case 'referrals': {
      const rows = Array.isArray(value) ? (value as Referral[]) : [];
      const update = (i: number, patch: Partial<Referral>) =>
        onChange(rows.map((r, j) => (j === i ? { ...r, ...patch } : r)));
      return (
        <div {...group('group')}>
          {groupLabel}
          <ul class="rows">
            {rows.map((r, i) => (
              <li key={i}>
                <label>
                  <span class="visually-hidden">{t.note.referralService}</span>
                  <select
                    aria-label={t.note.referralService}
                    value={r.service}
                    onChange={(e) => update(i, { service: e.currentTarget.value })}
                  >
                    {k.services.map((s) => (
                      <option key={s.id} value={s.id}>
                        {label(s.label, lang)}
                      </option>
                    ))}
                  </select>
                </label>
                <input
                  type="text"
                  aria-label={t.note.referralReference}
                  placeholder={t.note.referralReference}
                  maxLength={100}
                  value={r.reference ?? ''}
                  onInput={(e) => {
                    const reference = e.currentTarget.value;
                    onChange(
                      rows.map((x, j) => (j === i ? (reference ? { ...x, reference } : { service: x.service }) : x)),
                    );
                  }}
                />
                <button
                  type="button"
                  aria-label={t.note.removeReferral}
                  onClick={() => onChange(rows.filter((_, j) => j !== i))}
                >
                  ×
                </button>
              </li>
            ))}
          </ul>
          <button type="button" onClick={() => onChange([...rows, { service: k.services[0]?.id ?? '' }])}>
            {t.note.addReferral}
          </button>
          {message}
        </div>
      );
    }
  }
}
