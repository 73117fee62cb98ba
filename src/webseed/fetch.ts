/**
 * One bounded HTTP(S) range GET for a web seed (BEP 19): `Range: bytes=a-b`,
 * and the answer must be exactly those bytes: a 206 whose Content-Range names
 * them, or a 200 for a range starting at 0 (a server that ignores Range; we
 * stop reading at the range's end). Redirects followed by hand (at most 5,
 * http/https only), at most 30 s without progress (no answer, or no bytes of
 * the body), the body never more than the range. Failures are WebSeedErrors: the caller backs off, nothing is fatal.
 */
import http, { type Agent, type IncomingMessage } from 'node:http';
import https from 'node:https';
import { errorMessage } from '../core/errors.js';
import { CLIENT_VERSION } from '../core/ids.js';
import type { RangeRequest } from './url.js';

export const WEB_SEED_TIMEOUT_MS = 30_000;
export const MAX_WEB_SEED_REDIRECTS = 5;
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);

export class WebSeedError extends Error {
  override readonly name = 'WebSeedError';
}

export interface FetchOptions {
  /** Keep-alive agents (http and https) shared by the requests of one web seed. */
  agents?: { http?: Agent; https?: Agent };
  signal?: AbortSignal;
  /** Longest wait for the answer or for the next bytes of the body. */
  timeoutMs?: number;
}

/** An AbortSignal that fires `ms` after the last touch() (the first starts the clock). */
function idleTimer(ms: number): { signal: AbortSignal; touch(): void; clear(): void } {
  const ac = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  return {
    signal: ac.signal,
    touch() {
      clearTimeout(timer);
      timer = setTimeout(() => ac.abort(), ms);
    },
    clear() {
      clearTimeout(timer);
    },
  };
}

function discard(body: IncomingMessage): void {
  body.on('error', () => {});
  body.destroy();
}

/** One GET; `sent` runs when the request has a socket (it may first wait for one of the agent's). */
function get(url: URL, range: string, opts: FetchOptions, signal: AbortSignal, sent: () => void): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const https_ = url.protocol === 'https:';
    const agent = https_ ? opts.agents?.https : opts.agents?.http;
    const headers = { 'user-agent': `tt/${CLIENT_VERSION}`, 'accept-encoding': 'identity', range };
    const req = (https_ ? https : http).get(url, { ...(agent ? { agent } : {}), signal, headers }, resolve);
    req.on('socket', sent);
    req.on('error', reject);
  });
}

/** "bytes a-b/total" (total may be "*"): [a, b], or undefined when it is not that. */
function parseContentRange(header: string | undefined): [number, number] | undefined {
  const m = header === undefined ? null : /^bytes (\d{1,15})-(\d{1,15})\/(\d{1,15}|\*)$/.exec(header.trim());
  return m ? [Number(m[1]), Number(m[2])] : undefined;
}

/** The bytes [req.start, req.end] of req.url, exactly; WebSeedError otherwise. */
export async function fetchRange(req: RangeRequest, opts: FetchOptions = {}): Promise<Buffer> {
  const timeoutMs = opts.timeoutMs ?? WEB_SEED_TIMEOUT_MS;
  const idle = idleTimer(timeoutMs);
  const timeout = idle.signal;
  const signal = opts.signal ? AbortSignal.any([timeout, opts.signal]) : timeout;
  const length = req.end - req.start + 1;
  let current = req.url;
  try {
    for (let hop = 0; ; hop++) {
      const target = new URL(current);
      if (target.protocol !== 'http:' && target.protocol !== 'https:') throw new WebSeedError(`redirected to a ${target.protocol} URL`);
      // credentials in a URL (a redirect's Location) are never sent: node would turn them into Basic auth
      target.username = '';
      target.password = '';
      signal.throwIfAborted();
      // the "no progress" clock starts when the request is on a socket, not while it queues behind others
      const res = await get(target, `bytes=${req.start}-${req.end}`, opts, signal, () => idle.touch());
      const status = res.statusCode ?? 0;
      if (REDIRECT_STATUSES.has(status)) {
        discard(res);
        const location = res.headers.location;
        if (typeof location !== 'string' || location === '') throw new WebSeedError(`HTTP ${status} without a Location`);
        if (hop >= MAX_WEB_SEED_REDIRECTS) throw new WebSeedError(`more than ${MAX_WEB_SEED_REDIRECTS} redirects`);
        current = new URL(location, current).href;
        continue;
      }
      if (status === 206) {
        const range = parseContentRange(res.headers['content-range']);
        if (!range || range[0] !== req.start || range[1] !== req.end) {
          discard(res);
          throw new WebSeedError(`HTTP 206 for bytes ${req.start}-${req.end} answered with Content-Range ${JSON.stringify(res.headers['content-range'] ?? null)}`);
        }
      } else if (status === 200) {
        // the whole file: usable only from its first byte (we stop at the range's end)
        if (req.start !== 0) {
          discard(res);
          throw new WebSeedError('the server ignores Range requests (HTTP 200 for a range not at the start)');
        }
      } else {
        discard(res);
        throw new WebSeedError(`HTTP ${status}`);
      }
      return await readExactly(res, length, status === 200, () => idle.touch());
    }
  } catch (err) {
    if (err instanceof WebSeedError) throw err;
    if (opts.signal?.aborted) throw new WebSeedError('stopped', { cause: err });
    if (timeout.aborted) throw new WebSeedError(`no progress for ${timeoutMs} ms`, { cause: err });
    const code = (err as { code?: unknown } | undefined)?.code;
    throw new WebSeedError(typeof code === 'string' ? `${code}: ${errorMessage(err)}` : errorMessage(err), { cause: err });
  } finally {
    idle.clear();
  }
}

/** Reads `length` bytes; more is an error for a 206, cut off for a 200 (the rest of the file). */
async function readExactly(res: IncomingMessage, length: number, wholeFile: boolean, progress: () => void): Promise<Buffer> {
  const out = Buffer.allocUnsafe(length);
  let got = 0;
  // a reply we stop reading (abort, stall) may still report a reset: never an unhandled 'error'
  res.on('error', () => {});
  for await (const chunk of res) {
    const b = chunk as Buffer;
    progress();
    if (got + b.length > length) {
      if (!wholeFile) {
        discard(res);
        throw new WebSeedError(`more than the ${length} bytes asked for`);
      }
      b.copy(out, got, 0, length - got);
      got = length;
      discard(res);
      return out;
    }
    b.copy(out, got);
    got += b.length;
    // all we asked for: a reply that is not over (no Content-Length) is not waited for;
    // one that is over ends the loop by itself and keeps the connection for the next request
    if (got === length && !res.complete) {
      discard(res);
      return out;
    }
  }
  if (got < length) throw new WebSeedError(`${got} of ${length} bytes, then the reply ended`);
  return out;
}
