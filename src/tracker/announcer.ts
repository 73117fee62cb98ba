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

interface Entry {
  readonly url: string;
  readonly tier: number;
  readonly supported: boolean;
  /** Escalation reached it: it has its own schedule from now on. */
  activated: boolean;
  /** A `started` announce succeeded: it knows us and must get `stopped`. */
  registered: boolean;
  inFlight: AbortController | undefined;
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
  }

  private newEntry(url: string, tier: number): Entry {
    return {
      url,
      tier,
      supported: trackerScheme(url) !== undefined,
      activated: false,
      registered: false,
      inFlight: undefined,
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

  private entries(): Entry[] {
    return this.tiers.flat();
  }

  private usable(): Entry[] {
    return this.entries().filter((e) => e.supported);
  }

  /** Begin announcing (event=started). Warnings for skipped URLs are emitted here. */
  start(): void {
    if (this.started || this.stopped) return;
    this.started = true;
    for (const e of this.entries()) {
      if (!e.supported) this.emit('warning', `unsupported tracker skipped: ${e.url}`, e.url);
    }
    if (this.usable().length === 0) {
      this.checkAllFailed();
      return;
    }
    this.escalate();
  }

  /** Peers are running low: re-announce to working trackers whose min interval has passed. */
  requestPeers(): void {
    if (!this.started || this.stopped) return;
    const now = this.now();
    for (const e of this.usable()) {
      if (!e.activated || e.inFlight || !e.healthy || e.lastSuccess === undefined) continue;
      const gapS = Math.max(MIN_REANNOUNCE_GAP_S, e.minIntervalS ?? DEFAULT_MIN_INTERVAL_S);
      if (now - e.lastSuccess >= gapS * 1000) this.announceNow(e);
    }
  }

  /** The download finished: event=completed, once, to every tracker that knows us. */
  completed(): void {
    if (this.completedCalled || this.stopped) return;
    this.completedCalled = true;
    for (const e of this.usable()) {
      e.completedPending = true;
      if (this.started && e.registered && !e.inFlight) this.announceNow(e);
    }
  }

  /**
   * Send event=stopped to every tracker that got `started` (or may have: one in
   * flight), concurrently, and resolve within `timeoutMs` whatever they do.
   * Clears every timer; nothing fires or is emitted afterwards.
   */
  stop(timeoutMs = STOP_TIMEOUT_MS): Promise<void> {
    if (this.stopping) return this.stopping;
    this.stopping = this.sendStopped(this.halt(), timeoutMs);
    return this.stopping;
  }

  /**
   * Stop without telling the trackers: another announcer for the same torrent
   * and peer id takes over (a magnet's metadata phase hands over to the
   * download). Clears every timer and aborts what is in flight.
   */
  abandon(): void {
    if (this.stopping) return;
    this.halt();
    this.stopping = Promise.resolve();
  }

  /** Clear timers, abort requests in flight; returns the trackers that may know us. */
  private halt(): Entry[] {
    this.stopped = true;
    if (this.fallbackTimer) clearTimeout(this.fallbackTimer);
    this.fallbackTimer = undefined;
    const targets: Entry[] = [];
    for (const e of this.entries()) {
      if (e.timer) clearTimeout(e.timer);
      e.timer = undefined;
      e.nextAnnounce = undefined;
      if (e.registered || e.inFlight) targets.push(e);
      e.inFlight?.abort();
      e.inFlight = undefined;
    }
    return targets;
  }

  private async sendStopped(targets: Entry[], timeoutMs: number): Promise<void> {
    if (targets.length === 0) return;
    const signal = AbortSignal.timeout(timeoutMs);
    const sends = targets.map((e) =>
      this.transport(e.url, this.params(e, 'stopped'), { signal, timeoutMs }).then(
        () => undefined,
        () => undefined,
      ),
    );
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, timeoutMs);
      timer.unref();
    });
    try {
      await Promise.race([Promise.all(sends), deadline]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Per tracker, in tier order. */
  status(): TrackerStatus[] {
    return this.entries().map((e) => {
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
    const usable = this.usable();
    if (usable.some((e) => e.activated && e.healthy)) return;
    const next = usable.find((e) => !e.activated);
    if (next === undefined) return;
    next.activated = true;
    this.announceNow(next);
    if (usable.some((e) => !e.activated)) {
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
    if (this.stopped || e.inFlight) return;
    if (e.timer) clearTimeout(e.timer);
    e.timer = undefined;
    e.nextAnnounce = undefined;
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
    e.lastAnnounce = this.now();
    const timeoutMs = this.opts.requestTimeoutMs ?? TRACKER_TIMEOUT_MS;
    this.transport(e.url, params, { signal: controller.signal, timeoutMs }).then(
      (result) => {
        if (e.inFlight !== controller || this.stopped) return;
        e.inFlight = undefined;
        this.onAnswer(e, result, params);
      },
      (err: unknown) => {
        if (e.inFlight !== controller || this.stopped) return;
        e.inFlight = undefined;
        this.onFailure(e, err instanceof Error ? err : new Error(errorMessage(err)));
      },
    );
  }

  private onAnswer(e: Entry, r: AnnounceResult, sent: AnnounceParams): void {
    e.registered = true;
    if (sent.event === 'completed' || (sent.event === 'started' && sent.left === 0)) e.completedPending = false;
    e.healthy = true;
    e.failures = 0;
    e.lastError = undefined;
    e.lastSuccess = this.now();
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
    e.healthy = false;
    e.everFailed = true;
    e.failures++;
    e.lastError = err;
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
    if (this.allFailedEmitted) return;
    const usable = this.usable();
    // a tracker that only timed out may be busy: it is retried, and --peer-timeout decides (README)
    if (usable.some((e) => !e.everFailed || e.lastSuccess !== undefined || e.lastError instanceof TrackerTimeoutError)) return;
    this.allFailedEmitted = true;
    // the unsupported ones failed too, without a try: say why, or a list of only those would be empty
    const failures: TrackerFailure[] = [
      ...usable.map((e) => ({ url: e.url, error: e.lastError ?? new Error('not tried') })),
      ...this.entries()
        .filter((e) => !e.supported)
        .map((e) => ({ url: e.url, error: new Error(unsupportedTrackerReason(e.url)) })),
    ];
    this.emit('all-failed', failures);
  }
}
