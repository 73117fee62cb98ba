/**
 * The per-torrent tracker manager (BEP 12 announce-list, BEP 3 events). Owns which
 * tracker is asked when, backoff, promotion and the started/completed/stopped events;
 * not how a request travels (client.ts) nor what happens to the peers (the session).
 *
 * Order and concurrency: tiers in order, shuffled within a tier, a tracker that
 * answered promoted to the front of its tier. Trackers are started one at a time in
 * that order, "happy eyeballs" style: the next one is started when no started tracker
 * is working and either the last one failed or FALLBACK_DELAY_MS (3 s) passed without
 * an answer. So a dead or hanging first tier delays peers by ~3 s at most, while a
 * healthy first tracker is the only one asked (as BEP 12 intends). Every started
 * tracker then keeps its own schedule: re-announce on its interval, retry with
 * exponential backoff after a failure; one tracker's failure never stops another.
 * At most MAX_ANNOUNCES_IN_FLIGHT announces are out at once (a torrent may list
 * thousands of trackers); the rest wait their turn in order.
 *
 * Cost: a torrent may list thousands of trackers, all failing at once. Nothing that
 * runs per announce walks the list: counts (hopeful, healthy, the activation cursor)
 * are kept as states change, so a failure costs O(1); only start, stop, completed()
 * and status() visit every tracker, once each.
 *
 * Stopping: every tracker that may know us gets `stopped`; one that has not yet
 * answered our `completed` gets it first (an announce of it still out is awaited, not
 * aborted), so the tracker counts the download even when tt stops at completion.
 */
import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import { errorMessage } from '../core/errors.js';
import { announce as defaultAnnounce, trackerScheme } from './client.js';
import {
  TRACKER_TIMEOUT_MS,
  TrackerTimeoutError,
  type AnnounceEvent,
  type AnnounceParams,
  type AnnounceResult,
  type TrackerRequestOptions,
} from './types.js';

/** Start the next tracker when none answered within this long. */
export const FALLBACK_DELAY_MS = 3_000;
/** First retry after a failure; doubles per consecutive failure up to RETRY_MAX_MS. */
export const RETRY_BASE_MS = 10_000;
export const RETRY_MAX_MS = 30 * 60_000;
/** requestPeers() never re-announces to a tracker more often than this, whatever its min interval. */
export const MIN_REANNOUNCE_GAP_S = 30;
/** Gap used by requestPeers() when the tracker sent no `min interval`. */
export const DEFAULT_MIN_INTERVAL_S = 60;
export const STOP_TIMEOUT_MS = 3_000;
/** Announces out at once (each one a socket); the rest queue. */
export const MAX_ANNOUNCES_IN_FLIGHT = 16;
export const DEFAULT_NUMWANT = 50;

export type AnnounceFn = (url: string, p: AnnounceParams, opts: TrackerRequestOptions) => Promise<AnnounceResult>;

export interface AnnouncerOptions {
  announceList: readonly (readonly string[])[];
  infoHash: Buffer;
  peerId: Buffer;
  port: number;
  stats: () => { uploaded: number; downloaded: number; left: number };
  numwant?: number;
  /** Clock for timestamps in status() (tests). */
  now?: () => number;
  /** Transport (tests); defaults to the http/udp client. */
  announce?: AnnounceFn;
  /** Budget of one announce (default 15 s). */
  requestTimeoutMs?: number;
  /** Default FALLBACK_DELAY_MS. */
  fallbackDelayMs?: number;
  /** Default RETRY_BASE_MS. */
  retryBaseMs?: number;
}

export type TrackerState = 'waiting' | 'announcing' | 'working' | 'failing' | 'unsupported';

export interface TrackerStatus {
  url: string;
  /** 0-based tier index. */
  tier: number;
  state: TrackerState;
  /** When the last announce was sent (ms since epoch). */
  lastAnnounce?: number;
  lastError?: string;
  /** Peers in the last successful reply. */
  peers: number;
  seeders?: number;
  leechers?: number;
  /** When the next announce is due (ms since epoch). */
  nextAnnounce?: number;
  /** Consecutive failures. */
  failures: number;
}

export interface TrackerFailure {
  url: string;
  error: Error;
}

/** A tracker to tell we stop; `completing`: its `completed` announce, still out. */
interface StopTarget {
  e: Entry;
  completing: { controller: AbortController; answered: Promise<boolean> } | undefined;
}

interface Entry {
  readonly url: string;
  readonly tier: number;
  readonly supported: boolean;
  /** Escalation reached it: it has its own schedule from now on. */
  activated: boolean;
  /** A `started` announce succeeded: it knows us and must get `stopped`. */
  registered: boolean;
  inFlight: AbortController | undefined;
  /** The announce out (with inFlight): its event, and whether it was answered. */
  inFlightEvent: AnnounceEvent | undefined;
  inFlightDone: Promise<boolean> | undefined;
  /** Waiting in the queue for a free slot (MAX_ANNOUNCES_IN_FLIGHT). */
  queued: boolean;
  timer: NodeJS.Timeout | undefined;
  nextAnnounce: number | undefined;
  lastAnnounce: number | undefined;
  lastSuccess: number | undefined;
  lastError: Error | undefined;
  healthy: boolean;
  everFailed: boolean;
  failures: number;
  peers: number;
  seeders: number | undefined;
  leechers: number | undefined;
  minIntervalS: number | undefined;
  trackerId: string | undefined;
  completedPending: boolean;
}

/** Why tt cannot announce to `url`: its scheme or port, named (every failure message says why). */
export function unsupportedTrackerReason(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return 'not a URL';
  }
  if (parsed.port === '0') return 'port 0 cannot be dialed';
  return `unsupported URL scheme '${parsed.protocol}' (tt speaks http, https and udp)`;
}

/** A tracker that may still answer: untried, answered once, or only silent (maybe busy), never refusing for good. */
function hopeful(e: Entry): boolean {
  return e.supported && (!e.everFailed || e.lastSuccess !== undefined || e.lastError instanceof TrackerTimeoutError);
}

function shuffle<T>(items: T[]): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}

/** Events: 'peers' (PeerAddress[], url), 'warning' (message, url), 'tracker-error' (Error, url), 'all-failed' (TrackerFailure[]). */
export class Announcer extends EventEmitter {
  private readonly opts: AnnouncerOptions;
  private readonly transport: AnnounceFn;
  private readonly now: () => number;
  private readonly key = randomBytes(4).readUInt32BE(0);
  /** Tiers of entries, in current (shuffled, promoted) order. */
  private readonly tiers: Entry[][];
  /**
   * The supported entries in activation order (the first shuffle). Promotion moves only
   * activated entries, so the next to activate is always order[activatedCount].
   */
  private readonly order: Entry[];
  private readonly unsupported: Entry[];
  private activatedCount = 0;
  /** Entries whose last announce was answered. */
  private readonly healthy = new Set<Entry>();
  /** How many entries are hopeful() (0: every tracker failed). */
  private hopefulCount: number;
  private inFlightCount = 0;
  /** Entries waiting for a slot, from queueHead on. */
  private queue: Entry[] = [];
  private queueHead = 0;
  private fallbackTimer: NodeJS.Timeout | undefined;
  private started = false;
  private stopped = false;
  private completedCalled = false;
  private allFailedEmitted = false;
  private stopping: Promise<void> | undefined;

  constructor(opts: AnnouncerOptions) {
    super();
    this.opts = opts;
    this.transport = opts.announce ?? defaultAnnounce;
    this.now = opts.now ?? Date.now;
    const seen = new Set<string>();
    this.tiers = [];
    for (const tier of opts.announceList) {
      const entries: Entry[] = [];
      for (const raw of tier) {
        const url = raw.trim();
        if (url === '' || seen.has(url)) continue;
        seen.add(url);
        entries.push(this.newEntry(url, this.tiers.length));
      }
      if (entries.length > 0) this.tiers.push(shuffle(entries));
    }
    const all = this.tiers.flat();
    this.order = all.filter((e) => e.supported);
    this.unsupported = all.filter((e) => !e.supported);
    this.hopefulCount = this.order.length;
  }

  private newEntry(url: string, tier: number): Entry {
    return {
      url,
      tier,
      supported: trackerScheme(url) !== undefined,
      activated: false,
      registered: false,
      inFlight: undefined,
      inFlightEvent: undefined,
      inFlightDone: undefined,
      queued: false,
      timer: undefined,
      nextAnnounce: undefined,
      lastAnnounce: undefined,
      lastSuccess: undefined,
      lastError: undefined,
      healthy: false,
      everFailed: false,
      failures: 0,
      peers: 0,
      seeders: undefined,
      leechers: undefined,
      minIntervalS: undefined,
      trackerId: undefined,
      completedPending: false,
    };
  }

  /** Begin announcing (event=started). Warnings for skipped URLs are emitted here. */
  start(): void {
    if (this.started || this.stopped) return;
    this.started = true;
    for (const e of this.unsupported) this.emit('warning', `unsupported tracker skipped: ${e.url}`, e.url);
    if (this.order.length === 0) {
      this.checkAllFailed();
      return;
    }
    this.escalate();
  }

  /** Peers are running low: re-announce to working trackers whose min interval has passed. */
  requestPeers(): void {
    if (!this.started || this.stopped) return;
    const now = this.now();
    for (const e of [...this.healthy]) {
      if (e.inFlight || e.queued || e.lastSuccess === undefined) continue;
      const gapS = Math.max(MIN_REANNOUNCE_GAP_S, e.minIntervalS ?? DEFAULT_MIN_INTERVAL_S);
      if (now - e.lastSuccess >= gapS * 1000) this.announceNow(e);
    }
  }

  /** The download finished: event=completed, once, to every tracker that knows us. */
  completed(): void {
    if (this.completedCalled || this.stopped) return;
    this.completedCalled = true;
    for (const e of this.order) {
      e.completedPending = true;
      if (this.started && e.registered && !e.inFlight) this.announceNow(e);
    }
  }

  /**
   * Send event=stopped to every tracker that got `started` (or may have: one in
   * flight), MAX_ANNOUNCES_IN_FLIGHT at a time, and resolve within `timeoutMs`
   * whatever they do. A tracker still owed `completed` gets it first (BEP 3: trackers
   * count downloads by it; a download that stops as it completes must still be counted).
   * Clears every timer; nothing fires or is emitted afterwards.
   */
  stop(timeoutMs = STOP_TIMEOUT_MS): Promise<void> {
    if (this.stopping) return this.stopping;
    this.stopping = this.sendStopped(this.halt(true), timeoutMs);
    return this.stopping;
  }

  /**
   * Stop without telling the trackers: another announcer for the same torrent
   * and peer id takes over (a magnet's metadata phase hands over to the
   * download). Clears every timer and aborts what is in flight.
   */
  abandon(): void {
    if (this.stopping) return;
    this.halt(false);
    this.stopping = Promise.resolve();
  }

  /**
   * Clear timers, abort requests in flight (but a `completed` one when `keepCompleted`:
   * the final announce awaits it); returns the trackers that may know us, each with
   * its `completed` announce still out, if any.
   */
  private halt(keepCompleted: boolean): StopTarget[] {
    this.stopped = true;
    if (this.fallbackTimer) clearTimeout(this.fallbackTimer);
    this.fallbackTimer = undefined;
    this.queue = [];
    this.queueHead = 0;
    this.inFlightCount = 0;
    const targets: StopTarget[] = [];
    for (const tier of this.tiers) {
      for (const e of tier) {
        if (e.timer) clearTimeout(e.timer);
        e.timer = undefined;
        e.nextAnnounce = undefined;
        e.queued = false;
        const out = e.inFlight;
        const keep = keepCompleted && out !== undefined && e.inFlightEvent === 'completed';
        if (e.registered || out) targets.push({ e, completing: keep ? { controller: out, answered: e.inFlightDone! } : undefined });
        if (!keep) out?.abort();
        e.inFlight = undefined;
      }
    }
    return targets;
  }

  private async sendStopped(targets: StopTarget[], timeoutMs: number): Promise<void> {
    if (targets.length === 0) return;
    const signal = AbortSignal.timeout(timeoutMs);
    const send = (e: Entry, event: 'completed' | 'stopped'): Promise<boolean> => {
      let p: AnnounceParams;
      try {
        p = { ...this.params(e, event), numwant: 0 };
      } catch {
        return Promise.resolve(false);
      }
      return this.transport(e.url, p, { signal, timeoutMs }).then(
        () => true,
        () => false,
      );
    };
    const final = async ({ e, completing }: StopTarget): Promise<void> => {
      let owed = e.completedPending;
      if (completing && (await completing.answered)) owed = false;
      if (signal.aborted) return;
      if (owed) await send(e, 'completed');
      if (signal.aborted) return;
      await send(e, 'stopped');
    };
    // a bounded number at a time: thousands of trackers must not mean thousands of sockets
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < targets.length && !signal.aborted) await final(targets[next++]!);
    };
    const workers = Array.from({ length: Math.min(MAX_ANNOUNCES_IN_FLIGHT, targets.length) }, worker);
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, timeoutMs);
      timer.unref();
    });
    try {
      await Promise.race([Promise.all(workers), deadline]);
    } finally {
      clearTimeout(timer);
      for (const t of targets) t.completing?.controller.abort();
    }
  }

  /** Per tracker, in tier order. */
  status(): TrackerStatus[] {
    return this.tiers.flat().map((e) => {
      const s: TrackerStatus = { url: e.url, tier: e.tier, state: this.stateOf(e), peers: e.peers, failures: e.failures };
      if (e.lastAnnounce !== undefined) s.lastAnnounce = e.lastAnnounce;
      if (e.lastError !== undefined) s.lastError = e.lastError.message;
      else if (!e.supported) s.lastError = unsupportedTrackerReason(e.url);
      if (e.seeders !== undefined) s.seeders = e.seeders;
      if (e.leechers !== undefined) s.leechers = e.leechers;
      if (e.nextAnnounce !== undefined) s.nextAnnounce = e.nextAnnounce;
      return s;
    });
  }

  private stateOf(e: Entry): TrackerState {
    if (!e.supported) return 'unsupported';
    if (e.inFlight) return 'announcing';
    if (e.queued) return 'waiting';
    if (e.healthy) return 'working';
    if (e.everFailed) return 'failing';
    return 'waiting';
  }

  // ---------------------------------------------------------------- scheduling

  /** Start the next tracker in order, unless a started one is working. Re-arms the fallback timer. */
  private escalate(): void {
    if (this.stopped) return;
    if (this.fallbackTimer) clearTimeout(this.fallbackTimer);
    this.fallbackTimer = undefined;
    if (this.healthy.size > 0) return;
    const next = this.order[this.activatedCount];
    if (next === undefined) return;
    this.activatedCount++;
    next.activated = true;
    this.announceNow(next);
    if (this.stopped) return; // a listener of a synchronous failure may have stopped us
    if (this.activatedCount < this.order.length) {
      this.fallbackTimer = setTimeout(() => this.escalate(), this.opts.fallbackDelayMs ?? FALLBACK_DELAY_MS);
      this.fallbackTimer.unref();
    }
  }

  private schedule(e: Entry, delayMs: number): void {
    if (this.stopped) return;
    if (e.timer) clearTimeout(e.timer);
    e.nextAnnounce = this.now() + delayMs;
    e.timer = setTimeout(() => {
      e.timer = undefined;
      this.announceNow(e);
    }, delayMs);
    e.timer.unref();
  }

  private params(e: Entry, event: AnnounceEvent | undefined): AnnounceParams {
    const stats = this.opts.stats();
    const p: AnnounceParams = {
      infoHash: this.opts.infoHash,
      peerId: this.opts.peerId,
      port: this.opts.port,
      uploaded: stats.uploaded,
      downloaded: stats.downloaded,
      left: stats.left,
      key: this.key,
      numwant: event === 'stopped' ? 0 : (this.opts.numwant ?? DEFAULT_NUMWANT),
    };
    if (event !== undefined) p.event = event;
    if (e.trackerId !== undefined) p.trackerId = e.trackerId;
    return p;
  }

  private announceNow(e: Entry): void {
    if (this.stopped || e.inFlight || e.queued) return;
    if (e.timer) clearTimeout(e.timer);
    e.timer = undefined;
    e.nextAnnounce = undefined;
    if (this.inFlightCount >= MAX_ANNOUNCES_IN_FLIGHT) {
      e.queued = true;
      this.queue.push(e);
      return;
    }
    this.send(e);
  }

  /** A slot came free: the longest-waiting queued entry goes out. */
  private nextQueued(): void {
    while (!this.stopped && this.inFlightCount < MAX_ANNOUNCES_IN_FLIGHT && this.queueHead < this.queue.length) {
      const e = this.queue[this.queueHead++]!;
      if (this.queueHead > 1024 && this.queueHead * 2 > this.queue.length) {
        this.queue = this.queue.slice(this.queueHead);
        this.queueHead = 0;
      }
      e.queued = false;
      this.send(e);
    }
  }

  private send(e: Entry): void {
    const event: AnnounceEvent | undefined = !e.registered ? 'started' : e.completedPending ? 'completed' : undefined;
    let params: AnnounceParams;
    try {
      params = this.params(e, event);
    } catch (err) {
      this.onFailure(e, err instanceof Error ? err : new Error(errorMessage(err))); // a throwing stats() must not crash a timer
      return;
    }
    const controller = new AbortController();
    e.inFlight = controller;
    e.inFlightEvent = event;
    e.lastAnnounce = this.now();
    this.inFlightCount++;
    const timeoutMs = this.opts.requestTimeoutMs ?? TRACKER_TIMEOUT_MS;
    const settle = (): boolean => {
      if (e.inFlight !== controller || this.stopped) return false;
      e.inFlight = undefined;
      e.inFlightDone = undefined;
      this.inFlightCount--;
      return true;
    };
    e.inFlightDone = this.transport(e.url, params, { signal: controller.signal, timeoutMs }).then(
      (result) => {
        if (settle()) {
          this.onAnswer(e, result, params);
          this.nextQueued();
        }
        return true;
      },
      (err: unknown) => {
        if (settle()) {
          this.onFailure(e, err instanceof Error ? err : new Error(errorMessage(err)));
          this.nextQueued();
        }
        return false;
      },
    );
  }

  private onAnswer(e: Entry, r: AnnounceResult, sent: AnnounceParams): void {
    const wasHopeful = hopeful(e);
    e.registered = true;
    if (sent.event === 'completed' || (sent.event === 'started' && sent.left === 0)) e.completedPending = false;
    e.healthy = true;
    e.failures = 0;
    e.lastError = undefined;
    e.lastSuccess = this.now();
    if (!wasHopeful) this.hopefulCount++;
    this.healthy.add(e);
    e.peers = r.peers.length;
    if (r.complete !== undefined) e.seeders = r.complete;
    if (r.incomplete !== undefined) e.leechers = r.incomplete;
    e.minIntervalS = r.minInterval;
    if (r.trackerId !== undefined) e.trackerId = r.trackerId;
    this.promote(e);
    if (this.fallbackTimer) clearTimeout(this.fallbackTimer);
    this.fallbackTimer = undefined;
    this.schedule(e, e.completedPending ? 0 : r.interval * 1000);
    if (r.warning !== undefined) this.emit('warning', r.warning, e.url);
    if (r.peers.length > 0) this.emit('peers', r.peers, e.url);
  }

  private onFailure(e: Entry, err: Error): void {
    const wasHopeful = hopeful(e);
    e.healthy = false;
    this.healthy.delete(e);
    e.everFailed = true;
    e.failures++;
    e.lastError = err;
    this.hopefulCount += Number(hopeful(e)) - Number(wasHopeful);
    const base = this.opts.retryBaseMs ?? RETRY_BASE_MS;
    this.schedule(e, Math.min(RETRY_MAX_MS, base * 2 ** Math.min(e.failures - 1, 20)));
    this.emit('tracker-error', err, e.url);
    if (this.stopped) return; // a listener may have stopped us
    this.checkAllFailed();
    this.escalate();
  }

  /** BEP 12: the tracker that answered moves to the front of its tier. */
  private promote(e: Entry): void {
    const tier = this.tiers[e.tier];
    if (tier === undefined) return;
    const i = tier.indexOf(e);
    if (i > 0) {
      tier.splice(i, 1);
      tier.unshift(e);
    }
  }

  private checkAllFailed(): void {
    // a tracker that only timed out may be busy: it is retried, and --peer-timeout decides (README)
    if (this.allFailedEmitted || this.hopefulCount > 0) return;
    this.allFailedEmitted = true;
    // the unsupported ones failed too, without a try: say why, or a list of only those would be empty
    const failures: TrackerFailure[] = [
      ...this.order.map((e) => ({ url: e.url, error: e.lastError ?? new Error('not tried') })),
      ...this.unsupported.map((e) => ({ url: e.url, error: new Error(unsupportedTrackerReason(e.url)) })),
    ];
    this.emit('all-failed', failures);
  }
}
