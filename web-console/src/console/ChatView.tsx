// One conversation: header with risk and state, the transcript, the composer with canned
// responses, and the holder's controls (raise risk, transfer, end, wrap-up). Supervisors who
// joined see the same view with the controls of their join mode.
import { useEffect, useRef, useState } from 'preact/hooks';
import type { QueueDefinition, RiskLevel, Role, StaffLine } from '../proto/hotline';
import { clock, dateTime, timeOfDay } from '../shared/format';
import { serverNow } from '../shared/api';
import { frameErrorText } from '../shared/errors';
import { useLang } from '../shared/i18n';
import { languageName, topicLabel } from '../shared/topics';
import type { Chat, StaffStore } from './staff';
import { CrisisFlag } from './CrisisFlag';
import { NotePanel } from './NotePanel';
import { CANNED, type Strings } from './strings';
import { RiskBadge, useTicker } from './ui';

const LEVELS: RiskLevel[] = ['none', 'low', 'medium', 'high', 'imminent'];

export interface Colleague {
  id: number;
  name: string;
  role?: Role;
}

export function ChatView({
  chat,
  store,
  t,
  queues,
  colleagues,
  names,
}: {
  chat: Chat;
  store: StaffStore;
  t: Strings;
  queues: QueueDefinition[];
  colleagues: Colleague[] | null;
  names: Map<number, string>;
}) {
  const lang = useLang();
  const me = store.state.me?.id;
  const holder = chat.as === 'holder';
  const wrapping = chat.wrap !== null || chat.summary.state === 'wrapping';
  const canWrite = !wrapping && (holder || chat.mode === 'whisper' || chat.mode === 'barge');
  const now = useTicker(true, 1000);
  const [text, setText] = useState('');
  const [confirmEnd, setConfirmEnd] = useState(false);
  const [transferOpen, setTransferOpen] = useState(false);
  const [loadingEarlier, setLoadingEarlier] = useState(false);
  const logRef = useRef<HTMLDivElement>(null);
  const typing = chat.typingUntil > now;
  const lastSeq = chat.lines[chat.lines.length - 1]?.seq;

  // A new line scrolls to the end; earlier lines read above keep the reader where they were.
  useEffect(() => {
    const el = logRef.current;
    if (el) el.scrollTop = el.scrollHeight;
  }, [lastSeq, chat.pending.length]);

  const showEarlier = async () => {
    const el = logRef.current;
    const fromEnd = el ? el.scrollHeight - el.scrollTop : 0;
    setLoadingEarlier(true);
    await store.loadEarlier(chat.id);
    setLoadingEarlier(false);
    requestAnimationFrame(() => {
      if (el) el.scrollTop = el.scrollHeight - fromEnd;
    });
  };

  const send = () => {
    if (!text.trim()) return;
    store.say(chat.id, text);
    setText('');
  };
  const language = chat.summary.language === 'en' ? 'en' : 'zh';
  const higher = LEVELS.slice(LEVELS.indexOf(chat.summary.risk) + 1);

  return (
    <article class="chat" aria-labelledby={`chat-${chat.id}-title`} data-contact={chat.id}>
      <header class="chat-head">
        <h3 id={`chat-${chat.id}-title`}>{t.contact(chat.id)}</h3>
        <RiskBadge risk={chat.summary.risk} colour={chat.summary.colour} t={t} />
        <dl class="facts">
          <dt>{t.queue}</dt>
          <dd>{queues.find((q) => q.id === chat.summary.queue)?.name ?? chat.summary.queue}</dd>
          <dt>{t.topic}</dt>
          <dd>{topicLabel(chat.summary.topic, lang) ?? t.noTopic}</dd>
          <dt>{t.language}</dt>
          <dd>{languageName(chat.summary.language)}</dd>
          <dt>{t.since}</dt>
          <dd>{clock(serverNow() - chat.summary.entered_at)}</dd>
        </dl>
        {chat.summary.caller_away && (
          <p class="away" role="status">
            {t.callerAway}
          </p>
        )}
        {!holder && (
          <p class="joined-as">
            {[
              chat.mode ? t.joinedAs(t.joinModes[chat.mode]) : null,
              chat.mode === 'monitor'
                ? t.monitorNoWrite
                : chat.mode === 'whisper'
                  ? t.whisperHint
                  : chat.mode === 'barge'
                    ? t.bargeHint
                    : null,
            ]
              .filter(Boolean)
              .join(' — ')}
          </p>
        )}
        {Object.keys(chat.participants).length > 0 && (
          <p class="participants">
            {t.participants}:{' '}
            {Object.entries(chat.participants)
              .map(([id, mode]) => `${names.get(Number(id)) ?? `#${id}`} (${t.joinModes[mode]})`)
              .join(', ')}
          </p>
        )}
      </header>

      <div class={`chat-body ${holder ? 'with-note' : ''}`}>
        <div class="chat-main">
          <div
            class="transcript"
            ref={logRef}
            role="log"
            aria-live="polite"
            aria-label={t.transcript}
            tabIndex={0}
            data-testid="staff-transcript"
          >
            {chat.earlier && (
              <p class="earlier">
                <button
                  type="button"
                  class="link"
                  disabled={loadingEarlier}
                  onClick={showEarlier}
                  data-testid="show-earlier"
                >
                  {loadingEarlier ? t.loadingEarlier : t.showEarlier(chat.lines[0]?.seq ? chat.lines[0].seq - 1 : 0)}
                </button>
              </p>
            )}
            <ol>
              {chat.lines.map((l) => (
                <LineView key={l.seq} line={l} me={me} t={t} lang={lang} names={names} />
              ))}
              {chat.pending.map((p) => (
                <li
                  key={p.clientId}
                  class={`line mine ${p.failed ? 'failed' : 'pending'}`}
                  data-status={p.failed ? 'failed' : 'pending'}
                >
                  <span class="who">{t.you}</span>
                  <p class="body">{p.body}</p>
                  <span class="meta">
                    {p.failed ? (
                      <button type="button" class="link" onClick={() => store.retryLine(chat.id, p)}>
                        {t.notSent} ↻
                      </button>
                    ) : (
                      t.sending
                    )}
                  </span>
                  {p.refusal && (
                    <p class="why" data-testid="not-sent-why">
                      {frameErrorText(p.refusal.code, p.refusal.message, p.refusal.errorId, t)}
                    </p>
                  )}
                </li>
              ))}
            </ol>
          </div>
          <p class="typing" aria-live="polite">
            {typing ? t.callerTyping : ''}
          </p>
          {wrapping ? (
            <WrapUp chat={chat} store={store} t={t} now={now} />
          ) : canWrite ? (
            <form
              class="composer"
              onSubmit={(e) => {
                e.preventDefault();
                send();
              }}
            >
              <label class="visually-hidden" for={`reply-${chat.id}`}>
                {t.message}
              </label>
              <textarea
                id={`reply-${chat.id}`}
                rows={3}
                value={text}
                placeholder={t.placeholder}
                onInput={(e) => {
                  setText(e.currentTarget.value);
                  if (holder || chat.mode === 'barge') store.typing(chat.id);
                }}
                onKeyDown={(e) => {
                  if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
                    e.preventDefault();
                    send();
                  }
                }}
              />
              <div class="composer-side">
                <label class="visually-hidden" for={`canned-${chat.id}`}>
                  {t.insertCanned}
                </label>
                <select
                  id={`canned-${chat.id}`}
                  value=""
                  onChange={(e) => {
                    const c = CANNED.find((x) => x.id === e.currentTarget.value);
                    if (c) setText((prev) => (prev ? `${prev} ${c[language]}` : c[language]));
                    e.currentTarget.value = '';
                  }}
                >
                  <option value="">{t.canned}…</option>
                  {CANNED.map((c) => (
                    <option key={c.id} value={c.id}>
                      {c[language].length > 28 ? `${c[language].slice(0, 28)}…` : c[language]}
                    </option>
                  ))}
                </select>
                <button type="submit" class="primary" disabled={!text.trim()}>
                  {t.send}
                </button>
              </div>
            </form>
          ) : null}

          {holder && !wrapping && (
            <div class="chat-actions">
              <form
                class="inline"
                onSubmit={(e) => {
                  e.preventDefault();
                  const v = (e.currentTarget.elements.namedItem('risk') as HTMLSelectElement).value as RiskLevel;
                  if (v) store.raiseRisk(chat.id, v);
                }}
              >
                <label>
                  {t.raiseTo}{' '}
                  <select name="risk" disabled={higher.length === 0}>
                    {higher.map((r) => (
                      <option key={r} value={r}>
                        {t.riskLevels[r]}
                      </option>
                    ))}
                  </select>
                </label>
                <button type="submit" disabled={higher.length === 0} aria-label={t.raiseRisk}>
                  {t.raise}
                </button>
              </form>
              <button
                type="button"
                data-testid="transfer"
                onClick={() => setTransferOpen((o) => !o)}
                aria-expanded={transferOpen}
              >
                {t.transfer}
              </button>
              {confirmEnd ? (
                <span class="confirm" role="group" aria-label={t.confirmEnd}>
                  <span>{t.confirmEnd}</span>
                  <button type="button" onClick={() => setConfirmEnd(false)}>
                    {t.cancel}
                  </button>
                  <button
                    type="button"
                    class="danger-button"
                    onClick={() => {
                      setConfirmEnd(false);
                      store.end(chat.id);
                    }}
                  >
                    {t.yesEnd}
                  </button>
                </span>
              ) : (
                <button type="button" class="danger-outline" onClick={() => setConfirmEnd(true)}>
                  {t.end}
                </button>
              )}
            </div>
          )}
          {!holder && (
            <div class="chat-actions">
              <button type="button" onClick={() => store.leave(chat.id)}>
                {t.leave}
              </button>
            </div>
          )}
          {transferOpen && holder && (
            <Transfer
              t={t}
              queues={queues}
              colleagues={colleagues}
              me={me}
              onTransfer={(target) => {
                store.transfer(chat.id, target);
                setTransferOpen(false);
              }}
            />
          )}
        </div>

        <aside class="chat-side">
          {holder && (
            <>
              <CrisisFlag chat={chat} state={store.state} t={t} names={names} />
              <NotePanel
                contact={chat.id}
                t={t}
                me={me}
                names={names}
                onSubmitted={() => store.noteSubmitted(chat.id)}
                onDrafted={() => store.noteDrafted(chat.id)}
              />
            </>
          )}
          <section aria-labelledby={`history-${chat.id}`} class="history">
            <h4 id={`history-${chat.id}`}>{t.history}</h4>
            {chat.history.length === 0 ? (
              <p class="hint">{t.noHistory}</p>
            ) : (
              <ul>
                {chat.history.map((h) => (
                  <li key={h.contact}>
                    <span>{dateTime(h.entered_at, lang)}</span> · {t.contact(h.contact)} ·{' '}
                    {topicLabel(h.topic, lang) ?? t.noTopic} · {t.risk} {t.riskLevels[h.risk]} ·{' '}
                    {t.contactStates[h.state]}
                    {(h.notes ?? []).map((n, i) => (
                      <p key={i} class="history-note">
                        {[n.call_type, n.risk_level ? `${t.risk} ${t.riskLevels[n.risk_level]}` : null, n.summary]
                          .filter(Boolean)
                          .join(' · ')}
                      </p>
                    ))}
                  </li>
                ))}
              </ul>
            )}
          </section>
        </aside>
      </div>
    </article>
  );
}

function LineView({
  line,
  me,
  t,
  lang,
  names,
}: {
  line: StaffLine;
  me?: number;
  t: Strings;
  lang: 'zh-CN' | 'en';
  names: Map<number, string>;
}) {
  const mine = line.author !== null && line.author !== undefined && line.author === me;
  const who = mine
    ? t.you
    : line.sender === 'caller'
      ? t.caller
      : line.sender === 'system'
        ? t.system
        : ((line.author != null ? names.get(line.author) : undefined) ??
          (line.sender === 'operator' ? t.operator : t.participant));
  return (
    <li
      class={`line ${mine ? 'mine' : 'theirs'} from-${line.sender} ${line.visibility === 'operators' ? 'whisper' : ''}`}
      data-seq={line.seq}
    >
      <span class="who">
        {who}
        {line.visibility === 'operators' && <span class="whisper-mark"> · {t.whisperMark}</span>}
      </span>
      <p class="body">{line.body}</p>
      <span class="meta">{timeOfDay(line.at, lang)}</span>
    </li>
  );
}

function WrapUp({ chat, store, t, now }: { chat: Chat; store: StaffStore; t: Strings; now: number }) {
  void now; // re-rendered every second by the caller's ticker
  const left = chat.wrap ? chat.wrap.deadline - serverNow() : null;
  return (
    <div class="wrapup" role="region" aria-label={t.wrapUp}>
      {chat.wrap && <p>{t.endedBy[chat.wrap.by]}</p>}
      {left !== null && (
        <p class="timer" data-testid="wrapup-timer" aria-live="off">
          {t.wrapUpLeft(clock(left))}
        </p>
      )}
      {/* Only the holder finishes the wrap-up; someone who joined just leaves. */}
      {chat.as === 'holder' && (
        <button type="button" class="primary" onClick={() => store.finishWrapUp(chat.id)}>
          {t.finishWrapUp}
        </button>
      )}
    </div>
  );
}

function Transfer({
  t,
  queues,
  colleagues,
  me,
  onTransfer,
}: {
  t: Strings;
  queues: QueueDefinition[];
  colleagues: Colleague[] | null;
  me?: number;
  onTransfer: (target: { kind: 'queue'; queue: string } | { kind: 'operator'; operator: number }) => void;
}) {
  const [kind, setKind] = useState<'queue' | 'operator'>('queue');
  const [queue, setQueue] = useState(queues[0]?.id ?? '');
  const [person, setPerson] = useState('');
  const others = colleagues?.filter((c) => c.id !== me && c.role !== 'admin') ?? null;
  return (
    <form
      class="transfer"
      aria-label={t.transfer}
      onSubmit={(e) => {
        e.preventDefault();
        if (kind === 'queue' && queue) onTransfer({ kind: 'queue', queue });
        const id = Number(person);
        if (kind === 'operator' && Number.isInteger(id) && id > 0) onTransfer({ kind: 'operator', operator: id });
      }}
    >
      <fieldset>
        <legend>{t.transferTo}</legend>
        <label class="choice">
          <input type="radio" name="kind" checked={kind === 'queue'} onChange={() => setKind('queue')} /> {t.toQueue}
        </label>
        <label class="choice">
          <input type="radio" name="kind" checked={kind === 'operator'} onChange={() => setKind('operator')} />{' '}
          {t.toPerson}
        </label>
        {kind === 'queue' ? (
          <select aria-label={t.toQueue} value={queue} onChange={(e) => setQueue(e.currentTarget.value)}>
            {queues.map((q) => (
              <option key={q.id} value={q.id}>
                {q.name}
              </option>
            ))}
          </select>
        ) : others ? (
          <select aria-label={t.toPerson} value={person} onChange={(e) => setPerson(e.currentTarget.value)}>
            <option value="">—</option>
            {others.map((c) => (
              <option key={c.id} value={String(c.id)}>
                {c.name}
              </option>
            ))}
          </select>
        ) : (
          // The colleague directory did not load: transfer by account number.
          <label>
            {t.personId}{' '}
            <input type="number" min={1} value={person} onInput={(e) => setPerson(e.currentTarget.value)} />
          </label>
        )}
        <button type="submit" class="primary">
          {t.doTransfer}
        </button>
      </fieldset>
    </form>
  );
}
