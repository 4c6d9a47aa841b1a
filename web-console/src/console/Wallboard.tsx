// The supervisors' wallboard: queues (waiting, oldest wait), operators and their states, live
// contacts with risk colours, and monitor / whisper / barge into a live contact.
import { useEffect } from 'preact/hooks';
import type { ContactSummary, IncidentView, JoinMode, QueueDefinition, StaffEvent } from '../proto/hotline';
import { api, serverNow } from '../shared/api';
import { clock, timeOfDay } from '../shared/format';
import { useLang } from '../shared/i18n';
import { languageName, topicLabel } from '../shared/topics';
import { ChatView, type Colleague } from './ChatView';
import { IncidentState, sourceText } from './Crisis';
import { incidentOf, type StaffState, type StaffStore } from './staff';
import type { Strings } from './strings';
import { OpStateBadge, RiskBadge, useTicker } from './ui';

const MODES: JoinMode[] = ['monitor', 'whisper', 'barge'];
const RISK_ORDER = { imminent: 0, high: 1, medium: 2, low: 3, none: 4 } as const;

export function Wallboard({
  store,
  state,
  t,
  queues,
  colleagues,
  names,
}: {
  store: StaffStore;
  state: StaffState;
  t: Strings;
  queues: QueueDefinition[];
  colleagues: Colleague[] | null;
  names: Map<number, string>;
}) {
  useTicker(true, 1000);
  const lang = useLang();
  const load = () => {
    api<StaffEvent>('GET', '/api/wallboard')
      .then((f) => store.setFloor(f))
      .catch(() => undefined);
    store.reloadOpenIncidents().catch(() => undefined);
  };
  // The socket sends the floor only when it changes: start from the HTTP snapshot.
  useEffect(load, []);

  const floor = state.floor;
  const now = serverNow();
  const contacts = [...(floor?.contacts ?? [])].sort(
    (a, b) => RISK_ORDER[a.risk] - RISK_ORDER[b.risk] || a.entered_at - b.entered_at,
  );
  const queueIds = [...new Set([...queues.map((q) => q.id), ...contacts.map((c) => c.queue)])];
  const queueName = (id: string) => queues.find((q) => q.id === id)?.name ?? id;
  const floorNames = new Map(floor?.operators.map((o) => [o.id, o.name]) ?? []);
  const nameOf = (id: number | null | undefined) =>
    id == null ? '—' : floorNames.get(id) || names.get(id) || `#${id}`;
  const joined = state.chats.filter((c) => c.as === 'participant');
  const incidents = Object.values(state.incidents)
    .filter((i) => i.state !== 'resolved')
    .sort((a, b) => b.id - a.id);

  return (
    <div class="wallboard">
      <div class="wall-head">
        <h2>{t.wallboard}</h2>
        <button type="button" onClick={load}>
          {t.refresh}
        </button>
      </div>

      <section aria-labelledby="wb-queues">
        <h3 id="wb-queues">{t.queues}</h3>
        <table class="grid" data-testid="wb-queues">
          <thead>
            <tr>
              <th scope="col">{t.queue}</th>
              <th scope="col">{t.waiting}</th>
              <th scope="col">{t.oldestWait}</th>
            </tr>
          </thead>
          <tbody>
            {queueIds.map((id) => {
              const waiting = contacts.filter(
                (c) => c.queue === id && (c.state === 'waiting' || c.state === 'offered'),
              );
              const oldest = waiting.length ? Math.max(...waiting.map((c) => now - c.entered_at)) : 0;
              const red = waiting.some((c) => c.colour === 'red');
              return (
                <tr key={id} data-queue={id}>
                  <th scope="row">{queueName(id)}</th>
                  <td class={red ? 'alert' : ''}>{waiting.length}</td>
                  <td>{waiting.length ? clock(oldest) : '—'}</td>
                </tr>
              );
            })}
          </tbody>
        </table>
      </section>

      <section aria-labelledby="wb-incidents">
        <h3 id="wb-incidents">{t.incidents}</h3>
        {incidents.length === 0 ? (
          <p class="hint">{t.noIncidents}</p>
        ) : (
          <table class="grid" data-testid="wb-incidents">
            <thead>
              <tr>
                <th scope="col">{t.crisis.columns.incident}</th>
                <th scope="col">{t.crisis.columns.state}</th>
                <th scope="col">{t.crisis.columns.contact}</th>
                <th scope="col">{t.crisis.columns.source}</th>
                <th scope="col">{t.crisis.columns.since}</th>
              </tr>
            </thead>
            <tbody>
              {incidents.map((i) => (
                <tr
                  key={i.id}
                  data-incident={i.id}
                  data-state={i.state}
                  class={i.state === 'triggered' ? 'row-red' : ''}
                >
                  <th scope="row">
                    <a href={`#/crisis/${i.id}`}>{t.crisis.incident(i.id)}</a>
                  </th>
                  <td>
                    <IncidentState incident={i} t={t} />
                    {i.acknowledged_by != null && i.state === 'acknowledged'
                      ? ` · ${t.flag.ackBy(nameOf(i.acknowledged_by), timeOfDay(i.acknowledged_at ?? 0, lang))}`
                      : i.state === 'triggered'
                        ? ` · ${t.flag.level(i.level)}`
                        : ''}
                  </td>
                  <td>{t.contact(i.contact)}</td>
                  <td>{sourceText(i, t, (id) => nameOf(id))}</td>
                  <td>{clock(now - i.created_at)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>

      <section aria-labelledby="wb-ops">
        <h3 id="wb-ops">{t.operators}</h3>
        {!floor || floor.operators.length === 0 ? (
          <p class="hint">{t.noOperators}</p>
        ) : (
          <table class="grid" data-testid="wb-operators">
            <thead>
              <tr>
                <th scope="col">{t.name}</th>
                <th scope="col">{t.state}</th>
                <th scope="col">{t.contactsCount}</th>
              </tr>
            </thead>
            <tbody>
              {floor.operators.map((o) => (
                <tr key={o.id} data-operator={o.id} data-name={o.name}>
                  <th scope="row">{o.name || `#${o.id}`}</th>
                  <td>
                    <OpStateBadge state={o.state} t={t} />
                  </td>
                  <td>{o.contacts.length}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>

      <section aria-labelledby="wb-contacts">
        <h3 id="wb-contacts">{t.liveContacts}</h3>
        {contacts.length === 0 ? (
          <p class="hint">{t.noContacts}</p>
        ) : (
          <table class="grid" data-testid="wb-contacts">
            <thead>
              <tr>
                <th scope="col">#</th>
                <th scope="col">{t.risk}</th>
                <th scope="col">{t.queue}</th>
                <th scope="col">{t.state}</th>
                <th scope="col">{t.operator}</th>
                <th scope="col">{t.since}</th>
                <th scope="col">{t.actions}</th>
              </tr>
            </thead>
            <tbody>
              {contacts.map((c) => (
                <ContactRow
                  key={c.id}
                  c={c}
                  t={t}
                  now={now}
                  queueName={queueName(c.queue)}
                  operatorName={nameOf(c.operator)}
                  joined={state.chats.some((x) => x.id === c.id)}
                  incident={incidentOf(state, c.id)}
                  mine={c.operator === state.me?.id}
                  onJoin={(mode) => store.join(c.id, mode)}
                />
              ))}
            </tbody>
          </table>
        )}
      </section>

      {joined.length > 0 && (
        <section aria-labelledby="wb-joined" class="joined">
          <h3 id="wb-joined">{t.joined}</h3>
          {joined.map((chat) => (
            <ChatView
              key={chat.id}
              chat={chat}
              store={store}
              t={t}
              queues={queues}
              colleagues={colleagues}
              names={names}
            />
          ))}
        </section>
      )}
    </div>
  );
}

function ContactRow({
  c,
  t,
  now,
  queueName,
  operatorName,
  joined,
  incident,
  mine,
  onJoin,
}: {
  c: ContactSummary;
  t: Strings;
  now: number;
  queueName: string;
  operatorName: string;
  joined: boolean;
  incident: IncidentView | null;
  mine: boolean;
  onJoin: (mode: JoinMode) => void;
}) {
  const lang = useLang();
  const live = c.state === 'assigned';
  return (
    <tr data-contact={c.id} data-colour={c.colour} class={`row-${c.colour}`}>
      <th scope="row">{c.id}</th>
      <td>
        <RiskBadge risk={c.risk} colour={c.colour} t={t} />
      </td>
      <td>
        {queueName}
        {c.topic ? ` · ${topicLabel(c.topic, lang)}` : ''} · {languageName(c.language)}
      </td>
      <td>
        {t.contactStates[c.state]}
        {c.caller_away ? ` · ${t.callerAway}` : ''}
        {incident && incident.state !== 'resolved' && (
          <>
            {' '}
            <a
              href={`#/crisis/${incident.id}`}
              class="crisis-mark"
              data-testid="crisis-mark"
              data-state={incident.state}
            >
              {t.crisisMark(t.crisis.states[incident.state])}
            </a>
          </>
        )}
      </td>
      <td>{operatorName}</td>
      <td>{clock(now - c.entered_at)}</td>
      <td>
        {live && !joined && !mine ? (
          <div class="join-buttons">
            {MODES.map((m) => (
              <button
                key={m}
                type="button"
                onClick={() => onJoin(m)}
                aria-label={`${t.joinModes[m]} ${t.contact(c.id)}`}
              >
                {t.joinModes[m]}
              </button>
            ))}
          </div>
        ) : null}
      </td>
    </tr>
  );
}
