/**
 * One BEP 19 web seed as the session sees it: a source of blocks the picker
 * hands requests to (it is their PeerToken), with its own keep-alive HTTP
 * agents, requests in flight, and backoff after failures (5 s doubling to
 * 5 min; given up after MAX_WEB_SEED_FAILURES in a row, or when the smart
 * ban finds it sent corrupt data). Fetching is webseed/fetch.ts; the session
 * feeds the bytes in as blocks. Bookkeeping only: no sockets of its own.
 */
import http from 'node:http';
import https from 'node:https';
import type { Metainfo } from '../metainfo/metainfo.js';
import { rangesFor, type RangeRequest } from '../webseed/url.js';

/** Requests in flight per web seed (each at most one piece). */
export const WEB_SEED_PARALLEL = 2;
const FIRST_RETRY_MS = 5_000;
const MAX_RETRY_MS = 5 * 60_000;
export const MAX_WEB_SEED_FAILURES = 8;

export class WebSeed {
  /** How it is named in events and in the pieces' sender lists. */
  readonly key: string;
  readonly base: URL;
  readonly agents = { http: new http.Agent({ keepAlive: true, maxSockets: WEB_SEED_PARALLEL }), https: new https.Agent({ keepAlive: true, maxSockets: WEB_SEED_PARALLEL }) };
  inFlight = 0;
  /** Payload bytes it delivered. */
  bytes = 0;
  #failures = 0;
  #retryAt = 0;
  #disabled: string | undefined;

  constructor(base: URL) {
    this.base = base;
    this.key = `web seed ${base.href}`;
  }

  /** Whether a new request may start now. */
  ready(now: number): boolean {
    return this.#disabled === undefined && this.inFlight < WEB_SEED_PARALLEL && now >= this.#retryAt;
  }

  get disabled(): string | undefined {
    return this.#disabled;
  }

  /** The HTTP requests for torrent bytes [offset, offset + length). */
  ranges(meta: Metainfo, offset: number, length: number): RangeRequest[] {
    return rangesFor(this.base, meta, offset, length);
  }

  succeeded(bytes: number): void {
    this.bytes += bytes;
    this.#failures = 0;
    this.#retryAt = 0;
  }

  /** A request failed: back off; returns true when this failure made us give up on it. */
  failed(now: number, reason: string): boolean {
    if (this.#disabled !== undefined) return false;
    this.#failures++;
    if (this.#failures >= MAX_WEB_SEED_FAILURES) {
      this.disable(`${this.#failures} failures in a row, the last: ${reason}`);
      return true;
    }
    this.#retryAt = now + Math.min(MAX_RETRY_MS, FIRST_RETRY_MS * 2 ** (this.#failures - 1));
    return false;
  }

  disable(reason: string): void {
    this.#disabled ??= reason;
    this.close();
  }

  close(): void {
    this.agents.http.destroy();
    this.agents.https.destroy();
  }
}
