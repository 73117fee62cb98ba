/**
 * PeerState: what a TorrentSession keeps per connection beside the
 * PeerConnection: our requests in flight and the ones we gave up on (keyed
 * by blockKey), the upload queue, request depth, snub and flood counters,
 * and the BEP 9 / BEP 11 extension state. Bookkeeping only: the session
 * decides what to do with it (STATE.md names these fields).
 */
import { BLOCK_SIZE } from '../core/geometry.js';
import type { PeerAddress } from '../core/peer-address.js';
import type { PeerConnection } from '../peer/connection.js';
import { PexPacer } from './pex.js';
import { INITIAL_QUEUE_DEPTH, MAX_QUEUE_DEPTH } from './pipeline.js';
import { UploadQueue } from './upload-queue.js';
import type { UploadPeer } from './uploader.js';
import type { QueuedPeer } from './head-copy.js';

/** Requests remembered per peer after we stop waiting for them (PeerState.released). */
export const MAX_RELEASED = 2 * MAX_QUEUE_DEPTH;

/** Per-connection state the session keeps beside the PeerConnection. */
export class PeerState implements UploadPeer, QueuedPeer {
  readonly conn: PeerConnection;
  key: string;
  /**
   * Our requests in flight to this peer, by blockKey: plain numbers, no object
   * per request (with several peers a request lives long enough to be promoted
   * to V8's old space).
   */
  readonly outstanding = new Set<number>();
  /**
   * Requests we stopped waiting for (cancelled in endgame, dropped on choke
   * or snub) whose block may still be on the wire: when it arrives it is
   * used if still missing, wasted otherwise, never a protocol error. Oldest
   * first, at most MAX_RELEASED entries.
   */
  readonly released = new Set<number>();
  readonly uploads = new UploadQueue();
  queueDepth = INITIAL_QUEUE_DEPTH;
  maxQueueDepth = MAX_QUEUE_DEPTH;
  blocksThisTick = 0;
  lastBlockAt = Date.now();
  readonly connectedAt = Date.now();
  /** When a block we asked for arrived or one of ours left, last (what a newcomer may replace it by). */
  lastPayloadAt = Date.now();
  /** Bytes sent to it as of the last tick, and block bytes we accepted from it: its use so far. */
  sentBytes = 0;
  acceptedBytes = 0;
  /** When we last unchoked it (0: never), and when it last asked us for a block (choker.ts idleSlot). */
  unchokedAt = 0;
  lastRequestAt = 0;

  /** Download rate from this peer, bytes/s (its connection's meter): with outstanding and lastBlockAt, what head-copy.ts judges by. */
  get rate(): number {
    return this.conn.downloadRate.rate;
  }
  unrequested = 0;
  requestsWhileChoked = 0;
  serving = false;
  snubbed = false;
  /**
   * Chokes in a row that came while our requests were waiting and before any
   * block since its unchoke: a peer that unchokes only to choke again makes us
   * re-send a queue of requests each time for ten bytes of its own.
   */
  fruitlessChokes = 0;
  /** BEP 9: the extended id the peer wants ut_metadata messages under (0: it does not take them). */
  utMetadataId = 0;
  /** The peer's PORT message (BEP 5) was acted on: later ones are ignored. */
  dhtNodeAdded = false;
  /** BEP 11: the extended id the peer wants ut_pex messages under (0: none), and their pacing. */
  utPexId = 0;
  readonly pex = new PexPacer();
  /** Where the peer accepts connections: the address we dialed, or an incoming peer's IP with its `p`. */
  listenAddress: PeerAddress | undefined;
  /** ut_metadata requests answered on this connection (bounded: see metadata-server.ts). */
  metadataRequests = 0;
  /** the key of the pool entry for outgoing peers (incoming ones have an ephemeral port) */
  poolKey: string | undefined;
  /**
   * A newcomer from a suspect IP (PeerPool.admit): asked for blocks of one
   * piece at a time (`probationPiece`) until a piece it sent blocks of
   * verifies, so a peer that reconnects under new peer ids to get round its
   * ban costs at most one piece per connection.
   */
  probation = false;
  probationPiece: number | undefined;
  /** A piece it sent blocks of verified (PeerPool.prove was told). */
  proven = false;
  /** Pieces it rejected (BEP 6) while unchoking us, and when: not asked of it again for a while (the session's REJECTED_RETRY_MS). */
  rejectedPieces: Map<number, number> | undefined;
  /** It sent at least one block we kept (its identity is remembered when it leaves, for a late smart-ban verdict). */
  delivered = false;
  /** The IP the socket reached, as the per-IP limit counts it (ipOf). */
  readonly ip: string;

  constructor(conn: PeerConnection, poolKey: string | undefined, ip: string) {
    this.conn = conn;
    this.key = conn.key;
    this.poolKey = poolKey;
    this.ip = ip;
    if (conn.direction === 'outgoing') this.listenAddress = { host: conn.host, port: conn.port };
  }
}

/** Remember `key` as released by `state`, the newest of its `released` (the oldest goes past MAX_RELEASED). */
export function rememberReleased(state: Pick<PeerState, 'released'>, key: number): void {
  state.released.delete(key);
  state.released.add(key);
  if (state.released.size > MAX_RELEASED) {
    for (const oldest of state.released) {
      state.released.delete(oldest);
      break;
    }
  }
}

/** Key of one of our 16 KiB requests in PeerState.outstanding (block numbers < 65536). */
export function blockKey(index: number, begin: number): number {
  return index * 65536 + Math.floor(begin / BLOCK_SIZE);
}

export function keyIndex(key: number): number {
  return Math.floor(key / 65536);
}

export function keyBegin(key: number): number {
  return (key % 65536) * BLOCK_SIZE;
}
