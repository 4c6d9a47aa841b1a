// The console's live state: one staff WebSocket per person (the server closes an older one when
// a newer one connects), and everything it tells: presence, offers, held and joined contacts,
// the floor, crisis incidents and pages. Pages read it through `useStaff` and act through the
// methods.

import { useEffect, useState } from 'preact/hooks';
import type {
  ContactDetail,
  ContactId,
  ContactSummary,
  EndedBy,
  FloorOperator,
  HistoryItem,
  IncidentDetail,
  IncidentId,
  IncidentView,
  JoinMode,
  OperatorId,
  OperatorState,
  Presence,
  RiskLevel,
  Role,
  StaffEvent,
  StaffLine,
  StaffRequest,
  TranscriptLines,
  TransferTarget,
} from '../proto/hotline';
import { PROTOCOL_VERSION } from '../proto/hotline';
import { ApiError, api, serverNow } from '../shared/api';
import { JsonSocket, clientId, wsUrl, type SocketStatus } from '../shared/socket';

export interface PendingLine {
  clientId: string;
  body: string;
  at: number;
  failed?: boolean;
  /** Why the server refused it (its `error` frame names the line). */
  refusal?: { code: string; message: string; errorId?: string | null };
}

export interface Chat {
  id: ContactId;
  summary: ContactSummary;
  lines: StaffLine[];
  /** Lines exist before the first of `lines` (a long transcript comes a page at a time). */
  earlier: boolean;
  pending: PendingLine[];
  history: HistoryItem[];
  /** Holder: the contact is mine. Participant: I joined it (supervisors, crisis leads). */
  as: 'holder' | 'participant';
  /** For a participant: how I joined (`hello` says it again after a reconnect or a reload). */
  mode: JoinMode | null;
  wrap: { deadline: number; by: EndedBy } | null;
  typingUntil: number;
  /** Who else has joined the contact, and how (by account id). */
  participants: Record<string, JoinMode>;
  unread: number;
}

export interface Offer {
  contact: ContactSummary;
  expiresAt: number;
  /** When it arrived (server clock), for the countdown's full length. */
  receivedAt: number;
  transcript: StaffLine[];
  /** The caller wrote more than `transcript` holds (its newest lines). */
  earlier: boolean;
}

export type Notice =
  | { id: number; kind: 'withdrawn'; contact: ContactId; reason: string }
  | { id: number; kind: 'released'; contact: ContactId; reason: string }
  | { id: number; kind: 'completed'; contact: ContactId }
  | { id: number; kind: 'error'; code: string; message: string; errorId?: string | null }
  | { id: number; kind: 'shutdown' };

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
type NoticeInput = DistributiveOmit<Notice, 'id'>;

export interface StaffState {
  link: SocketStatus;
  replaced: boolean;
  me: { id: OperatorId; name: string; role: Role } | null;
  opState: OperatorState | null;
  offers: Offer[];
  chats: Chat[];
  active: ContactId | null;
  floor: { contacts: ContactSummary[]; operators: FloorOperator[] } | null;
  notices: Notice[];
  /** Crisis incidents this console has heard of (frames and lists), by id. */
  incidents: Record<number, IncidentView>;
  /** How many changes of each incident this console has been told of (a change may keep the view as it was: a step). */
  incidentChanges: Record<number, number>;
  /** Incidents paging me now (a `page` frame), until someone acknowledges or resolves them. */
  paged: IncidentId[];
  /** Contacts I held that ended in this tab, or left me (transferred, requeued) once I had
   *  talked with the caller or started the note: their notes are finished on the desk. */
  notesToFinish: ContactId[];
}

const NOTES_KEY = 'hotline.notesToFinish';

/** How long after its expiry (server clock) an offer's card stays when nothing withdrew it. */
const OFFER_GRACE_MS = 2_000;

function loadNotesToFinish(): ContactId[] {
  try {
    const v = JSON.parse(sessionStorage.getItem(NOTES_KEY) ?? '[]');
    return Array.isArray(v) ? v.filter((x) => Number.isInteger(x)) : [];
  } catch {
    return [];
  }
}

function saveNotesToFinish(ids: ContactId[]) {
  try {
    sessionStorage.setItem(NOTES_KEY, JSON.stringify(ids));
  } catch {
    // Not kept over a reload; the drafts themselves are on the server.
  }
}

/** The open incident of a contact, if this console knows one. */
export function incidentOf(state: StaffState, contact: ContactId): IncidentView | null {
  let found: IncidentView | null = null;
  for (const i of Object.values(state.incidents)) {
    if (i.contact !== contact) continue;
    if (!found || i.id > found.id) found = i;
  }
  return found;
}

const sortLines = (lines: StaffLine[]) => [...lines].sort((a, b) => a.seq - b.seq);

function mergeLines(existing: StaffLine[], more: StaffLine[]): StaffLine[] {
  const bySeq = new Map(existing.map((l) => [l.seq, l]));
  for (const l of more) bySeq.set(l.seq, l);
  return sortLines([...bySeq.values()]);
}

/**
 * A contact as a reconnect's `hello` brings it (who has joined it included), keeping the
 * earlier lines this console had read when they run on into the new ones without a gap.
 */
function reconnected(old: Chat, fresh: Chat): Chat {
  const kept = { ...fresh, wrap: old.wrap, pending: old.pending };
  const lastOld = old.lines[old.lines.length - 1]?.seq;
  const firstNew = fresh.lines[0]?.seq;
  if (lastOld === undefined || firstNew === undefined || lastOld < firstNew - 1) return kept;
  const lines = mergeLines(old.lines, fresh.lines);
  return { ...kept, lines, earlier: lines[0].seq === firstNew ? fresh.earlier : old.earlier };
}

function chatOf(detail: ContactDetail, me: OperatorId | undefined): Chat {
  const mode = detail.mode ?? null;
  const holder = detail.summary.operator === me && mode === null;
  // Later joins and leaves come as `participant` frames, to everyone in the contact.
  const participants: Record<string, JoinMode> = {};
  for (const p of detail.participants) if (p.id !== me) participants[String(p.id)] = p.mode;
  return {
    id: detail.summary.id,
    summary: detail.summary,
    lines: sortLines(detail.transcript),
    earlier: detail.earlier,
    pending: [],
    history: detail.history,
    as: holder ? 'holder' : 'participant',
    mode,
    wrap: null,
    typingUntil: 0,
    participants,
    unread: 0,
  };
}

let noticeId = 0;

export class StaffStore {
  state: StaffState = {
    link: 'idle',
    replaced: false,
    me: null,
    opState: null,
    offers: [],
    chats: [],
    active: null,
    floor: null,
    notices: [],
    incidents: {},
    incidentChanges: {},
    paged: [],
    notesToFinish: loadNotesToFinish(),
  };
  private listeners = new Set<() => void>();
  private socket: JsonSocket<StaffEvent, StaffRequest>;
  private lastTyping = new Map<ContactId, number>();
  private submittedNotes = new Set<ContactId>();
  /** Contacts I hold whose note I have started (in this tab, or a draft found on the server). */
  private draftedNotes = new Set<ContactId>();
  /**
   * Pings sent and not yet answered, oldest first, each with the contact accepted just before it
   * (null for any other ping). The server answers a socket's frames in order, and an accept that
   * works has no answer of its own (`assigned` is a notice), so a ping on either side of an
   * accept brackets its refusal: an error that comes while that accept's ping is the oldest one
   * unanswered is the accept's.
   */
  private pings: (ContactId | null)[] = [];
  /** Incident frames received so far, and the number of the last one about each incident. */
  private incidentClock = 0;
  private incidentFrames = new Map<IncidentId, number>();
  /** Drops offers whose time is up while nothing says so (see `sweepOffers`). */
  private offerSweep: number | undefined;
  /** Called when the socket keeps failing: the session may have ended. */
  onAuthLost: (() => void) | null = null;

  constructor() {
    this.socket = new JsonSocket<StaffEvent, StaffRequest>(wsUrl('/ws/staff'), {
      onFrame: (f) => this.onFrame(f),
      onStatus: (status, detail) => {
        // 1008 "replaced by a newer console": another console of mine took over. Do not fight it.
        // (Any other close, a sign-out or being too slow included, connects again.)
        if (status === 'stopped' && detail?.code === 1008) this.set({ replaced: true });
        // Answers to the pings of an older socket never come.
        if (status === 'open') this.pings = [];
        this.set({ link: status });
        if (status === 'retrying') this.checkSession();
      },
      shouldRetry: (code, reason) => !(code === 1008 && /replaced/.test(reason)),
      ping: () => {
        this.pings.push(null);
        return { type: 'ping' };
      },
    });
  }

  start(): void {
    this.set({ replaced: false });
    this.socket.start();
    window.clearInterval(this.offerSweep);
    this.offerSweep = window.setInterval(() => this.sweepOffers(), 1_000);
  }

  stop(): void {
    this.socket.stop();
    window.clearInterval(this.offerSweep);
  }

  /**
   * An offer whose time is up is over, on the server's clock, whether or not its
   * `offer_withdrawn` reached this console (it goes nowhere while the connection is down). A
   * little grace after the countdown's end keeps a clock estimated to the second from taking a
   * card away while the server still takes its accept.
   */
  private sweepOffers() {
    const now = serverNow();
    const offers = this.state.offers.filter((o) => o.expiresAt + OFFER_GRACE_MS > now);
    if (offers.length !== this.state.offers.length) this.set({ offers });
  }

  private dropOffer(contact: ContactId) {
    this.set({ offers: this.state.offers.filter((o) => o.contact.id !== contact) });
  }

  subscribe(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  private set(patch: Partial<StaffState>) {
    this.state = { ...this.state, ...patch };
    for (const l of this.listeners) l();
  }

  private notify(n: NoticeInput) {
    const notice = { ...n, id: ++noticeId } as Notice;
    this.set({ notices: [...this.state.notices.slice(-4), notice] });
  }

  dismiss(id: number): void {
    this.set({ notices: this.state.notices.filter((n) => n.id !== id) });
  }

  private async checkSession() {
    try {
      await api('GET', '/api/me');
    } catch (e) {
      if ((e as { status?: number }).status === 401) {
        this.socket.stop();
        this.onAuthLost?.();
      }
    }
  }

  private updateChat(id: ContactId, f: (c: Chat) => Chat | null) {
    const chats: Chat[] = [];
    for (const c of this.state.chats) {
      if (c.id !== id) {
        chats.push(c);
        continue;
      }
      const next = f(c);
      if (next) chats.push(next);
    }
    let active = this.state.active;
    if (active !== null && !chats.some((c) => c.id === active)) active = chats[0]?.id ?? null;
    this.set({ chats, active });
  }

  private addChat(chat: Chat, focus: boolean) {
    const others = this.state.chats.filter((c) => c.id !== chat.id);
    this.set({
      chats: [...others, chat],
      active: focus || this.state.active === null ? chat.id : this.state.active,
      offers: this.state.offers.filter((o) => o.contact.id !== chat.id),
    });
  }

  // ----- actions -----

  send(frame: StaffRequest): boolean {
    const ok = this.socket.send(frame);
    if (!ok) this.notify({ kind: 'error', code: 'offline', message: 'not connected' });
    return ok;
  }

  /** Reads the page of a contact's transcript before the first line this console has. */
  async loadEarlier(id: ContactId): Promise<void> {
    const first = this.state.chats.find((c) => c.id === id)?.lines[0];
    if (!first) return;
    try {
      const page = await api<TranscriptLines>('GET', `/api/contacts/${id}/transcript?before=${first.seq}`);
      this.updateChat(id, (c) => ({
        ...c,
        lines: mergeLines(page.lines, c.lines),
        earlier: c.lines[0]?.seq === first.seq ? page.earlier : c.earlier,
      }));
    } catch (e) {
      const err = e instanceof ApiError ? e : new ApiError(0, 'network', String(e));
      this.notify({ kind: 'error', code: err.code, message: err.message, errorId: err.errorId });
    }
  }

  setPresence(presence: Presence) {
    this.send({ type: 'set_presence', presence });
  }

  accept(contact: ContactId) {
    this.ping(null);
    if (this.send({ type: 'accept', contact })) this.ping(contact);
  }

  /** A ping, remembered with the accept it follows (see `pings`). */
  private ping(after: ContactId | null): boolean {
    if (!this.socket.send({ type: 'ping' })) return false;
    this.pings.push(after);
    return true;
  }

  reject(contact: ContactId) {
    if (this.send({ type: 'reject', contact })) this.dropOffer(contact);
  }

  select(contact: ContactId) {
    this.set({ active: contact });
    this.updateChat(contact, (c) => ({ ...c, unread: 0 }));
  }

  say(contact: ContactId, text: string) {
    const body = text.trim();
    if (!body) return;
    const id = clientId();
    this.updateChat(contact, (c) => ({ ...c, pending: [...c.pending, { clientId: id, body, at: Date.now() }] }));
    if (!this.socket.send({ type: 'say', contact, text: body, client_id: id })) {
      this.updateChat(contact, (c) => ({
        ...c,
        pending: c.pending.map((p) => (p.clientId === id ? { ...p, failed: true } : p)),
      }));
    } else {
      // A refused line is answered at once (an `error` naming it); one still unanswered after
      // 10 s (the connection went meanwhile) is shown as not sent so the operator can resend it.
      window.setTimeout(() => {
        this.updateChat(contact, (c) => ({
          ...c,
          pending: c.pending.map((p) => (p.clientId === id ? { ...p, failed: true } : p)),
        }));
      }, 10_000);
    }
  }

  retryLine(contact: ContactId, line: PendingLine) {
    this.updateChat(contact, (c) => ({ ...c, pending: c.pending.filter((p) => p.clientId !== line.clientId) }));
    this.say(contact, line.body);
  }

  typing(contact: ContactId) {
    const now = Date.now();
    if (now - (this.lastTyping.get(contact) ?? 0) < 3_000) return;
    this.lastTyping.set(contact, now);
    this.socket.send({ type: 'typing', contact });
  }

  end(contact: ContactId) {
    this.send({ type: 'end', contact });
  }

  finishWrapUp(contact: ContactId) {
    this.send({ type: 'finish_wrap_up', contact });
  }

  transfer(contact: ContactId, target: TransferTarget) {
    this.send({ type: 'transfer', contact, target });
  }

  raiseRisk(contact: ContactId, risk: RiskLevel) {
    this.send({ type: 'raise_risk', contact, risk });
  }

  join(contact: ContactId, mode: JoinMode) {
    this.send({ type: 'join', contact, mode });
  }

  leave(contact: ContactId) {
    this.send({ type: 'leave', contact });
  }

  /**
   * Records incidents read over HTTP (frames keep them current afterwards), and drops those in
   * `gone`. A read started before the last frame about an incident (`since`, from
   * `incidentClock`) is older than what this console knows of it and leaves it as it is.
   */
  mergeIncidents(list: IncidentView[], since = Infinity, gone: IncidentId[] = []) {
    const incidents = { ...this.state.incidents };
    const fresh = (id: IncidentId) => (this.incidentFrames.get(id) ?? 0) <= since;
    for (const i of list) if (fresh(i.id)) incidents[i.id] = i;
    for (const id of gone) if (fresh(id)) delete incidents[id];
    this.set({ incidents, paged: this.state.paged.filter((id) => incidents[id]?.state === 'triggered') });
  }

  /**
   * The open incidents as the server has them now replace this console's open ones (after a
   * reconnect, and on every Refresh): frames report changes only while connected, so an incident
   * acknowledged or resolved meanwhile would otherwise stay triggered here, paging and red. One
   * this console holds open that the list leaves out is read again (resolved since, or beyond the
   * list's length), or dropped if it cannot be read. Only the roles that act on incidents can
   * list them; it rejects when the list cannot be read.
   */
  async reloadOpenIncidents(): Promise<void> {
    const since = this.incidentClock;
    const list = await api<IncidentView[]>('GET', '/api/incidents?state=open&limit=500');
    const listed = new Set(list.map((i) => i.id));
    const missing = Object.values(this.state.incidents).filter((i) => i.state !== 'resolved' && !listed.has(i.id));
    this.mergeIncidents(list, since);
    await Promise.all(missing.map((i) => this.rereadIncident(i.id, since)));
  }

  /** Reads one incident again; drops it when it cannot be read. */
  private async rereadIncident(id: IncidentId, since = this.incidentClock) {
    try {
      const detail = await api<IncidentDetail>('GET', `/api/incidents/${id}`);
      this.mergeIncidents([detail.incident], since);
    } catch {
      this.mergeIncidents([], since, [id]);
    }
  }

  /** After a (re)connection: the crisis incidents of the contacts on the desk, which frames
   *  only report when they change. One that cannot be read (no longer held) is left out. */
  private readIncidents(contacts: ContactId[]) {
    const since = this.incidentClock;
    for (const id of contacts) {
      api<IncidentView | null>('GET', `/api/contacts/${id}/crisis`)
        .then((incident) => incident && this.mergeIncidents([incident], since))
        .catch(() => {});
    }
  }

  /** Acknowledges an incident: paging stops for everyone. Refused as no longer open (someone
   *  resolved it while this console did not hear of it), the incident is read again. */
  async acknowledge(id: IncidentId): Promise<IncidentView> {
    try {
      const incident = await api<IncidentView>('POST', `/api/incidents/${id}/acknowledge`);
      this.mergeIncidents([incident]);
      return incident;
    } catch (e) {
      if (e instanceof ApiError && e.status === 409) await this.rereadIncident(id);
      throw e;
    }
  }

  /** Counts incident frames, so that a read over HTTP never undoes a newer frame. */
  private noteIncidentFrame(id: IncidentId) {
    this.incidentClock += 1;
    this.incidentFrames.set(id, this.incidentClock);
  }

  /** The note of a contact I hold is submitted: nothing to finish when it ends. */
  noteSubmitted(contact: ContactId) {
    this.submittedNotes.add(contact);
  }

  /** The note of a contact I hold is started: it stays on the desk if the contact leaves me. */
  noteDrafted(contact: ContactId) {
    this.draftedNotes.add(contact);
  }

  /** Puts a note on the desk's "notes to finish" (kept over a reload of the tab). */
  private noteToFinish(contact: ContactId) {
    if (this.submittedNotes.has(contact) || this.state.notesToFinish.includes(contact)) return;
    const notesToFinish = [...this.state.notesToFinish, contact];
    saveNotesToFinish(notesToFinish);
    this.set({ notesToFinish });
  }

  /**
   * A contact I held went on without me (transferred or requeued). My part of the conversation
   * is still mine to note (the server takes the note of anyone who was connected to it), so the
   * note stays on the desk when I had talked with the caller or started it.
   */
  private leftMe(chat: Chat) {
    if (chat.as !== 'holder') return;
    const me = this.state.me?.id;
    const talked = chat.lines.some((l) => l.sender === 'operator' && l.author === me);
    if (talked || this.draftedNotes.has(chat.id)) this.noteToFinish(chat.id);
  }

  noteDone(contact: ContactId) {
    const notesToFinish = this.state.notesToFinish.filter((c) => c !== contact);
    saveNotesToFinish(notesToFinish);
    this.set({ notesToFinish });
  }

  setFloor(frame: StaffEvent) {
    if (frame.type === 'floor') this.set({ floor: { contacts: frame.contacts, operators: frame.operators } });
  }

  // ----- frames -----

  private onFrame(f: StaffEvent) {
    const me = this.state.me?.id;
    switch (f.type) {
      case 'hello': {
        if (f.protocol !== PROTOCOL_VERSION)
          console.warn(`server protocol ${f.protocol}, console built for ${PROTOCOL_VERSION}`);
        const previous = new Map(this.state.chats.map((c) => [c.id, c]));
        // A contact I held that this console no longer gets back went on without me while I was
        // away (requeued, or its wrap-up completed): its note is still to finish.
        for (const old of previous.values()) {
          if (f.contacts.some((d) => d.summary.id === old.id)) continue;
          if (old.as === 'holder' && (old.wrap || old.summary.state === 'wrapping')) this.noteToFinish(old.id);
          else this.leftMe(old);
        }
        const chats = f.contacts.map((d) => {
          const old = previous.get(d.summary.id);
          const chat = chatOf(d, f.operator);
          // Keep what only this browser knew: wrap-up deadline, unsent lines, earlier lines read.
          return old ? reconnected(old, chat) : chat;
        });
        this.set({
          me: { id: f.operator, name: f.name, role: f.role },
          opState: f.state ?? null,
          chats,
          active: chats.some((c) => c.id === this.state.active) ? this.state.active : (chats[0]?.id ?? null),
          // An offer rang on, or was rescinded while this console was away (its withdrawal went
          // nowhere): `hello` names those still ringing.
          offers: this.state.offers.filter((o) => f.offered.includes(o.contact.id)),
        });
        // Incidents changed while this console was away are read again.
        this.readIncidents(chats.map((c) => c.id));
        if (f.role !== 'operator') this.reloadOpenIncidents().catch(() => {});
        break;
      }
      case 'offer':
        this.set({
          offers: [
            ...this.state.offers.filter((o) => o.contact.id !== f.contact.id),
            {
              contact: f.contact,
              expiresAt: f.expires_at,
              receivedAt: serverNow(),
              transcript: f.transcript,
              earlier: f.earlier,
            },
          ],
        });
        break;
      case 'offer_withdrawn':
        this.dropOffer(f.contact);
        if (f.reason !== 'rejected') this.notify({ kind: 'withdrawn', contact: f.contact, reason: f.reason });
        break;
      case 'assigned':
        this.addChat(chatOf(f.contact, me), true);
        // Mine again (a transfer came back to me): its note is finished beside the chat.
        this.noteDone(f.contact.summary.id);
        break;
      case 'joined': {
        const chat = chatOf(f.contact, me);
        this.addChat({ ...chat, as: 'participant', mode: f.mode }, true);
        break;
      }
      case 'message':
        this.updateChat(f.line.contact, (c) => ({
          ...c,
          lines: mergeLines(c.lines, [f.line]),
          typingUntil: f.line.sender === 'caller' ? 0 : c.typingUntil,
          unread: this.state.active === c.id ? 0 : c.unread + 1,
        }));
        break;
      case 'said':
        this.updateChat(f.contact, (c) => {
          const p = c.pending.find((x) => x.clientId === f.client_id);
          if (!p) return c;
          const line: StaffLine = {
            contact: c.id,
            seq: f.seq,
            sender: c.as === 'holder' ? 'operator' : 'participant',
            author: me ?? null,
            visibility: c.as === 'participant' && c.mode === 'whisper' ? 'operators' : 'all',
            body: p.body,
            at: Date.now(),
          };
          return { ...c, pending: c.pending.filter((x) => x !== p), lines: mergeLines(c.lines, [line]) };
        });
        break;
      case 'typing':
        this.updateChat(f.contact, (c) => ({ ...c, typingUntil: Date.now() + 4_000 }));
        break;
      case 'risk_changed':
        // A ringing offer keeps ringing when the risk rises; its card shows the new level.
        this.set({
          offers: this.state.offers.map((o) =>
            o.contact.id === f.contact ? { ...o, contact: { ...o.contact, risk: f.risk, colour: f.colour } } : o,
          ),
        });
        this.updateChat(f.contact, (c) => ({ ...c, summary: { ...c.summary, risk: f.risk, colour: f.colour } }));
        break;
      case 'caller_away':
      case 'caller_back':
        this.updateChat(f.contact, (c) => ({ ...c, summary: { ...c.summary, caller_away: f.type === 'caller_away' } }));
        break;
      case 'wrap_up':
        this.updateChat(f.contact, (c) => ({
          ...c,
          wrap: { deadline: f.deadline, by: f.by },
          summary: { ...c.summary, state: 'wrapping' },
          typingUntil: 0,
        }));
        break;
      case 'completed': {
        const held = this.state.chats.some((c) => c.id === f.contact && c.as === 'holder');
        this.updateChat(f.contact, () => null);
        this.notify({ kind: 'completed', contact: f.contact });
        if (held) this.noteToFinish(f.contact);
        break;
      }
      case 'released': {
        const chat = this.state.chats.find((c) => c.id === f.contact);
        this.updateChat(f.contact, () => null);
        this.notify({ kind: 'released', contact: f.contact, reason: f.reason });
        if (chat && (f.reason === 'transferred' || f.reason === 'requeued')) this.leftMe(chat);
        break;
      }
      case 'participant':
        this.updateChat(f.contact, (c) => {
          const participants = { ...c.participants };
          if (f.mode) participants[String(f.participant)] = f.mode;
          else delete participants[String(f.participant)];
          return { ...c, participants };
        });
        break;
      case 'state':
        this.set({ opState: f.state });
        break;
      case 'floor':
        this.set({ floor: { contacts: f.contacts, operators: f.operators } });
        break;
      case 'page': {
        const i = f.incident;
        this.noteIncidentFrame(i.id);
        const known = this.state.incidents[i.id];
        // A page delivered late must not ring for an incident already taken in hand.
        const stale =
          known &&
          (known.state === 'resolved' ||
            (known.state === 'acknowledged' && (known.acknowledged_at ?? 0) >= i.triggered_at));
        if (stale) break;
        this.set({
          incidents: { ...this.state.incidents, [i.id]: i },
          paged:
            i.state === 'triggered' && !this.state.paged.includes(i.id)
              ? [...this.state.paged, i.id]
              : this.state.paged,
        });
        break;
      }
      case 'incident_changed': {
        const i = f.incident;
        this.noteIncidentFrame(i.id);
        this.set({
          incidents: { ...this.state.incidents, [i.id]: i },
          incidentChanges: { ...this.state.incidentChanges, [i.id]: (this.state.incidentChanges[i.id] ?? 0) + 1 },
          paged: i.state === 'triggered' ? this.state.paged : this.state.paged.filter((id) => id !== i.id),
        });
        break;
      }
      case 'shutdown':
        this.notify({ kind: 'shutdown' });
        break;
      case 'pong':
        this.pings.shift();
        break;
      case 'error': {
        // A line refused: marked not sent, with the reason, where it was written.
        const line = f.client_id;
        const chat = line ? this.state.chats.find((c) => c.pending.some((p) => p.clientId === line)) : undefined;
        if (chat) {
          const refusal = { code: f.code, message: f.message, errorId: f.error_id };
          this.updateChat(chat.id, (c) => ({
            ...c,
            pending: c.pending.map((p) => (p.clientId === line ? { ...p, failed: true, refusal } : p)),
          }));
          break;
        }
        // An accept refused because the offer is gone: its card goes too (the notice says why).
        const accepted = this.pings[0];
        if (accepted != null && (f.code === 'not_offered' || f.code === 'unknown_contact')) this.dropOffer(accepted);
        this.notify({ kind: 'error', code: f.code, message: f.message, errorId: f.error_id });
        break;
      }
    }
  }
}

/** Re-renders the component whenever the store changes. */
export function useStaff(store: StaffStore): StaffState {
  const [, setTick] = useState(0);
  useEffect(() => store.subscribe(() => setTick((t) => t + 1)), [store]);
  return store.state;
}
