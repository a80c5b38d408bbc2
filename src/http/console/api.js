// The server API client. The key lives only in this module's variable: never in a URL, storage or a cookie.

let key = null;

export function setKey(k) {
  key = k;
}

/** The server's own identity (`server_api.publisher_id`, from the sign-in's `GET /api/server/nodes`): no
 * member may hold it, so a message from it is the server's. */
let publisher = null;
export function setPublisher(id) {
  publisher = typeof id === 'string' && id ? id : null;
}
export function publisherId() {
  return publisher;
}

export function forgetKey() {
  key = null;
}

export function signedIn() {
  return key !== null;
}

/** An error answer: `status` the HTTP status, `message` the server's `error` text, `code` its `code`. */
export class ApiError extends Error {
  constructor(status, message, code) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code || '';
  }
}

/**
 * Whether id `s` can be a URL path segment. `.` and `..` cannot: a browser folds them away as it parses the
 * URL (`/rooms/../messages` is `/messages`), and `%2E` / `%2E%2E` are folded just the same (the URL standard
 * treats them as dot segments), so no path reaches such a room or user. Calls that carry the id in a query or
 * a JSON body still work.
 */
export function addressable(s) {
  return String(s) !== '.' && String(s) !== '..';
}

/**
 * A path segment (room or user id) for a URL path; dots encoded too. Throws (an ApiError, code
 * `unaddressable`) for `.` and `..` rather than call another URL than meant.
 */
export function seg(s) {
  if (!addressable(s)) {
    throw new ApiError(0, `An id “${s}” cannot be put in a URL path (the browser would fold it away), so this part of the server API cannot be called for it`, 'unaddressable');
  }
  return encodeURIComponent(String(s)).replace(/\./g, '%2E');
}

/** `path` with a query string made from the entries of `params` that are not undefined or null. */
export function withQuery(path, params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) {
    if (v !== undefined && v !== null) q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `${path}?${s}` : path;
}

/**
 * Calls the server API: `method`, a same-origin `path` (`/api/server/...`), an optional JSON `body`.
 * Resolves to `{status, data}`; rejects with an ApiError for an error answer (or a network failure: status 0).
 */
/** How long a call may wait for its whole answer. */
const ANSWER_WITHIN_MS = 8000;

export async function call(method, path, body, { signal } = {}) {
  if (key === null) throw new ApiError(401, 'Not signed in', 'unauthorized');
  if (!path.startsWith('/api/server/')) throw new Error('the console only calls /api/server/');
  const headers = { 'X-API-Key': key, accept: 'application/json' };
  // A gateway that hangs (not one that is down) must not look healthy: no answer within this is a failure.
  const timeout = AbortSignal.timeout(ANSWER_WITHIN_MS);
  const init = {
    method,
    headers,
    signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
    cache: 'no-store',
    credentials: 'omit',
    redirect: 'error',
    referrerPolicy: 'no-referrer',
  };
  if (body !== undefined) {
    headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  let text;
  try {
    res = await fetch(path, init);
    text = await res.text();
  } catch (e) {
    if (timeout.aborted) throw new ApiError(0, `The gateway did not answer within ${ANSWER_WITHIN_MS / 1000} s`, 'network');
    if (e && e.name === 'AbortError') throw e;
    throw new ApiError(0, 'The gateway did not answer (network error)', 'network');
  }
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!res.ok) {
    const msg = data && typeof data.error === 'string' && data.error
      ? data.error
      : `HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ''}`;
    throw new ApiError(res.status, msg, data && typeof data.code === 'string' ? data.code : '');
  }
  return { status: res.status, data };
}

export async function get(path, params, opts) {
  return (await call('GET', withQuery(path, params), undefined, opts)).data;
}

export async function post(path, body, opts) {
  return (await call('POST', path, body, opts)).data;
}
