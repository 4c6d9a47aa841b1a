import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import type { Alternative, PublicInfo, PublicQueue, ScreeningAnswer } from '../proto/hotline';
import { api } from '../shared/api';
import { roughDuration, timeOfDay } from '../shared/format';
import { protocolLanguage, useLang, useStrings } from '../shared/i18n';
import { LangSwitch } from '../shared/LangSwitch';
import { AGE_GROUPS, LANGUAGE_NAMES, TOPICS, strings } from './strings';
import { CallerSession, canResend, rememberedCallerKey, type Line } from './session';

type S = (typeof strings)['en'];

/** Emergency numbers for when /api/public/info cannot be loaded (everything else comes from it). */
const OFFLINE_NUMBERS: Alternative[] = [
  { name: '报警 Police', number: '110' },
  { name: '急救 Ambulance', number: '120' },
];

function useSession(session: CallerSession) {
  const [, setTick] = useState(0);
  useEffect(() => session.subscribe(() => setTick((t) => t + 1)), [session]);
  return session.state;
}

/** Re-renders every `ms` while `on`, for countdowns and typing indicators. */
function useTicker(on: boolean, ms = 1000) {
  const [, setTick] = useState(0);
  useEffect(() => {
    if (!on) return;
    const id = window.setInterval(() => setTick((t) => t + 1), ms);
    return () => window.clearInterval(id);
  }, [on, ms]);
}

/** Moves focus to a heading when a step appears, so screen readers announce where they are. */
function useFocusHeading(key: unknown) {
  const ref = useRef<HTMLHeadingElement>(null);
  useEffect(() => {
    ref.current?.focus();
  }, [key]);
  return ref;
}

function uniqueAlternatives(queues: PublicQueue[]): Alternative[] {
  const seen = new Map<string, Alternative>();
  for (const q of queues) for (const a of q.alternatives) if (!seen.has(a.number)) seen.set(a.number, a);
  return [...seen.values()];
}

function Numbers({ alternatives, t }: { alternatives: Alternative[]; t: S }) {
  return (
    <ul class="numbers">
      {alternatives.map((a) => (
        <li key={a.number}>
          <a href={`tel:${a.number}`} aria-label={`${t.call(a.number)} — ${a.name}`}>
            <span class="number">{a.number}</span> <span class="number-name">{a.name}</span>
          </a>
        </li>
      ))}
    </ul>
  );
}

export function CallerApp() {
  const t = useStrings(strings);
  const lang = useLang();
  const session = useMemo(() => new CallerSession(), []);
  const state = useSession(session);
  const [info, setInfo] = useState<PublicInfo | null>(null);
  const [loadError, setLoadError] = useState(false);

  const load = () => {
    setLoadError(false);
    api<PublicInfo>('GET', '/api/public/info')
      .then(setInfo)
      .catch(() => setLoadError(true));
  };
  useEffect(load, []);

  // Before the service's own numbers arrive (a conversation resumed after a reload), the
  // built-in ones: the problem texts point to them. The start page shows its own when loading fails.
  const emergency = info ? uniqueAlternatives(info.queues) : state.phase === 'start' ? [] : OFFLINE_NUMBERS;

  let body;
  if (state.phase === 'start') {
    if (loadError) {
      body = (
        <section class="card" aria-labelledby="load-failed">
          <h2 id="load-failed">{t.loadFailed}</h2>
          {/* The only numbers not from the server: shown when the server cannot be reached at all. */}
          <p>{t.emergencyLead}</p>
          <Numbers alternatives={OFFLINE_NUMBERS} t={t} />
          <button type="button" class="primary" onClick={load}>
            {t.retry}
          </button>
        </section>
      );
    } else if (!info) {
      body = <p role="status">{t.loading}</p>;
    } else {
      body = <Start info={info} session={session} t={t} lang={lang} />;
    }
  } else if (state.phase === 'closed' && state.closed) {
    body = (
      <>
        <Closed message={state.closed.message} alternatives={state.closed.alternatives} t={t} />
        <button type="button" class="secondary" onClick={() => session.restart()}>
          {t.back}
        </button>
      </>
    );
  } else if (state.phase === 'ended') {
    body = <Ended session={session} t={t} />;
  } else {
    body = <Conversation session={session} t={t} maxBytes={info?.max_message_bytes ?? null} />;
  }

  return (
    <div class="caller-page">
      <header class="top">
        <h1>{t.title}</h1>
        <LangSwitch />
      </header>
      <main id="main">{body}</main>
      {emergency.length > 0 && (
        <footer class="emergency" aria-label={t.emergencyLead}>
          <p>{t.emergencyLead}</p>
          <Numbers alternatives={emergency} t={t} />
        </footer>
      )}
    </div>
  );
}

function Start({ info, session, t, lang }: { info: PublicInfo; session: CallerSession; t: S; lang: string }) {
  const state = session.state;
  const openQueues = info.queues.filter((q) => q.open);
  const [step, setStep] = useState<'welcome' | 'prechat'>('welcome');
  const [queue, setQueue] = useState<string>((openQueues[0] ?? info.queues[0])?.id ?? '');
  const [accepted, setAccepted] = useState(false);
  const [problem, setProblem] = useState<string | null>(null);
  const heading = useFocusHeading(step);
  const selected = info.queues.find((q) => q.id === queue);

  if (step === 'welcome') {
    return (
      <form
        class="card"
        aria-labelledby="welcome-title"
        onSubmit={(e) => {
          e.preventDefault();
          if (!accepted) {
            setProblem(t.mustAccept);
            return;
          }
          setProblem(null);
          setStep('prechat');
        }}
      >
        <h2 id="welcome-title" tabIndex={-1} ref={heading}>
          {t.tagline}
        </h2>
        {state.previousEnded && (
          <p class="note" role="status">
            {t.previousEnded}
          </p>
        )}
        {state.error && (
          <p class="problem" role="alert" data-testid="problem">
            {t.joinProblems[state.error.code] ?? t.problems[state.error.code] ?? t.problemOther}
          </p>
        )}
        <fieldset class="queues">
          <legend>{t.chooseService}</legend>
          {info.queues.map((q) => (
            <label key={q.id} class={`queue ${q.open ? 'is-open' : 'is-closed'}`}>
              <input type="radio" name="queue" value={q.id} checked={queue === q.id} onChange={() => setQueue(q.id)} />
              <span class="queue-name">{q.name}</span>
              <span class="queue-state">{q.open ? t.open : t.closed}</span>
              {q.languages.length > 0 && (
                <span class="queue-langs">
                  {t.languagesOf(q.languages.map((l) => LANGUAGE_NAMES[l] ?? l).join(' / '))}
                </span>
              )}
            </label>
          ))}
        </fieldset>
        {selected && !selected.open ? (
          <Closed message={selected.closed_message} alternatives={selected.alternatives} t={t} embedded />
        ) : (
          <>
            <section class="confidentiality" aria-labelledby="conf-title" data-testid="confidentiality">
              <h3 id="conf-title">{t.confidentiality}</h3>
              <p>{info.confidentiality.statement}</p>
              <h3>{t.exceptions}</h3>
              <ul>
                {info.confidentiality.exceptions.map((e) => (
                  <li key={e}>{e}</li>
                ))}
              </ul>
            </section>
            <label class="check">
              <input
                type="checkbox"
                checked={accepted}
                onChange={(e) => setAccepted(e.currentTarget.checked)}
                name="accept"
              />
              <span>{t.accept}</span>
            </label>
            {problem && (
              <p class="problem" role="alert">
                {problem}
              </p>
            )}
            <button type="submit" class="primary">
              {t.continue}
            </button>
          </>
        )}
      </form>
    );
  }
  return (
    <PreChat
      queue={selected!}
      t={t}
      lang={lang}
      onBack={() => setStep('welcome')}
      onStart={(form) => session.join({ ...form, queue })}
      headingRef={heading}
    />
  );
}

function PreChat({
  queue,
  t,
  lang,
  onBack,
  onStart,
  headingRef,
}: {
  queue: PublicQueue;
  t: S;
  lang: string;
  onBack: () => void;
  onStart: (f: {
    language: string;
    topic: string | null;
    age_group: string | null;
    screening: ScreeningAnswer;
    remember: boolean;
  }) => void;
  headingRef: preact.RefObject<HTMLHeadingElement | null>;
}) {
  const offered = queue.languages.length > 0 ? queue.languages : ['zh', 'en'];
  const preferred = protocolLanguage(lang === 'en' ? 'en' : 'zh-CN');
  const [language, setLanguage] = useState(offered.includes(preferred) ? preferred : offered[0]);
  const [topic, setTopic] = useState('');
  const [age, setAge] = useState('');
  const [screening, setScreening] = useState<ScreeningAnswer | null>(null);
  const [remember, setRemember] = useState(rememberedCallerKey() !== null);
  const [problem, setProblem] = useState<string | null>(null);
  const isZh = lang === 'zh-CN';

  return (
    <form
      class="card"
      aria-labelledby="prechat-title"
      onSubmit={(e) => {
        e.preventDefault();
        if (!screening) {
          setProblem(t.mustScreen);
          return;
        }
        onStart({ language, topic: topic || null, age_group: age || null, screening, remember });
      }}
    >
      <h2 id="prechat-title" tabIndex={-1} ref={headingRef}>
        {t.prechat}
      </h2>
      <p class="hint">{t.prechatHint}</p>
      <fieldset class="screening">
        <legend>
          {t.screening} <span class="req">{t.required}</span>
        </legend>
        {(['no', 'prefer_not_to_say', 'thoughts', 'danger_now'] as ScreeningAnswer[]).map((a) => (
          <label key={a} class="choice">
            <input type="radio" name="screening" value={a} checked={screening === a} onChange={() => setScreening(a)} />
            <span>{t.answers[a]}</span>
          </label>
        ))}
      </fieldset>
      {screening === 'danger_now' && (
        <div class="danger" role="alert">
          <p>{t.dangerNow}</p>
          <Numbers alternatives={queue.alternatives} t={t} />
        </div>
      )}
      {offered.length > 1 && (
        <label class="field">
          <span>{t.chatLanguage}</span>
          <select value={language} onChange={(e) => setLanguage(e.currentTarget.value)} name="language">
            {offered.map((l) => (
              <option key={l} value={l}>
                {LANGUAGE_NAMES[l] ?? l}
              </option>
            ))}
          </select>
        </label>
      )}
      <label class="field">
        <span>{t.topic}</span>
        <select value={topic} onChange={(e) => setTopic(e.currentTarget.value)} name="topic">
          <option value="">{t.notSaying}</option>
          {TOPICS.map((x) => (
            <option key={x.id} value={x.id}>
              {isZh ? x.zh : x.en}
            </option>
          ))}
        </select>
      </label>
      <label class="field">
        <span>{t.ageGroup}</span>
        <select value={age} onChange={(e) => setAge(e.currentTarget.value)} name="age_group">
          <option value="">{t.notSaying}</option>
          {AGE_GROUPS.map((x) => (
            <option key={x.id} value={x.id}>
              {isZh ? x.zh : x.en}
            </option>
          ))}
        </select>
      </label>
      <label class="check">
        <input
          type="checkbox"
          checked={remember}
          onChange={(e) => setRemember(e.currentTarget.checked)}
          name="remember"
        />
        <span>{t.remember}</span>
      </label>
      {problem && (
        <p class="problem" role="alert">
          {problem}
        </p>
      )}
      <div class="actions">
        <button type="button" class="secondary" onClick={onBack}>
          {t.back}
        </button>
        <button type="submit" class="primary">
          {t.start}
        </button>
      </div>
    </form>
  );
}

function Closed({
  message,
  alternatives,
  t,
  embedded,
}: {
  message: string;
  alternatives: Alternative[];
  t: S;
  embedded?: boolean;
}) {
  const heading = useFocusHeading(message);
  const Tag = embedded ? 'div' : 'section';
  return (
    <Tag class={embedded ? 'closed' : 'card closed'} data-testid="closed" aria-labelledby="closed-title">
      {embedded ? (
        <h3 id="closed-title">{t.closedTitle}</h3>
      ) : (
        <h2 id="closed-title" tabIndex={-1} ref={heading}>
          {t.closedTitle}
        </h2>
      )}
      <p>{message}</p>
      <p>{t.otherNumbers}</p>
      <Numbers alternatives={alternatives} t={t} />
    </Tag>
  );
}

/** How many characters of `text` (trimmed, as the server counts it) are past `maxBytes` of UTF-8. */
function charactersOver(text: string, maxBytes: number | null): number {
  if (maxBytes === null) return 0;
  let bytes = 0;
  let over = 0;
  for (const ch of text.trim()) {
    const cp = ch.codePointAt(0)!;
    bytes += cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
    if (bytes > maxBytes) over++;
  }
  return over;
}

function Conversation({ session, t, maxBytes }: { session: CallerSession; t: S; maxBytes: number | null }) {
  const state = session.state;
  const lang = useLang();
  const [text, setText] = useState('');
  const over = charactersOver(text, maxBytes);
  const tooLong = over > 0;
  const [confirming, setConfirming] = useState(false);
  const logRef = useRef<HTMLDivElement>(null);
  const typing = state.typingUntil > Date.now();
  useTicker(typing, 1000);
  // Focus the heading once when the conversation view appears, not when the phase changes:
  // the caller may be typing when the counsellor connects (the status region announces it).
  const heading = useFocusHeading('conversation');

  // A new line scrolls to the end; earlier lines read above keep the reader where they were.
  const lastKey = state.lines[state.lines.length - 1]?.key;
  const firstKey = state.lines[0]?.key;
  const fromEnd = useRef<number | null>(null);
  useEffect(() => {
    const el = logRef.current;
    if (el) el.scrollTop = el.scrollHeight;
  }, [lastKey, typing]);
  useEffect(() => {
    const el = logRef.current;
    if (el && fromEnd.current !== null) el.scrollTop = el.scrollHeight - fromEnd.current;
    fromEnd.current = null;
  }, [firstKey]);
  const showEarlier = () => {
    const el = logRef.current;
    fromEnd.current = el ? el.scrollHeight - el.scrollTop : null;
    session.showEarlier();
  };

  const send = () => {
    if (!text.trim() || tooLong) return;
    session.say(text);
    setText('');
  };
  // The button goes with the failure: keep focus in the conversation rather than lose it to the
  // page (the transcript, not the message box, so that a phone does not open its keyboard).
  const resend = (clientId: string) => {
    session.resend(clientId);
    logRef.current?.focus();
  };

  const offline = state.link === 'retrying' || (state.link === 'connecting' && state.phase !== 'joining');
  let status;
  if (state.phase === 'joining') {
    status = <p>{t.loading}</p>;
  } else if (state.phase === 'waiting') {
    status = (
      <>
        {state.transferring && <p class="note">{t.transferring}</p>}
        {state.position !== null && <p data-testid="position">{t.position(state.position)}</p>}
        {state.waitMs !== null && <p data-testid="wait">{t.wait(roughDuration(state.waitMs, lang))}</p>}
        <p class="hint">{t.waitingHint}</p>
      </>
    );
  } else {
    status = <p data-testid="connected">{t.connected(state.operatorName ?? '')}</p>;
  }

  return (
    <section class="card conversation" aria-labelledby="conv-title">
      <h2 id="conv-title" tabIndex={-1} ref={heading}>
        {state.phase === 'chat' ? t.chatTitle : t.waitingTitle}
      </h2>
      <div class="status" role="status" aria-live="polite">
        {status}
      </div>
      {offline && (
        <div class="banner" role="alert">
          <span>{t.reconnecting}</span>
          <button type="button" class="link" onClick={() => session.retryNow()}>
            {t.reconnectNow}
          </button>
        </div>
      )}
      {state.error && state.error.code !== 'ended' && (
        <p class="problem" role="alert" data-testid="problem">
          {state.error.clientId !== undefined ? t.lineNotSent : (t.problems[state.error.code] ?? t.problemOther)}
        </p>
      )}
      <div
        class="transcript"
        ref={logRef}
        role="log"
        aria-live="polite"
        aria-label={t.chatTitle}
        data-testid="transcript"
        tabIndex={0}
      >
        {state.earlier && (
          <p class="earlier">
            <button
              type="button"
              class="link"
              disabled={state.loadingEarlier}
              onClick={showEarlier}
              data-testid="show-earlier"
            >
              {state.loadingEarlier ? t.loadingEarlier : t.showEarlier}
            </button>
          </p>
        )}
        <ol>
          {state.lines.map((l) => (
            <LineView key={l.key} line={l} t={t} lang={lang} onResend={resend} />
          ))}
        </ol>
      </div>
      <p class="typing" aria-live="polite">
        {typing ? t.typing : ''}
      </p>
      <form
        class="composer"
        onSubmit={(e) => {
          e.preventDefault();
          send();
        }}
      >
        <label for="message" class="visually-hidden">
          {t.message}
        </label>
        <textarea
          id="message"
          name="message"
          rows={2}
          aria-invalid={tooLong}
          aria-describedby={tooLong ? 'too-long' : undefined}
          placeholder={t.placeholder}
          value={text}
          disabled={state.phase === 'joining' || state.error?.code === 'replaced'}
          onInput={(e) => {
            setText(e.currentTarget.value);
            session.typing();
          }}
          onKeyDown={(e) => {
            if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
              e.preventDefault();
              send();
            }
          }}
        />
        <button type="submit" class="primary" disabled={!text.trim() || tooLong || state.error?.code === 'replaced'}>
          {t.send}
        </button>
      </form>
      {/* Always there, so that screen readers announce the text when it appears. */}
      <p id="too-long" class={tooLong ? 'problem' : 'hint'} role="status" data-testid="too-long">
        {tooLong ? t.tooLong(over) : ''}
      </p>
      <div class="leave">
        {confirming ? (
          <div class="confirm" role="group" aria-label={t.confirmLeave}>
            <span>{t.confirmLeave}</span>
            <button type="button" class="secondary" onClick={() => setConfirming(false)}>
              {t.stay}
            </button>
            <button type="button" class="danger-button" onClick={() => session.leave()}>
              {t.yesLeave}
            </button>
          </div>
        ) : (
          <button type="button" class="secondary" onClick={() => setConfirming(true)}>
            {t.leave}
          </button>
        )}
      </div>
    </section>
  );
}

function LineView({
  line,
  t,
  lang,
  onResend,
}: {
  line: Line;
  t: S;
  lang: string;
  onResend: (clientId: string) => void;
}) {
  const mine = line.sender === 'caller';
  const who = mine ? t.you : line.sender === 'system' ? t.system : t.counsellor;
  const status =
    line.status === 'pending'
      ? t.sending
      : line.status === 'failed'
        ? t.notSent
        : line.status === 'delivered'
          ? t.delivered
          : null;
  return (
    <li
      class={`line ${mine ? 'mine' : 'theirs'} from-${line.sender} ${line.status ?? ''}`}
      data-status={line.status}
      data-client-id={line.clientId}
    >
      <span class="who">{who}</span>
      <p class="body">{line.body}</p>
      <span class="meta">
        {timeOfDay(line.at, lang === 'en' ? 'en' : 'zh-CN')}
        {status && <span class="delivery"> · {status}</span>}
      </span>
      {line.status === 'failed' && line.failure && (
        <div class="not-sent">
          <p class="why" id={`why-${line.key}`} data-testid="not-sent-why">
            {t.lineProblems[line.failure.code] ?? t.lineProblemOther}
            {line.failure.errorId && <span class="ref"> ({t.reference(line.failure.errorId)})</span>}
          </p>
          {canResend(line) && (
            <button
              type="button"
              class="secondary resend"
              data-testid="resend"
              aria-label={t.resendLine(excerpt(line.body))}
              aria-describedby={`why-${line.key}`}
              onClick={() => onResend(line.clientId!)}
            >
              {t.resend}
            </button>
          )}
        </div>
      )}
    </li>
  );
}

/** The start of a line, to tell a screen reader which line a button is for. */
function excerpt(text: string): string {
  const chars = [...text];
  return chars.length > 40 ? `${chars.slice(0, 40).join('')}…` : text;
}

function Ended({ session, t }: { session: CallerSession; t: S }) {
  const state = session.state;
  const [score, setScore] = useState<number | null>(null);
  const heading = useFocusHeading('ended');
  return (
    <section class="card ended" aria-labelledby="ended-title" data-testid="ended">
      <h2 id="ended-title" tabIndex={-1} ref={heading}>
        {t.ended}
      </h2>
      {state.endedBy && <p>{t.endedBy[state.endedBy]}</p>}
      <p>{t.thanks}</p>
      <fieldset class="survey">
        <legend>{t.survey}</legend>
        <div class="scale">
          {t.surveyScale.map((label, i) => (
            <label key={i} class={`score ${score === i + 1 ? 'chosen' : ''}`}>
              <input
                type="radio"
                name="helped"
                value={i + 1}
                checked={score === i + 1}
                onChange={() => setScore(i + 1)}
              />
              <span class="n">{i + 1}</span>
              <span class="label">{label}</span>
            </label>
          ))}
        </div>
        <p class="hint">{t.surveyLocal}</p>
        {score !== null && <p role="status">{t.surveyThanks}</p>}
      </fieldset>
      <button type="button" class="primary" onClick={() => session.restart()}>
        {t.newChat}
      </button>
    </section>
  );
}
