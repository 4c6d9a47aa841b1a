// A JSON WebSocket that reconnects by itself with exponential backoff and jitter, and pings to
// keep idle connections (and proxies) alive. Frames are typed by the generated protocol types.

export type SocketStatus = 'idle' | 'connecting' | 'open' | 'retrying' | 'stopped';

export interface SocketOptions<In> {
  /** Called on every (re)connection, before any frame: send `resume`/`join` here. */
  onOpen?: () => void;
  onFrame: (frame: In) => void;
  onStatus?: (status: SocketStatus, detail?: { code?: number; reason?: string; retryInMs?: number }) => void;
  /** Decides whether a close should be retried (default: always). */
  shouldRetry?: (code: number, reason: string) => boolean;
  ping?: () => unknown;
  pingEveryMs?: number;
  firstRetryMs?: number;
  maxRetryMs?: number;
}

export function wsUrl(path: string): string {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${location.host}${path}`;
}

export class JsonSocket<In, Out> {
  private ws: WebSocket | null = null;
  private retries = 0;
  private retryTimer: number | undefined;
  private pingTimer: number | undefined;
  private openedAt = 0;
  private wanted = false;
  status: SocketStatus = 'idle';

  constructor(
    private readonly url: string,
    private readonly opts: SocketOptions<In>,
  ) {}

  start(): void {
    this.wanted = true;
    if (!this.ws) this.connect();
  }

  /** Closes for good (until `start` again). */
  stop(): void {
    this.wanted = false;
    window.clearTimeout(this.retryTimer);
    window.clearInterval(this.pingTimer);
    const ws = this.ws;
    this.ws = null;
    if (ws && ws.readyState <= WebSocket.OPEN) ws.close(1000, 'done');
    this.setStatus('stopped');
  }

  /** Skips the remaining backoff and tries now. */
  retryNow(): void {
    if (!this.wanted || this.ws) return;
    window.clearTimeout(this.retryTimer);
    this.connect();
  }

  get isOpen(): boolean {
    return this.ws?.readyState === WebSocket.OPEN;
  }

  send(frame: Out): boolean {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  }

  private setStatus(status: SocketStatus, detail?: { code?: number; reason?: string; retryInMs?: number }) {
    this.status = status;
    this.opts.onStatus?.(status, detail);
  }

  private connect(): void {
    this.setStatus('connecting');
    let ws: WebSocket;
    try {
      ws = new WebSocket(this.url);
    } catch {
      this.scheduleRetry(0, 'invalid url');
      return;
    }
    this.ws = ws;
    ws.onopen = () => {
      if (this.ws !== ws) return;
      this.openedAt = Date.now();
      this.setStatus('open');
      this.opts.onOpen?.();
      const every = this.opts.pingEveryMs ?? 25_000;
      window.clearInterval(this.pingTimer);
      if (this.opts.ping) {
        this.pingTimer = window.setInterval(() => {
          const frame = this.opts.ping?.();
          if (frame !== undefined) this.send(frame as Out);
        }, every);
      }
    };
    ws.onmessage = (ev) => {
      if (this.ws !== ws || typeof ev.data !== 'string') return;
      let frame: In;
      try {
        frame = JSON.parse(ev.data) as In;
      } catch {
        return;
      }
      this.opts.onFrame(frame);
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      window.clearInterval(this.pingTimer);
      // A connection that stayed up a while starts the backoff from the beginning again.
      if (this.openedAt && Date.now() - this.openedAt > 10_000) this.retries = 0;
      this.openedAt = 0;
      if (!this.wanted) {
        this.setStatus('stopped', { code: ev.code, reason: ev.reason });
        return;
      }
      if (this.opts.shouldRetry && !this.opts.shouldRetry(ev.code, ev.reason)) {
        this.wanted = false;
        this.setStatus('stopped', { code: ev.code, reason: ev.reason });
        return;
      }
      this.scheduleRetry(ev.code, ev.reason);
    };
  }

  private scheduleRetry(code: number, reason: string): void {
    const first = this.opts.firstRetryMs ?? 1_000;
    const max = this.opts.maxRetryMs ?? 20_000;
    const base = Math.min(max, first * 2 ** this.retries);
    const delay = Math.round(base / 2 + (Math.random() * base) / 2);
    this.retries += 1;
    this.setStatus('retrying', { code, reason, retryInMs: delay });
    window.clearTimeout(this.retryTimer);
    this.retryTimer = window.setTimeout(() => {
      if (this.wanted && !this.ws) this.connect();
    }, delay);
  }
}

/** A short random id for matching a line with its acknowledgement. */
export function clientId(): string {
  const bytes = new Uint8Array(9);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}
