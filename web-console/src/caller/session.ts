// The caller's side of one conversation, apart from the page: the socket, the join/resume
// handshake, pending and acknowledged lines, and what to show. The page subscribes to changes.
//
// Keeps the resume token in sessionStorage (this tab only), so a reload or a network loss comes
// back to the same contact; keeps the pseudonymous caller key in localStorage only with consent.

import type {
  Alternative,
  CallerEvent,
  CallerRequest,
  ContactState,
  EndedBy,
  ErrorFrame,
  ScreeningAnswer,
  Sender,
  TranscriptLine,
} from '../proto/hotline';
import { PROTOCOL_VERSION } from '../proto/hotline';
import { JsonSocket, clientId, wsUrl, type SocketStatus } from '../shared/socket';

const RESUME_KEY = 'hotline.resume_token';
const CALLER_KEY = 'hotline.caller_key';

export type Phase = 'start' | 'joining' | 'waiting' | 'chat' | 'ended' | 'closed';

export interface Line {
  key: string;
  seq?: number;
  sender: Sender;
  body: string;
  at: number;
  /** Lines the caller wrote: pending until the server has made them durable (`said`). */
  status?: 'pending' | 'delivered' | 'failed';
  clientId?: string;
  /**
   * Why a failed line was not sent, when the server's error named it (its `client_id`): the code,
   * and for `internal` the reference the server logged it under. Such a line was not stored.
   */
  failure?: { code: string; errorId?: string };
}

/**
 * Whether a line that was not sent may go again as it is: only one the server named as not
 * saved (an error without a `client_id` leaves open whether the line is stored), and not one
 * refused for what it holds (too long, not storable), which would be refused again.
 */
export function canResend(line: Line): boolean {
  const code = line.failure?.code;
  return line.status === 'failed' && code !== undefined && code !== 'too_large' && code !== 'invalid';
}

export interface JoinForm {
  queue: string;
  language: string;
  topic: string | null;
  age_group: string | null;
  screening: ScreeningAnswer;
  remember: boolean;
}

export interface CallerState {
  phase: Phase;
  /** The socket, as the page should describe it. */
  link: SocketStatus;
  position: number | null;
  waitMs: number | null;
  operatorName: string | null;
  lines: Line[];
  /** Lines exist before the first of `lines` (a long conversation comes back a page at a time). */
  earlier: boolean;
  loadingEarlier: boolean;
  typingUntil: number;
  transferring: boolean;
  endedBy: EndedBy | null;
  closed: { message: string; alternatives: Alternative[] } | null;
  /** The last refusal; `clientId` when it named one of the caller's lines. */
  error: { code: string; message: string; clientId?: string } | null;
  /** A resume found the earlier conversation over. */
  previousEnded: boolean;
}

function storage(kind: 'session' | 'local'): Storage | null {
  try {
    return kind === 'session' ? sessionStorage : localStorage;
  } catch {
    return null;
  }
}

export function rememberedCallerKey(): string | null {
  return storage('local')?.getItem(CALLER_KEY) ?? null;
}

function callerKey(remember: boolean): string | null {
  const store = storage('local');
  if (!remember) {
    store?.removeItem(CALLER_KEY);
    return null;
  }
  let key = store?.getItem(CALLER_KEY) ?? null;
  if (!key || key.length < 16 || key.length > 128) {
    const bytes = new Uint8Array(24);
    crypto.getRandomValues(bytes);
    key = btoa(String.fromCharCode(...bytes))
      .replace(/\+/g, '-')
      .replace(/\//g, '_')
      .replace(/=+$/, '');
    store?.setItem(CALLER_KEY, key);
  }
  return key;
}

/** A durable line, as the server sends it. */
function savedLine(t: TranscriptLine): Line {
  return {
    key: `s-${t.seq}`,
    seq: t.seq,
    sender: t.sender,
    body: t.body,
    at: t.at,
    status: t.sender === 'caller' ? 'delivered' : undefined,
  };
}

export class CallerSession {
  state: CallerState = {
    phase: 'start',
    link: 'idle',
    position: null,
    waitMs: null,
    operatorName: null,
    lines: [],
    earlier: false,
    loadingEarlier: false,
    typingUntil: 0,
    transferring: false,
    endedBy: null,
    closed: null,
    error: null,
    previousEnded: false,
  };
  private listeners = new Set<() => void>();
  private socket: JsonSocket<CallerEvent, CallerRequest>;
  private pendingJoin: CallerRequest | null = null;
  private lastTypingSent = 0;
  private leaveTimer: number | undefined;
  /** A `resume` is sent and not answered yet. */
  private resuming = false;
  /** Resumes refused in a row for a reason of the moment, and the timer of the next try. */
  private resumeRefusals = 0;
  private resumeTimer: number | undefined;

  constructor() {
    this.socket = new JsonSocket<CallerEvent, CallerRequest>(wsUrl('/ws/caller'), {
      onOpen: () => this.onOpen(),
      onFrame: (f) => this.onFrame(f),
      onStatus: (status) => this.set({ link: status }),
      ping: () => ({ type: 'ping' }),
    });
    if (this.resumeToken) {
      // Back after a reload: rejoin the same conversation before showing anything else.
      this.set({ phase: 'joining' });
      this.socket.start();
    }
  }

  subscribe(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  private set(patch: Partial<CallerState>) {
    this.state = { ...this.state, ...patch };
    for (const l of this.listeners) l();
  }

  private get resumeToken(): string | null {
    return storage('session')?.getItem(RESUME_KEY) ?? null;
  }

  private set resumeTokenValue(token: string | null) {
    const s = storage('session');
    if (token) s?.setItem(RESUME_KEY, token);
    else s?.removeItem(RESUME_KEY);
  }

  join(form: JoinForm): void {
    this.pendingJoin = {
      type: 'join',
      queue: form.queue,
      language: form.language,
      topic: form.topic,
      age_group: form.age_group,
      screening: form.screening,
      accepted_confidentiality: true,
      caller_key: callerKey(form.remember),
    };
    this.set({
      phase: 'joining',
      error: null,
      closed: null,
      previousEnded: false,
      lines: [],
      earlier: false,
      endedBy: null,
    });
    if (this.socket.isOpen) this.onOpen();
    else this.socket.start();
  }

  say(text: string): void {
    const body = text.trim();
    if (!body) return;
    const id = clientId();
    const line: Line = { key: `c-${id}`, sender: 'caller', body, at: Date.now(), status: 'pending', clientId: id };
    this.set({ lines: [...this.state.lines, line] });
    // While offline the line stays pending and is sent after the resume.
    this.socket.send({ type: 'say', text: body, client_id: id });
  }

  /**
   * Sends a line that was not sent again, as it was: same text, same `client_id`. The id names the
   * line on this page, not one attempt: the server answers each `say` once (`said`, or an error
   * naming it) and stores a line only when it answers `said`, and a line is sent again only after
   * its error, so one line is never in flight twice. It moves to the end of the conversation,
   * where the counsellor will see it.
   */
  resend(clientId: string): void {
    const line = this.state.lines.find((l) => l.clientId === clientId);
    if (!line || !canResend(line)) return;
    const again: Line = { ...line, status: 'pending', failure: undefined, at: Date.now() };
    const error = this.state.error?.clientId === clientId ? null : this.state.error;
    this.set({ lines: [...this.state.lines.filter((l) => l !== line), again], error });
    // While offline it stays pending and is sent after the resume, like any pending line.
    this.socket.send({ type: 'say', text: again.body, client_id: clientId });
  }

  /** Asks for the lines before the first one shown. */
  showEarlier(): void {
    const first = this.state.lines.find((l) => l.seq !== undefined)?.seq;
    if (first === undefined || this.state.loadingEarlier) return;
    if (this.socket.send({ type: 'earlier', before: first })) this.set({ loadingEarlier: true });
  }

  typing(): void {
    const now = Date.now();
    if (now - this.lastTypingSent < 3_000) return;
    this.lastTypingSent = now;
    this.socket.send({ type: 'typing' });
  }

  leave(): void {
    if (!this.socket.send({ type: 'leave' })) {
      this.finish('caller');
      return;
    }
    // The server answers with `ended`; do not leave the person hanging if it does not.
    this.leaveTimer = window.setTimeout(() => this.finish('caller'), 4_000);
  }

  /** After the end screen: back to the start. */
  restart(): void {
    this.set({
      phase: 'start',
      lines: [],
      earlier: false,
      endedBy: null,
      operatorName: null,
      position: null,
      waitMs: null,
      error: null,
      closed: null,
    });
  }

  retryNow(): void {
    this.socket.retryNow();
  }

  private onOpen() {
    const token = this.resumeToken;
    if (token) {
      this.sendResume(token);
    } else if (this.pendingJoin) {
      this.socket.send(this.pendingJoin);
    }
  }

  private sendResume(token: string) {
    window.clearTimeout(this.resumeTimer);
    this.resuming = true;
    this.socket.send({ type: 'resume', resume_token: token });
  }

  /** A resume refused for a reason of the moment (the server could not read or save): try
   *  again, 1 s, 2 s, 4 s… up to 30 s apart, keeping the place; pending lines go once resumed. */
  private resumeAgainLater() {
    const delay = Math.min(30_000, 1_000 * 2 ** this.resumeRefusals);
    this.resumeRefusals += 1;
    window.clearTimeout(this.resumeTimer);
    this.resumeTimer = window.setTimeout(() => {
      const token = this.resumeToken;
      if (token) this.sendResume(token);
    }, delay);
  }

  private finish(by: EndedBy) {
    window.clearTimeout(this.leaveTimer);
    window.clearTimeout(this.resumeTimer);
    this.resumeTokenValue = null;
    this.pendingJoin = null;
    this.socket.stop();
    this.set({ phase: 'ended', endedBy: by, transferring: false, typingUntil: 0 });
  }

  private onFrame(f: CallerEvent) {
    switch (f.type) {
      case 'hello':
        if (f.protocol !== PROTOCOL_VERSION) {
          console.warn(`server protocol ${f.protocol}, page built for ${PROTOCOL_VERSION}`);
        }
        break;
      case 'joined':
        this.resumeTokenValue = f.resume_token;
        this.pendingJoin = null;
        this.set({ phase: 'waiting', position: f.position, waitMs: f.estimated_wait_ms });
        break;
      case 'resumed':
        this.resuming = false;
        this.resumeRefusals = 0;
        this.onResumed(f.state, f.transcript, f.earlier, f.position ?? null, f.estimated_wait_ms ?? null);
        break;
      case 'earlier': {
        const first = this.state.lines.find((l) => l.seq !== undefined)?.seq ?? Infinity;
        const before = f.lines.filter((l) => l.seq < first).map(savedLine);
        this.set({ lines: [...before, ...this.state.lines], earlier: f.earlier, loadingEarlier: false });
        break;
      }
      case 'closed':
        this.pendingJoin = null;
        this.socket.stop();
        this.set({ phase: 'closed', closed: { message: f.message, alternatives: f.alternatives } });
        break;
      case 'queue_update':
        this.set({
          position: f.position,
          waitMs: f.estimated_wait_ms,
          phase: this.state.phase === 'joining' ? 'waiting' : this.state.phase,
        });
        break;
      case 'connected':
        this.set({ phase: 'chat', operatorName: f.operator_name, transferring: false, position: null, waitMs: null });
        break;
      case 'said': {
        const lines = this.state.lines.map((l) =>
          l.clientId === f.client_id ? { ...l, seq: f.seq, status: 'delivered' as const, failure: undefined } : l,
        );
        this.set({ lines });
        break;
      }
      case 'message': {
        if (this.state.lines.some((l) => l.seq === f.line.seq && l.sender !== 'caller')) break;
        this.set({ lines: [...this.state.lines, savedLine(f.line)], typingUntil: 0 });
        break;
      }
      case 'typing':
        this.set({ typingUntil: Date.now() + 4_000 });
        break;
      case 'transferring':
        this.set({ transferring: true, phase: 'waiting', operatorName: null });
        break;
      case 'ended':
        this.finish(f.by);
        break;
      case 'pong':
        break;
      case 'error':
        this.onError(f);
        break;
    }
  }

  private onResumed(
    state: ContactState,
    transcript: TranscriptLine[],
    earlier: boolean,
    position: number | null,
    waitMs: number | null,
  ) {
    if (state === 'wrapping' || state === 'completed' || state === 'abandoned') {
      this.finish('operator');
      return;
    }
    const known = transcript.map(savedLine);
    // Lines written but not acknowledged before the connection dropped: if the server has them
    // (same text, after the last acknowledged line) they were saved; otherwise send them again.
    const lastAcked = Math.max(0, ...this.state.lines.filter((l) => l.seq !== undefined).map((l) => l.seq!));
    const unsaved: Line[] = [];
    const claimed = new Set<number>();
    for (const l of this.state.lines.filter((x) => x.status === 'pending' || x.failure)) {
      // A line the server said it did not save stays as it is, to be sent again by hand.
      if (l.status === 'failed') {
        unsaved.push(l);
        continue;
      }
      const match = known.find(
        (k) => k.sender === 'caller' && k.body === l.body && (k.seq ?? 0) > lastAcked && !claimed.has(k.seq!),
      );
      if (match) claimed.add(match.seq!);
      else unsaved.push(l);
    }
    // Earlier lines this page had read stay, when they run on into the ones just sent.
    const firstKnown = known[0]?.seq;
    const saved = this.state.lines.filter((l) => l.seq !== undefined);
    const runsOn = firstKnown !== undefined && lastAcked >= firstKnown;
    const kept = runsOn ? saved.filter((l) => l.seq! < firstKnown) : [];
    const phase: Phase = state === 'assigned' ? 'chat' : 'waiting';
    this.set({
      phase,
      lines: [...kept, ...known, ...unsaved],
      earlier: kept.length > 0 ? this.state.earlier : earlier,
      loadingEarlier: false,
      position,
      waitMs,
      error: null,
    });
    for (const l of unsaved) {
      if (l.status === 'pending') this.socket.send({ type: 'say', text: l.body, client_id: l.clientId! });
    }
  }

  private onError(f: ErrorFrame) {
    const { code, message } = f;
    const toResume = this.resuming && f.client_id == null;
    if (toResume) this.resuming = false;
    if (toResume && (code === 'internal' || code === 'unavailable')) {
      this.resumeAgainLater();
      this.set({ error: { code, message } });
      return;
    }
    if (code === 'ended') {
      // The resume token points at a conversation that is over.
      this.resumeTokenValue = null;
      const wasChatting = this.state.lines.length > 0 && this.state.phase !== 'joining';
      this.socket.stop();
      if (wasChatting) this.finish('caller_lost');
      else this.set({ phase: 'start', previousEnded: true });
      return;
    }
    if (code === 'shutting_down') return; // the socket reconnects and resumes by itself
    if (code === 'replaced') {
      // Resumed in another window: reconnecting would take it back from there, and so on. The
      // lines not saved here are not sent from here either: they are marked so.
      this.socket.stop();
      const lines = this.state.lines.map((l) => (l.status === 'pending' ? { ...l, status: 'failed' as const } : l));
      this.set({ lines, error: { code, message } });
      return;
    }
    if (f.client_id != null) {
      // The answer to one line: the server refused it or could not save it. That line, and no
      // other, was not sent.
      const named = this.state.lines.find((l) => l.clientId === f.client_id && l.status === 'pending');
      if (!named) return;
      const failure = { code, errorId: f.error_id ?? undefined };
      const lines = this.state.lines.map((l) => (l === named ? { ...l, status: 'failed' as const, failure } : l));
      this.set({ lines, error: { code, message, clientId: f.client_id } });
      return;
    }
    if (this.state.phase === 'joining' && !this.resumeToken) {
      // The join was refused (rate limit, invalid form): back to the form, with the reason.
      this.pendingJoin = null;
      this.socket.stop();
      this.set({ phase: 'start', error: { code, message } });
      return;
    }
    // A frame the server could not read names no line: if it was a line, it was the newest one.
    // Any other refusal without a `client_id` answered something else (`not_joined` to `typing`,
    // `earlier` or `leave`: a refused line always carries its `client_id`), so it marks no line.
    if (code === 'invalid' || code === 'too_large') {
      const idx = [...this.state.lines].reverse().findIndex((l) => l.status === 'pending');
      if (idx >= 0) {
        const at = this.state.lines.length - 1 - idx;
        const lines = this.state.lines.map((l, i) => (i === at ? { ...l, status: 'failed' as const } : l));
        this.set({ lines });
      }
    }
    this.set({ error: { code, message } });
  }
}
