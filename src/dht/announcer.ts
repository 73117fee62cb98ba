/**
 * One torrent's use of the DHT: a get_peers lookup (and announce_peer of our
 * port) at start, again every ANNOUNCE_INTERVAL_MS, sooner while it finds
 * nobody, and on request when the session runs short of peers (at most once
 * per MIN_LOOKUP_GAP_MS). Emits the peers found. Owns only its timer; the
 * node and its socket belong to whoever made them.
 */
import { EventEmitter } from 'node:events';
import type { PeerAddress } from '../core/peer-address.js';
import type { DhtNode } from './node.js';

/** Re-announce period (libtorrent: 15 min). */
export const ANNOUNCE_INTERVAL_MS = 15 * 60_000;
/** First retry after a lookup that found no peer; doubles up to the interval. */
export const EMPTY_RETRY_MS = 20_000;
/** On-demand lookups are at least this far apart. */
export const MIN_LOOKUP_GAP_MS = 60_000;

export interface DhtAnnouncerEvents {
  peers: [peers: PeerAddress[]];
  /** A lookup ended: how many peers it found and nodes it asked. */
  lookup: [found: number, queried: number];
}

export class DhtAnnouncer extends EventEmitter<DhtAnnouncerEvents> {
  readonly #node: DhtNode;
  readonly #infoHash: Buffer;
  /** The TCP port to announce; undefined = look up only (nothing to serve). */
  readonly #port: number | undefined;
  readonly #intervalMs: number;
  #timer: NodeJS.Timeout | undefined;
  #running = false;
  #stopped = false;
  #lastStart = 0;
  #emptyRetryMs = EMPTY_RETRY_MS;

  constructor(node: DhtNode, infoHash: Buffer, port: number | undefined, opts: { intervalMs?: number } = {}) {
    super();
    this.#node = node;
    this.#infoHash = infoHash;
    this.#port = port;
    this.#intervalMs = opts.intervalMs ?? ANNOUNCE_INTERVAL_MS;
  }

  start(): void {
    void this.#lookup();
  }

  /** The session is short of peers: look again, unless a lookup ran within MIN_LOOKUP_GAP_MS. */
  requestPeers(): void {
    if (this.#running || this.#stopped || Date.now() - this.#lastStart < MIN_LOOKUP_GAP_MS) return;
    void this.#lookup();
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  async #lookup(): Promise<void> {
    if (this.#running || this.#stopped || this.#node.closed) return;
    this.#running = true;
    this.#lastStart = Date.now();
    if (this.#timer) clearTimeout(this.#timer);
    let found = 0;
    // a listener's exception must not become an unhandled rejection (it would end the process)
    try {
      const r = await this.#node.getPeers(this.#infoHash, {
        announcePort: this.#port,
        onPeers: (peers) => {
          found += peers.length;
          if (!this.#stopped) this.emit('peers', peers.map((p) => ({ host: p.host, port: p.port })));
        },
      });
      if (!this.#stopped) this.emit('lookup', r.peers.length, r.queried);
    } catch {
      // the next lookup is scheduled as after a lookup that found nobody
    } finally {
      this.#running = false;
    }
    if (this.#stopped) return;
    let delay = this.#intervalMs;
    if (found === 0) {
      delay = Math.min(this.#intervalMs, this.#emptyRetryMs);
      this.#emptyRetryMs = Math.min(this.#intervalMs, this.#emptyRetryMs * 2);
    } else {
      this.#emptyRetryMs = EMPTY_RETRY_MS;
    }
    this.#timer = setTimeout(() => void this.#lookup(), delay);
    this.#timer.unref();
  }
}
