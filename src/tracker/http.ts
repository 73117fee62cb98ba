/**
 * HTTP(S) tracker transport (BEP 3 announce, BEP 48 scrape) over node:http and
 * node:https: one GET with a total time budget, at most 5 redirects (followed by
 * hand, http/https only), credentials in URLs never sent, replies capped at 1 MiB
 * while reading. Parsing lives in response.ts. (Not undici: importing it costs
 * ~20 MiB of RSS, a fifth of tt's memory budget, for a few small GETs; see README
 * "Dependencies".)
 */
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import { TrackerError, errorMessage } from '../core/errors.js';
import { CLIENT_VERSION } from '../core/ids.js';
import { parseAnnounceResponse, parseScrapeResponse } from './response.js';
import { buildAnnounceUrl, buildScrapeUrl, scrapeUrlFor } from './url.js';
import {
  TRACKER_TIMEOUT_MS,
  TrackerTimeoutError,
  type AnnounceParams,
  type AnnounceResult,
  type ScrapeResult,
  type TrackerRequestOptions,
} from './types.js';

export const MAX_REPLY_BYTES = 1024 * 1024;
export const MAX_REDIRECTS = 5;
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);

function assertHttpUrl(url: string): URL {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new TrackerError(`invalid tracker URL: ${url}`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new TrackerError(`unsupported tracker URL scheme: ${parsed.protocol}`);
  }
  // port 0 cannot be dialed: node would dial the scheme's default port, one nobody named (client.ts
  // skips such a URL in a torrent; this is a redirect's Location)
  if (parsed.port === '0') throw new TrackerError('port 0 cannot be dialed');
  // credentials in a URL (the .torrent's or a redirect's Location) are never sent, as for web seeds:
  // node would turn them into Basic auth for whatever host the URL names
  parsed.username = '';
  parsed.password = '';
  return parsed;
}

/** Drop a reply body we will not read; destroying it must not surface as an unhandled 'error'. */
function discard(body: IncomingMessage): void {
  body.on('error', () => {});
  body.destroy();
}

/** One GET: resolves with the response head once it arrives (the body is still to be read). */
function get(url: URL, signal: AbortSignal): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const transport = url.protocol === 'https:' ? https : http;
    // agent: false: a fresh connection each time (trackers such as opentracker close after every reply;
    // a pooled socket the tracker already closed fails with ECONNRESET)
    const req = transport.get(url, { agent: false, signal, headers: { 'user-agent': `tt/${CLIENT_VERSION}`, 'accept-encoding': 'identity' } }, resolve);
    req.on('error', reject);
  });
}

function describeFailure(err: unknown, timeout: AbortSignal, caller: AbortSignal | undefined, timeoutMs: number): TrackerError {
  if (err instanceof TrackerError) return err;
  if (caller?.aborted) return new TrackerError('tracker request aborted', { cause: err });
  if (timeout.aborted) return new TrackerTimeoutError(`tracker did not answer within ${timeoutMs} ms`);
  const code = (err as { code?: unknown } | undefined)?.code;
  const detail = typeof code === 'string' ? `${code}: ${errorMessage(err)}` : errorMessage(err);
  return new TrackerError(`cannot reach tracker: ${detail}`, { cause: err });
}

/** GET `url` and return its body; redirects followed, size and time bounded. */
export async function httpGetTrackerBody(url: string, opts: TrackerRequestOptions = {}): Promise<Buffer> {
  const timeoutMs = opts.timeoutMs ?? TRACKER_TIMEOUT_MS;
  const timeout = AbortSignal.timeout(timeoutMs);
  const signal = opts.signal ? AbortSignal.any([timeout, opts.signal]) : timeout;
  let current = url;
  try {
    for (let hop = 0; ; hop++) {
      const target = assertHttpUrl(current);
      signal.throwIfAborted();
      const res = await get(target, signal);
      const status = res.statusCode ?? 0;
      if (REDIRECT_STATUSES.has(status)) {
        discard(res);
        const location = res.headers.location;
        if (typeof location !== 'string' || location === '') throw new TrackerError(`HTTP ${status} without a Location`);
        if (hop >= MAX_REDIRECTS) throw new TrackerError(`more than ${MAX_REDIRECTS} redirects`);
        current = new URL(location, current).href;
        continue;
      }
      if (status !== 200) {
        discard(res);
        throw new TrackerError(`tracker answered HTTP ${status}`);
      }
      const declared = Number(res.headers['content-length']);
      if (Number.isFinite(declared) && declared > MAX_REPLY_BYTES) {
        discard(res);
        throw new TrackerError(`tracker reply larger than ${MAX_REPLY_BYTES} bytes`);
      }
      const chunks: Buffer[] = [];
      let total = 0;
      for await (const chunk of res) {
        const b = chunk as Buffer;
        total += b.length;
        if (total > MAX_REPLY_BYTES) {
          discard(res);
          throw new TrackerError(`tracker reply larger than ${MAX_REPLY_BYTES} bytes`);
        }
        chunks.push(b);
      }
      // a reply cut short (connection closed before Content-Length bytes) is an error, not a body
      if (!res.complete) throw new TrackerError('tracker reply was cut short');
      return Buffer.concat(chunks, total);
    }
  } catch (err) {
    throw describeFailure(err, timeout, opts.signal, timeoutMs);
  }
}

export async function announceHttp(url: string, p: AnnounceParams, opts: TrackerRequestOptions = {}): Promise<AnnounceResult> {
  const body = await httpGetTrackerBody(buildAnnounceUrl(url, p), opts);
  return parseAnnounceResponse(body);
}

/** Scrape through the BEP 48 URL derived from the announce URL. */
export async function scrapeHttp(url: string, infoHash: Buffer, opts: TrackerRequestOptions = {}): Promise<ScrapeResult> {
  const scrapeUrl = scrapeUrlFor(url);
  if (scrapeUrl === undefined) throw new TrackerError('this tracker has no scrape URL (BEP 48)');
  const body = await httpGetTrackerBody(buildScrapeUrl(scrapeUrl, infoHash), opts);
  return parseScrapeResponse(body, infoHash);
}
