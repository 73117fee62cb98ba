/**
 * UDP tracker transport (BEP 15): connect, announce and scrape over one connected
 * dgram socket per request (closed in every path). Connection ids are cached per
 * tracker for 60 s. Lost packets are retransmitted with BEP 15's doubling backoff,
 * but starting at a few seconds and inside a total budget, so a dead tracker never
 * stalls a CLI. Replies with a wrong transaction id, short/garbled, or with an action
 * other than the one asked for (or error) are ignored: the attempt keeps waiting, it
 * never answers them with an immediate resend.
 */
import { randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { lookup } from 'node:dns/promises';
import { TrackerError, errorMessage } from '../core/errors.js';
import { filterPeers, type IpFamily } from './compact.js';
import { whenStarted } from './start.js';
import {
  decodeUdpReply,
  encodeAnnounceRequest,
  encodeConnectRequest,
  encodeScrapeRequest,
  type UdpReply,
} from './udp-codec.js';
import {
  TRACKER_TIMEOUT_MS,
  TrackerTimeoutError,
  TrackerRefusedError,
  clampInterval,
  sanitizeTrackerText,
  type AnnounceParams,
  type AnnounceResult,
  type ScrapeResult,
  type TrackerRequestOptions,
} from './types.js';

/** BEP 15: a connection id may be used for one minute after it was received. */
export const CONNECTION_ID_TTL_MS = 60_000;
/** First retransmission after this long, then doubling (BEP 15 says 15 s; too slow for a CLI). */
export const UDP_RETRY_BASE_MS = 2_500;

export interface UdpTrackerOptions extends TrackerRequestOptions {
  /** Wait before the first retransmission; doubles each time (default 2500 ms). */
  retryBaseMs?: number;
}

const connectionIds = new Map<string, { id: Buffer; receivedAt: number }>();

/** Forget every cached connection id (tests; a restarted tracker). */
export function clearUdpConnectionCache(): void {
  connectionIds.clear();
}

export function parseUdpTrackerUrl(url: string): { host: string; port: number } {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new TrackerError(`invalid tracker URL: ${url}`);
  }
  if (parsed.protocol !== 'udp:') throw new TrackerError(`not a udp:// tracker URL: ${url}`);
  const port = Number(parsed.port);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new TrackerError(`udp tracker URL has no valid port: ${url}`);
  const host = parsed.hostname.replace(/^\[(.*)\]$/, '$1');
  if (host === '') throw new TrackerError(`udp tracker URL has no host: ${url}`);
  return { host, port };
}

function newTransactionId(): number {
  return randomBytes(4).readUInt32BE(0);
}

/** `promise`, or a rejection as soon as `signal` aborts (DNS lookups cannot be cancelled). */
function raceAbort<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err as Error);
      },
    );
  });
}

/** The replies a request waiting for `A` accepts: `A` itself, or the tracker's error. */
type ReplyTo<A extends UdpReply['action']> = Extract<UdpReply, { action: A | 'error' }>;

/** One request's socket: sends packets and waits for the reply with a given transaction id and action. */
class UdpExchange {
  private waiter:
    | { transactionId: number; action: UdpReply['action']; resolve: (r: UdpReply | undefined) => void }
    | undefined;
  private failure: Error | undefined;
  private timer: NodeJS.Timeout | undefined;

  private constructor(
    private readonly socket: Socket,
    readonly family: IpFamily,
    readonly cacheKey: string,
    private readonly signal: AbortSignal,
  ) {
    socket.on('message', (msg: Buffer) => this.onMessage(msg));
    socket.on('error', (err) => this.fail(new TrackerError(`cannot reach tracker: ${errorMessage(err)}`, { cause: err })));
    signal.addEventListener('abort', this.onAbort, { once: true });
  }

  static async open(url: string, signal: AbortSignal): Promise<UdpExchange> {
    const { host, port } = parseUdpTrackerUrl(url);
    let resolved: { address: string; family: number };
    try {
      resolved = await raceAbort(lookup(host), signal);
    } catch (err) {
      if (signal.aborted) throw new TrackerError('tracker request aborted');
      throw new TrackerError(`cannot resolve tracker host ${host}: ${errorMessage(err)}`, { cause: err });
    }
    signal.throwIfAborted();
    const family: IpFamily = resolved.family === 6 ? 6 : 4;
    const socket = createSocket({ type: family === 6 ? 'udp6' : 'udp4' });
    const exchange = new UdpExchange(socket, family, `${resolved.address}|${port}`, signal);
    try {
      await whenStarted(socket, (done) => socket.connect(port, resolved.address, done));
    } catch (err) {
      exchange.close();
      throw new TrackerError(`cannot reach tracker: ${errorMessage(err)}`, { cause: err });
    }
    return exchange;
  }

  private readonly onAbort = (): void => this.fail(new TrackerError('tracker request aborted'));

  private fail(err: Error): void {
    this.failure ??= err;
    this.settle(undefined);
  }

  private settle(reply: UdpReply | undefined): void {
    const w = this.waiter;
    this.waiter = undefined;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    w?.resolve(reply);
  }

  private onMessage(msg: Buffer): void {
    const w = this.waiter;
    if (w === undefined) return;
    const reply = decodeUdpReply(msg, this.family);
    if (reply === undefined || reply.transactionId !== w.transactionId) return; // garbled or stale: ignore
    if (reply.action !== w.action && reply.action !== 'error') return; // wrong action: garbage, keep waiting
    this.settle(reply);
  }

  /**
   * Send `packet` and wait up to `waitMs` for a reply with `transactionId` and `action`
   * (or an error reply); undefined on timeout.
   */
  async send<A extends UdpReply['action']>(
    packet: Buffer,
    transactionId: number,
    action: A,
    waitMs: number,
  ): Promise<ReplyTo<A> | undefined> {
    if (this.failure) throw this.failure;
    const reply = new Promise<ReplyTo<A> | undefined>((resolve) => {
      this.waiter = { transactionId, action, resolve: resolve as (r: UdpReply | undefined) => void };
      this.timer = setTimeout(() => this.settle(undefined), Math.max(1, waitMs));
    });
    this.socket.send(packet, (err) => {
      if (err) this.fail(new TrackerError(`cannot send to tracker: ${errorMessage(err)}`, { cause: err }));
    });
    const r = await reply;
    if (this.failure) throw this.failure;
    return r;
  }

  close(): void {
    this.signal.removeEventListener('abort', this.onAbort);
    this.settle(undefined);
    try {
      this.socket.close();
    } catch {
      // already closed
    }
  }
}

/**
 * Run connect (when no fresh connection id is cached) then `request`, retransmitting
 * with doubling waits until `timeoutMs` is spent. Returns the matching reply.
 */
async function transact(
  url: string,
  opts: UdpTrackerOptions,
  build: (connectionId: Buffer, transactionId: number) => Buffer,
  expected: 'announce' | 'scrape',
): Promise<ReplyTo<'announce' | 'scrape'>> {
  const timeoutMs = opts.timeoutMs ?? TRACKER_TIMEOUT_MS;
  const retryBaseMs = opts.retryBaseMs ?? UDP_RETRY_BASE_MS;
  const deadline = Date.now() + timeoutMs;
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  const signal = opts.signal ? AbortSignal.any([controller.signal, opts.signal]) : controller.signal;
  let exchange: UdpExchange | undefined;
  let retriedStaleId = false;
  try {
    exchange = await UdpExchange.open(url, signal);
    for (let attempt = 0; Date.now() < deadline; attempt++) {
      const waitMs = Math.min(retryBaseMs * 2 ** attempt, deadline - Date.now());
      let cached = connectionIds.get(exchange.cacheKey);
      const fromCache = cached !== undefined && Date.now() - cached.receivedAt < CONNECTION_ID_TTL_MS;
      if (cached === undefined || !fromCache) {
        const tid = newTransactionId();
        const reply = await exchange.send(encodeConnectRequest(tid), tid, 'connect', waitMs);
        if (reply === undefined) continue;
        if (reply.action === 'error') throw new TrackerRefusedError(sanitizeTrackerText(reply.message) || '(no reason given)');
        cached = { id: reply.connectionId, receivedAt: Date.now() };
        connectionIds.set(exchange.cacheKey, cached);
      }
      const tid = newTransactionId();
      const reply = await exchange.send(build(cached.id, tid), tid, expected, Math.min(waitMs, deadline - Date.now()));
      if (reply === undefined || (reply.action === 'error' && fromCache && !retriedStaleId)) {
        // the tracker may have forgotten our id, or tied it to another socket: reconnect
        connectionIds.delete(exchange.cacheKey);
        if (reply !== undefined) {
          retriedStaleId = true;
          attempt--; // not a lost packet: no extra backoff
        }
        continue;
      }
      if (reply.action === 'error') throw new TrackerRefusedError(sanitizeTrackerText(reply.message) || '(no reason given)');
      return reply; // the exchange only settles with `expected` or an error
    }
    throw new TrackerTimeoutError(`udp tracker did not answer within ${timeoutMs} ms`);
  } catch (err) {
    if (err instanceof TrackerError) {
      if (opts.signal?.aborted) throw new TrackerError('tracker request aborted', { cause: err });
      if (controller.signal.aborted) throw new TrackerTimeoutError(`udp tracker did not answer within ${timeoutMs} ms`);
      throw err;
    }
    throw new TrackerError(`udp tracker request failed: ${errorMessage(err)}`, { cause: err });
  } finally {
    clearTimeout(timer);
    exchange?.close();
  }
}

export async function announceUdp(url: string, p: AnnounceParams, opts: UdpTrackerOptions = {}): Promise<AnnounceResult> {
  const reply = await transact(url, opts, (cid, tid) => encodeAnnounceRequest(cid, tid, p), 'announce');
  if (reply.action !== 'announce') throw new TrackerError('unexpected udp tracker reply');
  return {
    peers: filterPeers(reply.peers),
    interval: clampInterval(reply.interval),
    complete: reply.seeders,
    incomplete: reply.leechers,
  };
}

export async function scrapeUdp(url: string, infoHash: Buffer, opts: UdpTrackerOptions = {}): Promise<ScrapeResult> {
  const reply = await transact(url, opts, (cid, tid) => encodeScrapeRequest(cid, tid, [infoHash]), 'scrape');
  if (reply.action !== 'scrape') throw new TrackerError('unexpected udp tracker reply');
  const entry = reply.files[0];
  if (entry === undefined) throw new TrackerError('udp scrape reply is empty');
  return entry;
}
