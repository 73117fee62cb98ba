/**
 * The upload path of one torrent: what a peer may ask of us (BEP 3 request
 * and cancel, answered with BEP 6 rejects where owed) and the serve loop
 * that answers it: one loop per peer, pieces read through the shared read
 * cache (whole pieces, read ahead) or block by block when pieces are too
 * large for it, paid for with the upload limit and paused while the socket
 * holds more than SEND_HIGH_WATER_BYTES. Whom to serve is the choker's
 * decision (choker.ts, applied by the session): this serves whoever is
 * unchoked and drops a peer's queue when it is choked.
 *
 * A piece that can no longer be read (a file truncated or damaged under
 * us) is reported once to `onUnreadable`, which drops it from `have`; its
 * requests, queued or new, are then answered with a BEP 6 reject (nothing,
 * for a peer without the fast extension) and the connection goes on with
 * every other piece.
 */
import type { Bitfield } from '../core/bitfield.js';
import { errorMessage } from '../core/errors.js';
import type { PieceGeometry } from '../core/geometry.js';
import { TokenBucket, type RateMeter } from '../core/rate.js';
import type { PeerConnection } from '../peer/connection.js';
import { PieceReadCache, READ_CACHE_BYTES } from './read-cache.js';
import type { UploadQueue } from './upload-queue.js';

/**
 * Requests a peer may have queued with us (advertised as BEP 10 reqq), as
 * libtorrent's default max_allowed_in_request_queue. A fast leecher keeps
 * this many in flight: with 500 a libtorrent leecher took 2.4-2.5 s for
 * 1 GiB from tt against 1.5-2.0 s from libtorrent (which allows 2000); with
 * 2000 it is 1.6-1.8 s. A queued request is a few dozen bytes.
 */
export const MAX_PEER_REQUESTS = 2000;
/** Requests while choked tolerated in a row (those already on the wire when our choke left are normal). */
const MAX_REQUESTS_WHILE_CHOKED = 200;
/** Bytes queued in a peer's socket above which its serve loop waits for 'drain'. */
export const SEND_HIGH_WATER_BYTES = 1024 * 1024;
/** Distinct pieces read ahead for one peer's queued requests. */
const READ_AHEAD_PIECES = 8;
/** Bound on one serve loop's turns (each sends a block or waits). */
const MAX_SERVE_TURNS = 10_000_000;

/** What the uploader keeps per peer (the session's per-peer state carries it). */
export interface UploadPeer {
  readonly conn: PeerConnection;
  readonly uploads: UploadQueue;
  /** a serve loop is running for this peer */
  serving: boolean;
  requestsWhileChoked: number;
}

export interface UploaderOptions {
  geometry: PieceGeometry;
  /** Verified pieces: only these are served. */
  have: Bitfield;
  /** Reads a whole verified piece (into a pooled buffer that `freePiece` takes back). */
  readPiece: (index: number) => Promise<Buffer>;
  readBlock: (index: number, begin: number, length: number) => Promise<Buffer>;
  freePiece: (buffer: Buffer) => void;
  /** bytes/s; 0 = unlimited */
  uploadLimit: number;
  /** Counts every block sent. */
  uploadRate: RateMeter;
  isStopped: () => boolean;
  /**
   * Reading piece `index` failed (readPiece or readBlock threw): the caller
   * takes it out of `have` (or the uploader would try again for the next
   * request of it). Called for every failed read; the request is rejected.
   */
  onUnreadable: (index: number, err: unknown) => void;
}

export class Uploader {
  /** Pieces read for serving, and pieces just verified that peers are likely to ask for. */
  readonly cache: PieceReadCache;
  readonly #opts: UploaderOptions;
  readonly #bucket: TokenBucket;
  /** Whole pieces fit the read cache a few at a time; otherwise serving reads single blocks. */
  readonly #cacheWholePieces: boolean;
  readonly #readAheadPieces: number;

  constructor(opts: UploaderOptions) {
    this.#opts = opts;
    this.#bucket = new TokenBucket(opts.uploadLimit);
    const { pieceLength } = opts.geometry;
    this.#cacheWholePieces = pieceLength * 2 <= READ_CACHE_BYTES;
    this.#readAheadPieces = Math.max(1, Math.min(READ_AHEAD_PIECES, Math.floor(READ_CACHE_BYTES / pieceLength / 4)));
    // a failed read-ahead is reported too: the piece leaves `have` before anyone waits for it
    this.cache = new PieceReadCache((index) => this.#read(index, () => opts.readPiece(index)), READ_CACHE_BYTES, opts.freePiece);
  }

  /** A disk read for serving piece `index`; a failure is reported (onUnreadable) and rethrown. */
  async #read<T>(index: number, read: () => Promise<T>): Promise<T> {
    try {
      return await read();
    } catch (err) {
      if (!this.#opts.isStopped()) this.#opts.onUnreadable(index, err);
      throw err;
    }
  }

  /** BEP 3 request: checked, queued, and served when the socket has room. */
  request(peer: UploadPeer, index: number, begin: number, length: number): void {
    const { conn } = peer;
    if (!this.#opts.geometry.isValidRequest(index, begin, length)) {
      conn.close(`protocol error: request out of range (${index}, ${begin}, ${length})`);
      return;
    }
    if (conn.amChoking) {
      // requests already on the wire when our choke left are normal; a peer that keeps asking is not
      // (the count starts again with each request we accept). A BEP 6 peer gets its answer: reject.
      conn.reject(index, begin, length);
      if (++peer.requestsWhileChoked > MAX_REQUESTS_WHILE_CHOKED) conn.close('protocol error: too many requests while choked');
      return;
    }
    peer.requestsWhileChoked = 0;
    if (!this.#opts.have.has(index)) {
      conn.reject(index, begin, length); // a race with our 'have' or a confused peer: not served
      return;
    }
    if (peer.uploads.size >= MAX_PEER_REQUESTS) {
      conn.close('protocol error: request flood');
      return;
    }
    peer.uploads.push(index, begin, length);
    this.#serve(peer);
  }

  cancel(peer: UploadPeer, index: number, begin: number, length: number): void {
    // BEP 6: a cancelled request is still answered, by the piece if it is already on its way, else a reject
    if (peer.uploads.cancel(index, begin, length)) peer.conn.reject(index, begin, length);
  }

  /**
   * Drop a peer's queued requests: we choked it (BEP 3: a choke discards them)
   * or are stopping. A BEP 6 peer is owed an answer to each: one reject per
   * request, in one write.
   */
  discard(peer: UploadPeer): void {
    const { conn } = peer;
    if (peer.uploads.size > 0 && conn.fastExtension && !conn.closed) {
      conn.batch(() => {
        for (const r of peer.uploads.pending()) conn.reject(r.index, r.begin, r.length);
      });
    }
    peer.uploads.clear();
  }

  /** Serve queued requests in order while the socket has room; one loop per peer. */
  #serve(peer: UploadPeer): void {
    if (peer.serving) return;
    peer.serving = true;
    // serveLoop clears `serving` itself, synchronously when it ends: it may end
    // without ever awaiting (every piece cached), and a request decoded from
    // the same chunk right after must start a new loop, not find the flag set
    this.#serveLoop(peer).catch((err: unknown) => {
      peer.conn.close(`cannot serve: ${errorMessage(err)}`);
    });
  }

  /**
   * Serve queued requests in order. Pieces already in the read cache are sent
   * back to back with the socket corked (one writev for many blocks); whenever
   * the head of the queue moves to a new piece, the next few distinct pieces
   * are read ahead so disk reads overlap with sending. Waits for 'drain' when
   * more than SEND_HIGH_WATER_BYTES is queued. Pieces too large to cache whole
   * are served block by block.
   */
  async #serveLoop(peer: UploadPeer): Promise<void> {
    const { conn } = peer;
    const { cache } = this;
    let corked = false;
    let lastIndex = -1;
    /** The upload limit was paid for the next block sent. */
    let paid = false;
    const uncork = (): void => {
      if (corked) conn.socket.uncork();
      corked = false;
    };
    try {
      for (let turn = 0; turn < MAX_SERVE_TURNS; turn++) {
        if (conn.closed || conn.amChoking || this.#opts.isStopped()) {
          this.discard(peer);
          return;
        }
        const req = peer.uploads.peek();
        if (!req) return;
        if (!this.#opts.have.has(req.index)) {
          // lost since it was queued (it could not be read, for this peer or another): a reject, and on
          peer.uploads.shift();
          conn.reject(req.index, req.begin, req.length);
          continue;
        }
        if (conn.writableLength > SEND_HIGH_WATER_BYTES) {
          uncork();
          await onceDrained(conn);
          continue;
        }
        if (!paid) {
          // reserved in turn with the other peers' loops: a wait pays for this block, whichever
          // request is at the head when it ends (a cancel in between leaves it to the next)
          paid = true;
          const wait = this.#bucket.reserve(req.length);
          if (wait > 0) {
            uncork();
            await delay(wait);
            continue;
          }
        }
        if (!this.#cacheWholePieces) {
          uncork();
          const block = await this.#read(req.index, () => this.#opts.readBlock(req.index, req.begin, req.length)).catch(() => undefined);
          if (!block) {
            this.#unreadable(peer, req);
            continue;
          }
          if (peer.uploads.peek() !== req || conn.amChoking) continue; // cancelled or choked while reading
          peer.uploads.shift();
          paid = false;
          conn.sendPiece(req.index, req.begin, block);
          this.#opts.uploadRate.add(req.length);
          continue;
        }
        if (req.index !== lastIndex) {
          lastIndex = req.index;
          this.#readAhead(peer); // keep the next pieces' reads in flight while this one is sent
        }
        const piece = cache.peek(req.index);
        if (!piece) {
          uncork();
          if (!(await cache.get(req.index).catch(() => undefined))) this.#unreadable(peer, req);
          continue; // the queue may have changed (cancel, choke) while reading
        }
        peer.uploads.shift();
        paid = false;
        if (!corked) {
          conn.socket.cork();
          corked = true;
        }
        // pinned until the socket has written it: only then may the buffer be recycled
        cache.pin(piece);
        conn.sendPiece(req.index, req.begin, piece.subarray(req.begin, req.begin + req.length), () => cache.unpin(piece));
        this.#opts.uploadRate.add(req.length);
      }
    } finally {
      uncork();
      peer.serving = false;
    }
  }

  /** Reading `req`'s piece failed (reported already): the request gets a reject, and the loop goes on. */
  #unreadable(peer: UploadPeer, req: { index: number; begin: number; length: number }): void {
    if (peer.uploads.peek() !== req) return; // cancelled meanwhile (answered then)
    peer.uploads.shift();
    peer.conn.reject(req.index, req.begin, req.length);
  }

  /** Start reading the next few distinct pieces this peer asked for. */
  #readAhead(peer: UploadPeer): void {
    const seen = new Set<number>();
    for (const r of peer.uploads.pending()) {
      if (seen.size >= this.#readAheadPieces) break;
      if (seen.has(r.index)) continue;
      seen.add(r.index);
      this.cache.prefetch(r.index);
    }
  }
}

function onceDrained(conn: PeerConnection): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      conn.socket.removeListener('drain', done);
      conn.socket.removeListener('close', done);
      resolve();
    };
    conn.socket.once('drain', done);
    conn.socket.once('close', done);
  });
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
