// HTTP calls to the server: JSON in and out, errors as ApiError {status, code, message}.
import type { ErrorBody, FieldError } from '../proto/hotline';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly errorId?: string | null,
    /** For `invalid_fields`: each refused field with its message. */
    readonly fields: FieldError[] = [],
  ) {
    super(message);
  }
}

/** Server clock minus this browser's clock, from the last response's Date header (ms). */
let skewMs = 0;

/** Now, on the server's clock (deadlines and offer expiry are server timestamps). */
export function serverNow(): number {
  return Date.now() + skewMs;
}

function noteSkew(res: Response) {
  const date = res.headers.get('date');
  if (!date) return;
  const server = Date.parse(date);
  if (Number.isNaN(server)) return;
  // The header has one-second resolution: only correct clocks that are clearly off.
  const skew = server + 500 - Date.now();
  skewMs = Math.abs(skew) > 2_000 ? skew : 0;
}

export async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  let res: Response;
  try {
    res = await fetch(path, {
      method,
      credentials: 'same-origin',
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    throw new ApiError(0, 'network', e instanceof Error ? e.message : 'network error');
  }
  noteSkew(res);
  if (res.status === 204) return undefined as T;
  const text = await res.text();
  let json: unknown = undefined;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    // Not JSON (a proxy's error page): reported below by status.
  }
  if (!res.ok) {
    const err = (json ?? {}) as Partial<ErrorBody>;
    throw new ApiError(
      res.status,
      err.code ?? `http_${res.status}`,
      err.message ?? res.statusText,
      err.error_id,
      Array.isArray(err.fields) ? err.fields : [],
    );
  }
  return json as T;
}
