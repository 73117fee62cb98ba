/**
 * Shared tracker types: announce parameters and results (BEP 3, BEP 15), scrape
 * results (BEP 48), and the error a tracker's explicit refusal becomes. Pure types,
 * plus the interval clamps every transport applies.
 */
import { TrackerError } from '../core/errors.js';
import type { PeerAddress } from '../core/peer-address.js';

export type AnnounceEvent = 'started' | 'completed' | 'stopped';

export interface AnnounceParams {
  infoHash: Buffer;
  peerId: Buffer;
  port: number;
  uploaded: number;
  downloaded: number;
  left: number;
  /** Omitted for a regular (periodic) announce. */
  event?: AnnounceEvent;
  numwant?: number;
  /** u32 sent as `key` so a tracker can recognise us across IP changes. */
  key: number;
  /** Echoed back from a previous reply's `tracker id` (HTTP only). */
  trackerId?: string;
}

export interface AnnounceResult {
  peers: PeerAddress[];
  /** Seconds until the next regular announce; 1800 when missing, clamped to [60, 3600]. */
  interval: number;
  /** Seconds; clamped to [0, interval]. */
  minInterval?: number;
  warning?: string;
  trackerId?: string;
  /** Seeders, when the tracker said. */
  complete?: number;
  /** Leechers, when the tracker said. */
  incomplete?: number;
}

export interface ScrapeResult {
  complete: number;
  incomplete: number;
  downloaded: number;
}

/** Options every transport accepts. */
export interface TrackerRequestOptions {
  signal?: AbortSignal;
  /** Total time budget for the request, retries and redirects included. */
  timeoutMs?: number;
}

export const DEFAULT_INTERVAL_S = 1800;
export const MIN_INTERVAL_S = 60;
export const MAX_INTERVAL_S = 3600;
/** Default total budget of one tracker request (HARDENING.md: ~15 s). */
export const TRACKER_TIMEOUT_MS = 15_000;

/** The tracker answered and refused (`failure reason`, UDP action 3): not a network problem. */
export class TrackerRefusedError extends TrackerError {
  readonly reason: string;
  constructor(reason: string) {
    super(`tracker refused: ${reason}`);
    this.reason = reason;
    this.name = 'TrackerRefusedError';
  }
}

/**
 * The tracker did not answer within the request's budget: it may be busy, so
 * unlike a refusal or an unreachable host this never ends a download by
 * itself (the announcer retries; --peer-timeout decides).
 */
export class TrackerTimeoutError extends TrackerError {
  constructor(message: string) {
    super(message);
    this.name = 'TrackerTimeoutError';
  }
}

/** Clamp a tracker-supplied interval (seconds) to [60, 3600]; non-numbers give the default. */
export function clampInterval(seconds: number | undefined): number {
  if (seconds === undefined || !Number.isFinite(seconds)) return DEFAULT_INTERVAL_S;
  return Math.min(MAX_INTERVAL_S, Math.max(MIN_INTERVAL_S, Math.trunc(seconds)));
}

/** Clamp a tracker-supplied `min interval` to [0, interval]. */
export function clampMinInterval(seconds: number, interval: number): number {
  return Math.min(interval, Math.max(0, Math.trunc(seconds)));
}

/** Make tracker-supplied text safe to show: no control characters, bounded length. */
export function sanitizeTrackerText(text: string, maxLength = 300): string {
  // eslint-disable-next-line no-control-regex
  const clean = text.replace(/[\x00-\x1f\x7f-\x9f]+/g, ' ').trim();
  return clean.length > maxLength ? `${clean.slice(0, maxLength)}...` : clean;
}
