// The operator desk: presence, ringing offers, and the conversations as tabs.
import { useEffect, useState } from 'preact/hooks';
import type { BreakReason, Me, QueueDefinition } from '../proto/hotline';
import { serverNow } from '../shared/api';
import { clock, roughDuration, timeOfDay } from '../shared/format';
import { useLang } from '../shared/i18n';
import { languageName, topicLabel } from '../shared/topics';
import { ChatView, type Colleague } from './ChatView';
import { NotePanel } from './NotePanel';
import { ringing, unlockSound } from './ring';
import type { Offer, StaffStore, StaffState } from './staff';
import type { Strings } from './strings';
import { OpStateBadge, RiskBadge, useTicker } from './ui';

const BREAKS: BreakReason[] = ['meal', 'training', 'supervision', 'personal'];

export function Desk({
  store,
  state,
  t,
  me,
  queues,
  colleagues,
  names,
}: {
  store: StaffStore;
  state: StaffState;
  t: Strings;
  me: Me;
  queues: QueueDefinition[];
  colleagues: Colleague[] | null;
  names: Map<number, string>;
}) {
  const lang = useLang();
  const ringOn = state.offers.length > 0;
  useEffect(() => {
    ringing(ringOn);
    return () => ringing(false);
  }, [ringOn]);
  const active = state.chats.find((c) => c.id === state.active) ?? state.chats[0] ?? null;
  const held = state.chats;

  return (
    <div class="desk">
      <Presence store={store} state={state} t={t} />
      {me.languages.length === 0 && (
        <p class="problem" role="note">
          {t.noLanguages}
        </p>
      )}
      <section class="offers" aria-labelledby="offers-title">
        <h2 id="offers-title" class={state.offers.length ? '' : 'visually-hidden'}>
          {t.offers}
        </h2>
        <div aria-live="assertive" class="visually-hidden">
          {state.offers.map((o) => (
            <p key={o.contact.id}>
              {t.offerAnnounce(t.riskLevels[o.contact.risk], topicLabel(o.contact.topic, lang) ?? t.noTopic)}
            </p>
          ))}
        </div>
        {state.offers.map((o) => (
          <OfferCard key={o.contact.id} offer={o} store={store} t={t} queues={queues} />
        ))}
      </section>
      <section class="chats" aria-labelledby="chats-title">
        <h2 id="chats-title">{t.chats}</h2>
        {held.length === 0 ? (
          <p class="hint">{t.noChats}</p>
        ) : (
          <>
            <div role="tablist" class="tabs" aria-label={t.chats}>
              {held.map((c) => {
                const selected = active?.id === c.id;
                return (
                  <button
                    key={c.id}
                    role="tab"
                    id={`tab-${c.id}`}
                    aria-selected={selected}
                    aria-controls={`panel-${c.id}`}
                    tabIndex={selected ? 0 : -1}
                    class={`tab ${selected ? 'selected' : ''}`}
                    onClick={() => store.select(c.id)}
                    onKeyDown={(e) => {
                      const i = held.indexOf(c);
                      const next =
                        e.key === 'ArrowRight' ? held[i + 1] : e.key === 'ArrowLeft' ? held[i - 1] : undefined;
                      if (next) {
                        store.select(next.id);
                        document.getElementById(`tab-${next.id}`)?.focus();
                      }
                    }}
                  >
                    <span class={`dot dot-${c.summary.colour}`} aria-hidden="true" />
                    {t.contact(c.id)}
                    {c.as === 'participant' && c.mode ? ` · ${t.joinModes[c.mode]}` : ''}
                    {c.wrap ? ` · ${t.wrapUp}` : ''}
                    {c.unread > 0 && <span class="unread"> ({c.unread})</span>}
                  </button>
                );
              })}
            </div>
            {active && (
              <div role="tabpanel" id={`panel-${active.id}`} aria-labelledby={`tab-${active.id}`}>
                <ChatView
                  key={active.id}
                  chat={active}
                  store={store}
                  t={t}
                  queues={queues}
                  colleagues={colleagues}
                  names={names}
                />
              </div>
            )}
          </>
        )}
      </section>
      {state.notesToFinish.length > 0 && (
        <section class="notes-to-finish" aria-labelledby="notes-title" data-testid="notes-to-finish">
          <h2 id="notes-title">{t.note.toFinish}</h2>
          <p class="hint">{t.note.toFinishHint}</p>
          {state.notesToFinish.map((id) => (
            <article key={id} class="finish-note" aria-labelledby={`finish-${id}`} data-contact={id}>
              <div class="section-head">
                <h3 id={`finish-${id}`}>{t.contact(id)}</h3>
                <button type="button" onClick={() => store.noteDone(id)}>
                  {t.note.dismiss}
                </button>
              </div>
              <NotePanel contact={id} t={t} me={me.id} names={names} />
            </article>
          ))}
        </section>
      )}
    </div>
  );
}

function Presence({ store, state, t }: { store: StaffStore; state: StaffState; t: Strings }) {
  const [reason, setReason] = useState<BreakReason>('meal');
  const current = state.opState?.state ?? 'offline';
  const onBreak = state.opState?.state === 'break';
  return (
    <section class="presence" aria-labelledby="presence-title">
      <h2 id="presence-title">{t.presence}</h2>
      <OpStateBadge state={state.opState} t={t} />
      <div class="presence-controls" role="group" aria-label={t.presence}>
        <button
          type="button"
          class={current === 'available' || current === 'busy' || current === 'wrap_up' ? 'primary' : ''}
          aria-pressed={current === 'available' || current === 'busy' || current === 'wrap_up'}
          data-testid="set-available"
          onClick={() => {
            unlockSound();
            store.setPresence({ status: 'available' });
          }}
        >
          {t.setAvailable}
        </button>
        <span class="break-control">
          <label>
            <span class="visually-hidden">{t.breakReason}</span>
            <select
              value={reason}
              onChange={(e) => setReason(e.currentTarget.value as BreakReason)}
              aria-label={t.breakReason}
            >
              {BREAKS.map((r) => (
                <option key={r} value={r}>
                  {t.breakReasons[r]}
                </option>
              ))}
            </select>
          </label>
          <button
            type="button"
            aria-pressed={onBreak}
            class={onBreak ? 'primary' : ''}
            onClick={() => store.setPresence({ status: 'break', reason })}
          >
            {t.setBreak}
          </button>
        </span>
        <button
          type="button"
          aria-pressed={current === 'offline'}
          onClick={() => store.setPresence({ status: 'offline' })}
        >
          {t.setOffline}
        </button>
      </div>
    </section>
  );
}

function OfferCard({
  offer,
  store,
  t,
  queues,
}: {
  offer: Offer;
  store: StaffStore;
  t: Strings;
  queues: QueueDefinition[];
}) {
  useTicker(true, 250);
  const lang = useLang();
  const left = Math.max(0, offer.expiresAt - serverNow());
  const total = Math.max(1, offer.expiresAt - offer.receivedAt);
  const c = offer.contact;
  return (
    <article
      class={`offer offer-${c.colour}`}
      aria-labelledby={`offer-${c.id}`}
      data-testid="offer"
      data-contact={c.id}
    >
      <header>
        <h3 id={`offer-${c.id}`}>
          {t.incoming} · {t.contact(c.id)}
        </h3>
        <RiskBadge risk={c.risk} colour={c.colour} t={t} />
      </header>
      <dl class="facts">
        <dt>{t.topic}</dt>
        <dd>{topicLabel(c.topic, lang) ?? t.noTopic}</dd>
        <dt>{t.language}</dt>
        <dd>{languageName(c.language)}</dd>
        <dt>{t.queue}</dt>
        <dd>{queues.find((q) => q.id === c.queue)?.name ?? c.queue}</dd>
        <dt>{t.waited}</dt>
        <dd>{roughDuration(serverNow() - c.entered_at, lang)}</dd>
      </dl>
      <div class="countdown" data-testid="offer-countdown">
        <progress max={total} value={left} aria-hidden="true" />
        <span>{t.expiresIn(Math.ceil(left / 1000))}</span>
        <span class="visually-hidden">{clock(left)}</span>
      </div>
      <section class="waiting-lines" aria-label={t.wroteWhileWaiting}>
        <h4>{t.wroteWhileWaiting}</h4>
        {offer.earlier && <p class="hint">{t.earlierOnAccept}</p>}
        {offer.transcript.length === 0 ? (
          <p class="hint">{t.nothingWritten}</p>
        ) : (
          <ol>
            {offer.transcript.map((l) => (
              <li key={l.seq}>
                <span class="meta">{timeOfDay(l.at, lang)}</span> {l.body}
              </li>
            ))}
          </ol>
        )}
      </section>
      <div class="offer-actions">
        <button type="button" class="primary" onClick={() => store.accept(c.id)} data-testid="accept">
          {t.accept}
        </button>
        <button type="button" onClick={() => store.reject(c.id)}>
          {t.reject}
        </button>
      </div>
    </article>
  );
}
