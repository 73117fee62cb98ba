/**
 * The piece picker (BEP 3 rarest-first with endgame): which blocks to request
 * from which peer. Pure, no I/O. Owns piece availability, per-block request
 * state of pieces in progress, and the endgame rule. Unstarted pieces live in
 * availability buckets (libtorrent's layout), so an availability change is O(1).
 * With a `wanted` set (a file selection), only those pieces are picked, counted
 * missing, or make a peer interesting.
 *
 * A pick for one peer, up to `count` blocks (the caller's in-flight budget), takes:
 * 1. open blocks of pieces already started: partial pieces finish first (oldest
 *    first; lowest index first when sequential);
 * 2. with `priority` (`tt download --first-last`: the first and last piece of
 *    each wanted file), the lowest-index of those pieces not yet started that
 *    the peer has;
 * 3. new pieces: rarest first, random among equally rare; or, `sequential`
 *    (`--sequential`), the lowest-index wanted piece not yet started that the
 *    peer has;
 * 4. in endgame (every missing block requested), copies of blocks other peers
 *    hold, as `worthCopying` allows.
 * Sequential, before all of these: copies of the head's blocks (the lowest
 * missing pieces, HEAD_BYTES of them) that one other peer holds and `hurry`
 * says this peer would deliver much sooner (see `pick`).
 * `pickFrom` instead asks for blocks of one given piece only (a peer on
 * probation, session/peer-pool.ts: one piece at a time).
 *
 * With `maxBytesInProgress` (the session's piece-buffer budget), steps 2 and 3
 * and `pickFrom` start no piece that would take the bytes of the pieces in
 * progress (started and not yet verified: being downloaded, hashed or
 * written, each a piece buffer in the session) past it; one piece may always
 * be in progress, however large. With pieces larger than a share of the
 * budget, peers then share pieces: each takes the open blocks of the pieces
 * started (step 1), as libtorrent does with large pieces.
 *
 * A verified piece normally stays verified; `pieceLost` takes one back (its
 * data could no longer be read from disk) and it is picked like any other
 * missing piece again.
 *
 * Sequential is a window, not one piece at a time. Before endgame a block is
 * requested from one peer at a time, so with several peers each gets the
 * lowest-index missing pieces it has that nobody else is fetching (after the
 * open blocks of pieces already started): every peer stays busy, pieces start
 * in increasing index order and complete in the order peers deliver them.
 * libtorrent's sequential_download is the same rule (a scan from the first
 * missing piece for pieces with free blocks); streaming by deadline (its
 * set_piece_deadline) is another mechanism. The rule exactly: a piece other
 * than a priority piece starts for a peer only when every lower wanted piece
 * that peer has is started or verified. So when every peer has every piece
 * (seeds, web seeds), each lower wanted piece still missing when such a
 * piece i is verified is in progress: the order is out only within the
 * pieces in progress at once (blocks in flight / blocks per piece, plus those
 * being hashed and written). That is "nearly in order" in the tests.
 * A slow peer holding a low piece would still hold up everything after it
 * (a player waits for that piece while faster peers fetch far ahead), and
 * before endgame nobody else would ask for those blocks. So the head (the
 * lowest missing wanted pieces, HEAD_BYTES, at least one piece) may be
 * copied: a peer whose copy would come much sooner (the caller's `hurry`
 * judges, by the peers' rates and queues) asks for a block one other peer
 * holds, and the first copy to arrive cancels the other, as in endgame.
 * libtorrent's answer is deadlines (set_piece_deadline) that re-request late
 * blocks; this is the same idea without a clock the user has to set.
 *
 * Cost of choosing new pieces: rarest-first walks the buckets up to the
 * first piece the peer has, for each piece it starts (a step per piece the
 * peer lacks); priority and sequential ask a LowestFirst set: O(1) when the
 * peer has the lowest candidate (a seed), otherwise a step per 8 pieces, and
 * one pass per pick however many pieces it starts, so at most pieces / 8
 * steps (lowest-first.ts). Sequential also sorts the open partial pieces, at
 * most the pieces in flight.
 */
import { BLOCK_SIZE, type PieceGeometry } from '../core/geometry.js';
import { Bitfield } from '../core/bitfield.js';
import { LowestFirst } from './lowest-first.js';

export interface BlockRequest {
  index: number;
  begin: number;
  length: number;
}

/** Identifies a peer connection (any object, or a number). */
export type PeerToken = object | number;

export type ReceivedKind = 'new' | 'duplicate' | 'unexpected';

/** How `tt download` orders pieces (--sequential, --first-last); the session turns it into PickerOptions. */
export interface PieceOrder {
  /** Lowest index first instead of rarest first. */
  sequential?: boolean;
  /** The first and last piece of each wanted file before any other (pieces/first-last.ts). */
  firstLast?: boolean;
}

export interface PickerOptions {
  random?: () => number;
  /** Only these pieces (a file selection); every piece without it. */
  wanted?: Bitfield | undefined;
  /** Start pieces lowest index first instead of rarest first. */
  sequential?: boolean | undefined;
  /** Start these pieces (the wanted ones we lack) before any other, lowest index first. */
  priority?: Iterable<number> | undefined;
  /** Blocks wholly in BEP 47 padding, by piece (pieces/padding.ts): never requested, counted received when a piece starts. */
  padding?: ReadonlyMap<number, readonly number[]> | undefined;
  /** Start no piece that would take the bytes of the pieces in progress past this (one piece always may); no limit without it. */
  maxBytesInProgress?: number | undefined;
}

/** Sequential: the lowest missing wanted pieces spanning this many bytes (at least one piece) are the head, which may be copied. */
export const HEAD_BYTES = 4 * 1024 * 1024;

/** Whether `peer` should ask for a head block that `requester` holds (index, begin): its copy would come much sooner. */
export type Hurry = (requester: PeerToken, index: number, begin: number) => boolean;

const OPEN = 0;
const REQUESTED = 1;
const RECEIVED = 2;

/** Per-block state, kept only for pieces that have been started. */
interface PartialPiece {
  readonly index: number;
  readonly state: Uint8Array;
  /**
   * Who has each block requested: one peer per block, held directly (no
   * array per request: requests live long enough to reach V8's old space);
   * the rare second and later requesters (endgame) in `moreRequesters`.
   */
  readonly requester: (PeerToken | undefined)[];
  moreRequesters: Map<number, PeerToken[]> | undefined;
  /** Who delivered each received block (for strikes when the hash fails). */
  readonly senders: (PeerToken | undefined)[];
  /** The request counter when each block was last requested: endgame copies the newest first. */
  readonly requestedAt: Float64Array;
  openCount: number;
  receivedCount: number;
  /** No open block below this block number. */
  firstOpen: number;
}

export class PiecePicker {
  readonly #geometry: PieceGeometry;
  readonly #have: Bitfield;
  /** Wanted pieces not yet verified. */
  readonly #need: Bitfield;
  readonly #random: () => number;
  readonly #blocksPerPiece: number;

  /** Availability from peers that sent a bitfield/haves (seeds counted apart). */
  readonly #avail: Uint32Array;
  #seeds = 0;

  // Unstarted wanted pieces, sorted by #avail into buckets:
  // bucket a = #order[#starts[a] .. #starts[a+1]); #pos[p] = -1 when p is not in it.
  readonly #order: Uint32Array;
  readonly #pos: Int32Array;
  readonly #starts: number[];
  /** The same unstarted pieces by index, when sequential. */
  #sequential: LowestFirst | undefined;
  /** Unstarted pieces to start before any other (`priority`); empty without it. */
  #priority: LowestFirst;
  /** The pieces given as `priority` (a lost one becomes a priority piece again). */
  readonly #priorityPieces: Bitfield;
  /** The `wanted` option (undefined: every piece). */
  readonly #wanted: Bitfield | undefined;
  readonly #padding: ReadonlyMap<number, readonly number[]> | undefined;

  readonly #partials = new Map<number, PartialPiece>();
  /** Bytes of the pieces in #partials, and the most it may start more pieces up to. */
  #partialBytes = 0;
  readonly #maxBytesInProgress: number;
  /** A pick or pickFrom left a piece unstarted for want of room since the last piece was verified. */
  #waitingForRoom = false;
  #requestCount = 0;
  /** Partials with at least one open block, oldest first. */
  readonly #openPartials = new Set<number>();
  /** Outstanding request keys (index * blocksPerPiece + block) per peer. */
  readonly #byPeer = new Map<PeerToken, Set<number>>();

  #missingBlocks = 0;
  #openBlocksInPartials = 0;
  /** No wanted missing piece below this index (#need only gains a piece in pieceLost, which lowers it). */
  #lowestNeed = 0;

  constructor(geometry: PieceGeometry, have: Bitfield, opts: PickerOptions = {}) {
    if (have.size !== geometry.pieceCount) throw new RangeError('have bitfield size does not match the piece count');
    if (opts.wanted && opts.wanted.size !== geometry.pieceCount) throw new RangeError('wanted bitfield size does not match the piece count');
    this.#geometry = geometry;
    this.#wanted = opts.wanted ? new Bitfield(opts.wanted.size, opts.wanted.bytes) : undefined;
    this.#have = new Bitfield(have.size, have.bytes);
    this.#need = new Bitfield(have.size);
    this.#random = opts.random ?? Math.random;
    this.#padding = opts.padding !== undefined && opts.padding.size > 0 ? opts.padding : undefined;
    this.#blocksPerPiece = Math.max(1, Math.ceil(geometry.pieceLength / BLOCK_SIZE));
    this.#maxBytesInProgress = opts.maxBytesInProgress ?? Infinity;
    const n = geometry.pieceCount;
    this.#avail = new Uint32Array(n);
    this.#order = new Uint32Array(n);
    this.#pos = new Int32Array(n).fill(-1);
    let size = 0;
    for (let i = 0; i < n; i++) {
      if (this.#have.has(i) || (opts.wanted && !opts.wanted.has(i))) continue;
      this.#need.set(i);
      this.#order[size] = i;
      this.#pos[i] = size++;
      this.#missingBlocks += geometry.blockCount(i);
    }
    this.#starts = [0, size];
    this.#sequential = opts.sequential ? new LowestFirst(n, this.#order.subarray(0, size)) : undefined;
    const priority: number[] = [];
    this.#priorityPieces = new Bitfield(n);
    for (const i of opts.priority ?? []) {
      if (!geometry.isValidIndex(i)) throw new RangeError(`priority piece ${i} out of range`);
      this.#priorityPieces.set(i);
      if (this.#need.has(i)) priority.push(i);
    }
    this.#priority = new LowestFirst(n, priority);
  }

  // ---------------------------------------------------------------- availability

  /** A peer announced its bitfield. */
  peerHas(bitfield: Bitfield): void {
    this.#checkSize(bitfield);
    forEachSetBit(bitfield, (i) => this.#increment(i));
  }

  /** A seed joined (have-all or a full bitfield): counted once, not per piece. */
  peerHasAll(): void {
    this.#seeds++;
  }

  /** A peer left; `bitfield` is what it had when it left. */
  peerLost(bitfield: Bitfield): void {
    this.#checkSize(bitfield);
    forEachSetBit(bitfield, (i) => this.#decrement(i));
  }

  /** A seed counted with peerHasAll() left. */
  peerLostAll(): void {
    if (this.#seeds > 0) this.#seeds--;
  }

  /** A peer sent 'have' for `index` (the caller drops repeats for the same peer). */
  peerHave(index: number): void {
    if (!this.#geometry.isValidIndex(index)) throw new RangeError(`piece ${index} out of range`);
    this.#increment(index);
  }

  availability(index: number): number {
    return (this.#avail[index] ?? 0) + this.#seeds;
  }

  // ---------------------------------------------------------------- requests

  /**
   * Up to `count` blocks to request from `peer`, marked as requested by it, in
   * the order the header describes. In endgame, blocks other peers have requested
   * but this one has not, for which `worthCopying(requesters)` says yes (all of
   * them, without it): the caller knows which peers are slow to deliver.
   * Sequential, with `hurry`: first the head's blocks held by exactly one
   * other peer for which `hurry(thatPeer, index, begin)` says yes.
   */
  pick(
    peer: PeerToken,
    peerHas: Bitfield | 'all',
    count: number,
    worthCopying?: (requesters: readonly PeerToken[]) => boolean,
    hurry?: Hurry,
  ): BlockRequest[] {
    const out: BlockRequest[] = [];
    if (count <= 0) return out;
    const has = peerHas === 'all' ? (): boolean => true : (i: number): boolean => peerHas.has(i);
    if (this.#sequential && hurry) this.#takeHead(peer, has, count, out, hurry);

    // sequential: the few open partials (pieces in flight, at most) by index
    const partials = this.#sequential && this.#openPartials.size > 1 ? [...this.#openPartials].sort((a, b) => a - b) : this.#openPartials;
    for (const index of partials) {
      if (out.length >= count) return out;
      if (has(index)) this.#takeOpen(peer, this.#partials.get(index)!, count, out);
    }
    // where this pick's index-order scans stand: each makes one pass however many pieces it starts
    let priorityFrom = 0; // -1: no priority piece left that this peer has
    let sequentialFrom = 0;
    while (out.length < count) {
      let index: number | undefined;
      if (priorityFrom >= 0) {
        index = this.#priority.lowestOf(peerHas, priorityFrom);
        priorityFrom = index ?? -1;
      }
      if (index === undefined) {
        index = this.#sequential ? this.#sequential.lowestOf(peerHas, sequentialFrom) : this.#rarestFor(has);
        if (index === undefined) break;
        sequentialFrom = index;
      }
      if (!this.#mayStart(index)) break;
      this.#takeOpen(peer, this.#start(index), count, out);
    }
    if (out.length < count && this.inEndgame) this.#takeEndgame(peer, has, count, out, worthCopying);
    return out;
  }

  /**
   * Up to `count` open blocks of piece `index` for `peer` (which has it),
   * starting the piece if nobody has yet; none when it is not a wanted
   * missing piece or none of its blocks is open. No endgame copies: for a
   * peer that may only work on one piece (on probation).
   */
  pickFrom(peer: PeerToken, index: number, count: number): BlockRequest[] {
    const out: BlockRequest[] = [];
    if (count <= 0 || !this.#need.has(index)) return out;
    const piece = this.#partials.get(index) ?? (this.#mayStart(index) ? this.#start(index) : undefined);
    if (piece) this.#takeOpen(peer, piece, count, out);
    return out;
  }

  /**
   * A block arrived from `peer`. 'new': first copy of a block we lack, keep it
   * (then cancel it at requestersOf(index, begin)); 'duplicate': we already
   * have it, drop it; 'unexpected': not a block of a piece we asked for.
   */
  received(peer: PeerToken, index: number, begin: number): ReceivedKind {
    const block = this.#blockNumber(index, begin);
    if (block === undefined) return 'unexpected';
    this.#byPeer.get(peer)?.delete(this.#key(index, block));
    if (this.#have.has(index)) return 'duplicate';
    const piece = this.#partials.get(index);
    if (!piece) return 'unexpected';
    removeRequester(piece, block, peer);
    const state = piece.state[block]!;
    if (state === RECEIVED) return 'duplicate';
    if (state === OPEN) this.#closeOpen(piece);
    piece.state[block] = RECEIVED;
    piece.senders[block] = peer;
    piece.receivedCount++;
    this.#missingBlocks--;
    return 'new';
  }

  /** Other peers that still have this block requested (cancel it there). */
  requestersOf(index: number, begin: number): PeerToken[] {
    const block = this.#blockNumber(index, begin);
    if (block === undefined) return [];
    const piece = this.#partials.get(index);
    return piece ? requestersOfBlock(piece, block) : [];
  }

  /**
   * The distinct peers that delivered blocks of `index` (ask before
   * pieceFailed(), which forgets them): the suspects when its hash fails.
   */
  contributors(index: number): PeerToken[] {
    const piece = this.#partials.get(index);
    if (!piece) return [];
    return [...new Set(piece.senders.filter((p): p is PeerToken => p !== undefined))];
  }

  /** Every block of `index` received, not yet verified (false once verified). */
  isPieceComplete(index: number): boolean {
    const piece = this.#partials.get(index);
    return piece !== undefined && piece.receivedCount === piece.state.length;
  }

  /** A request is gone (choke, reject, timeout): the block goes back to the pool. */
  release(peer: PeerToken, index: number, begin: number): void {
    const block = this.#blockNumber(index, begin);
    if (block === undefined) return;
    this.#byPeer.get(peer)?.delete(this.#key(index, block));
    this.#releaseBlock(peer, index, block);
  }

  /** Every request of `peer` goes back to the pool (peer gone or choked us). */
  releaseAll(peer: PeerToken): void {
    const keys = this.#byPeer.get(peer);
    if (!keys) return;
    this.#byPeer.delete(peer);
    for (const key of keys) {
      const index = Math.floor(key / this.#blocksPerPiece);
      this.#releaseBlock(peer, index, key - index * this.#blocksPerPiece);
    }
  }

  /** The piece hashed correctly and is on disk. Outstanding duplicates of it are forgotten. */
  pieceVerified(index: number): void {
    if (!this.#geometry.isValidIndex(index) || this.#have.has(index)) return;
    this.#have.set(index);
    if (!this.#need.clear(index)) return; // not wanted: never counted missing, never started
    const piece = this.#partials.get(index);
    if (piece) {
      this.#forgetRequests(piece);
      this.#missingBlocks -= piece.state.length - piece.receivedCount;
      this.#openBlocksInPartials -= piece.openCount;
      this.#partials.delete(index);
      this.#partialBytes -= this.#geometry.pieceSize(index);
      this.#waitingForRoom = false;
      this.#openPartials.delete(index);
    } else {
      if (this.#pos[index]! >= 0) this.#removeUnstarted(index);
      this.#missingBlocks -= this.#geometry.blockCount(index);
    }
  }

  /**
   * A verified piece is gone (its data can no longer be read from disk): it
   * is missing again, wanted if it was, and picked as if never started
   * (availability, priority and sequential order as for any other piece).
   */
  pieceLost(index: number): void {
    if (!this.#geometry.isValidIndex(index) || !this.#have.clear(index)) return;
    if (this.#wanted && !this.#wanted.has(index)) return;
    this.#need.set(index);
    this.#missingBlocks += this.#geometry.blockCount(index);
    this.#addUnstarted(index);
    if (index < this.#lowestNeed) this.#lowestNeed = index;
  }

  /** The piece failed its hash check: all its blocks are missing again. */
  pieceFailed(index: number): void {
    const piece = this.#partials.get(index);
    if (!piece) return;
    this.#forgetRequests(piece);
    this.#missingBlocks += piece.receivedCount;
    this.#openBlocksInPartials += piece.state.length - piece.openCount;
    piece.state.fill(OPEN);
    piece.senders.fill(undefined);
    piece.receivedCount = 0;
    piece.openCount = piece.state.length;
    piece.firstOpen = 0;
    this.#openPartials.add(index);
    this.#receivePadding(piece);
  }

  /** Does the peer have any wanted piece we still lack? O(pieces / 8). */
  interestingFor(peerHas: Bitfield | 'all'): boolean {
    if (peerHas === 'all' || peerHas.complete) return !this.#need.empty;
    const need = this.#need.bytes;
    const theirs = peerHas.bytes;
    const n = Math.min(need.length, theirs.length);
    for (let i = 0; i < n; i++) if ((theirs[i]! & need[i]!) !== 0) return true;
    return false;
  }

  /** Every wanted piece is verified (all of them, without a wanted set). */
  get done(): boolean {
    return this.#need.empty;
  }

  /** Blocks not yet received, over the wanted pieces we lack. */
  get missingBlocks(): number {
    return this.#missingBlocks;
  }

  /** Verified pieces. Treat as read-only: use pieceVerified() to change it. */
  get have(): Bitfield {
    return this.#have;
  }

  /** Every missing block is requested from someone: duplicates are allowed. */
  get inEndgame(): boolean {
    return this.#missingBlocks > 0 && this.#openBlocksInPartials === 0 && this.#unstartedCount() === 0;
  }

  /** Pieces with per-block state (started, not verified). */
  get piecesInProgress(): number {
    return this.#partials.size;
  }

  /** Their bytes: what maxBytesInProgress bounds. */
  get bytesInProgress(): number {
    return this.#partialBytes;
  }

  /**
   * A pick found no room to start a piece since the last verified one: the
   * caller should pick again for its peers once pieceVerified() makes room
   * (nothing else may be in flight to bring them back).
   */
  get waitingForRoom(): boolean {
    return this.#waitingForRoom;
  }

  // ---------------------------------------------------------------- internals

  #checkSize(bitfield: Bitfield): void {
    if (bitfield.size !== this.#geometry.pieceCount) throw new RangeError('bitfield size does not match the piece count');
  }

  #key(index: number, block: number): number {
    return index * this.#blocksPerPiece + block;
  }

  #blockNumber(index: number, begin: number): number | undefined {
    if (!this.#geometry.isValidIndex(index) || !Number.isInteger(begin) || begin < 0 || begin % BLOCK_SIZE !== 0) {
      return undefined;
    }
    const block = begin / BLOCK_SIZE;
    return block < this.#geometry.blockCount(index) ? block : undefined;
  }

  #unstartedCount(): number {
    return this.#starts[this.#starts.length - 1]!;
  }

  #takeOpen(peer: PeerToken, piece: PartialPiece, count: number, out: BlockRequest[]): void {
    const { state } = piece;
    for (let b = piece.firstOpen; b < state.length && out.length < count; b++) {
      if (state[b] !== OPEN) continue;
      this.#request(peer, piece, b, out);
      this.#closeOpen(piece);
      piece.firstOpen = b + 1;
    }
  }

  /** Sequential: copies of the head's blocks one other (slow) peer holds, where `hurry` says so. */
  #takeHead(peer: PeerToken, has: (i: number) => boolean, count: number, out: BlockRequest[], hurry: Hurry): void {
    const n = this.#geometry.pieceCount;
    while (this.#lowestNeed < n && !this.#need.has(this.#lowestNeed)) this.#lowestNeed++;
    let bytes = 0;
    for (let index = this.#lowestNeed; index < n && out.length < count; index++) {
      if (bytes >= HEAD_BYTES) break;
      if (!this.#need.has(index)) continue;
      bytes += this.#geometry.pieceSize(index);
      const piece = this.#partials.get(index);
      if (!piece || !has(index)) continue;
      for (let b = 0; b < piece.state.length && out.length < count; b++) {
        const requester = piece.requester[b];
        if (piece.state[b] !== REQUESTED || requester === undefined || requester === peer) continue;
        if (piece.moreRequesters?.has(b)) continue; // copied already: one copy at most
        if (hurry(requester, index, b * BLOCK_SIZE)) this.#request(peer, piece, b, out);
      }
    }
  }

  #takeEndgame(
    peer: PeerToken,
    has: (i: number) => boolean,
    count: number,
    out: BlockRequest[],
    worthCopying: ((requesters: readonly PeerToken[]) => boolean) | undefined,
  ): void {
    const candidates: { piece: PartialPiece; block: number; others: number; at: number }[] = [];
    for (const piece of this.#partials.values()) {
      if (!has(piece.index)) continue;
      for (let b = 0; b < piece.state.length; b++) {
        if (piece.state[b] !== REQUESTED || piece.requester[b] === undefined) continue;
        const requesters = requestersOfBlock(piece, b);
        if (requesters.includes(peer) || (worthCopying && !worthCopying(requesters))) continue;
        candidates.push({ piece, block: b, others: requesters.length, at: piece.requestedAt[b]! });
      }
    }
    // fewest requesters first, then the newest requests: the tails of the slow
    // peers' queues, which would come last and which they have not sent yet
    candidates.sort((x, y) => x.others - y.others || y.at - x.at);
    for (const c of candidates) {
      if (out.length >= count) break;
      this.#request(peer, c.piece, c.block, out);
    }
  }

  #request(peer: PeerToken, piece: PartialPiece, block: number, out: BlockRequest[]): void {
    piece.state[block] = REQUESTED;
    piece.requestedAt[block] = ++this.#requestCount;
    addRequester(piece, block, peer);
    let keys = this.#byPeer.get(peer);
    if (!keys) this.#byPeer.set(peer, (keys = new Set()));
    keys.add(this.#key(piece.index, block));
    out.push({ index: piece.index, begin: block * BLOCK_SIZE, length: this.#geometry.blockSize(piece.index, block) });
  }

  /** One open block of `piece` stops being open. */
  #closeOpen(piece: PartialPiece): void {
    piece.openCount--;
    this.#openBlocksInPartials--;
    if (piece.openCount === 0) this.#openPartials.delete(piece.index);
  }

  #releaseBlock(peer: PeerToken, index: number, block: number): void {
    const piece = this.#partials.get(index);
    if (!piece || !removeRequester(piece, block, peer)) return;
    if (piece.state[block] !== REQUESTED || piece.requester[block] !== undefined) return;
    piece.state[block] = OPEN;
    piece.openCount++;
    this.#openBlocksInPartials++;
    piece.firstOpen = Math.min(piece.firstOpen, block);
    this.#openPartials.add(index);
  }

  /** Drop every peer's outstanding request on `piece` (it was verified or failed). */
  #forgetRequests(piece: PartialPiece): void {
    for (let b = 0; b < piece.requester.length; b++) {
      if (piece.requester[b] === undefined) continue;
      const key = this.#key(piece.index, b);
      for (const peer of requestersOfBlock(piece, b)) this.#byPeer.get(peer)?.delete(key);
      piece.requester[b] = undefined;
    }
    piece.moreRequesters = undefined;
  }

  /** Starting `index` keeps the pieces in progress within maxBytesInProgress, or none is in progress. */
  #mayStart(index: number): boolean {
    if (this.#partials.size === 0 || this.#partialBytes + this.#geometry.pieceSize(index) <= this.#maxBytesInProgress) return true;
    this.#waitingForRoom = true;
    return false;
  }

  /** Move an unstarted piece into the partial set. */
  #start(index: number): PartialPiece {
    this.#removeUnstarted(index);
    const blocks = this.#geometry.blockCount(index);
    const piece: PartialPiece = {
      index,
      state: new Uint8Array(blocks),
      requester: new Array<PeerToken | undefined>(blocks).fill(undefined),
      moreRequesters: undefined,
      senders: new Array<PeerToken | undefined>(blocks).fill(undefined),
      requestedAt: new Float64Array(blocks),
      openCount: blocks,
      receivedCount: 0,
      firstOpen: 0,
    };
    this.#partials.set(index, piece);
    this.#partialBytes += this.#geometry.pieceSize(index);
    this.#openPartials.add(index);
    this.#openBlocksInPartials += blocks;
    this.#receivePadding(piece);
    return piece;
  }

  /** Blocks of BEP 47 padding are zeros: counted received at once, never asked of anyone. */
  #receivePadding(piece: PartialPiece): void {
    const pad = this.#padding?.get(piece.index);
    if (!pad) return;
    for (const b of pad) {
      if (piece.state[b] !== OPEN) continue;
      this.#closeOpen(piece);
      piece.state[b] = RECEIVED;
      piece.receivedCount++;
      this.#missingBlocks--;
    }
  }

  /**
   * The rarest unstarted piece the peer has; a random one among equals. Without
   * seeds, bucket 0 (nobody announced it) is only a last resort, in case the
   * caller picks for a peer whose pieces it never reported.
   */
  #rarestFor(has: (i: number) => boolean): number | undefined {
    const top = this.#starts.length - 2;
    if (this.#seeds > 0) return this.#scanBucketsFrom(0, top, has);
    return this.#scanBucketsFrom(1, top, has) ?? this.#scanBucketsFrom(0, 0, has);
  }

  #scanBucketsFrom(from: number, to: number, has: (i: number) => boolean): number | undefined {
    const starts = this.#starts;
    for (let a = from; a <= to; a++) {
      const first = starts[a]!;
      const size = starts[a + 1]! - first;
      if (size === 0) continue;
      const r = Math.min(size - 1, Math.floor(this.#random() * size));
      for (let j = 0; j < size; j++) {
        const p = this.#order[first + ((r + j) % size)]!;
        if (has(p)) return p;
      }
    }
    return undefined;
  }

  #swap(i: number, j: number): void {
    if (i === j) return;
    const order = this.#order;
    const pi = order[i]!;
    const pj = order[j]!;
    order[i] = pj;
    order[j] = pi;
    this.#pos[pj] = i;
    this.#pos[pi] = j;
  }

  #increment(index: number): void {
    const a = this.#avail[index]!;
    this.#avail[index] = a + 1;
    const pos = this.#pos[index]!;
    if (pos < 0) return;
    const starts = this.#starts;
    if (starts.length < a + 3) starts.push(starts[starts.length - 1]!); // new empty top bucket
    // move to the end of bucket a, then shift the boundary so it opens bucket a+1
    const last = starts[a + 1]! - 1;
    this.#swap(pos, last);
    starts[a + 1] = last;
  }

  #decrement(index: number): void {
    const a = this.#avail[index]!;
    if (a === 0) return;
    this.#avail[index] = a - 1;
    const pos = this.#pos[index]!;
    if (pos < 0) return;
    const starts = this.#starts;
    const first = starts[a]!;
    this.#swap(pos, first);
    starts[a] = first + 1;
  }

  /**
   * Put a piece back among the unstarted ones (pieceLost): into the bucket of
   * its availability, O(number of buckets); the index-order sets, which only
   * shrink, are rebuilt, O(unstarted pieces): a lost piece is rare.
   */
  #addUnstarted(index: number): void {
    const starts = this.#starts;
    const a = this.#avail[index]!;
    while (starts.length < a + 2) starts.push(starts[starts.length - 1]!);
    // at the end of the top bucket, then down: each bucket above its own gives its first place
    let pos = starts[starts.length - 1]!;
    this.#order[pos] = index;
    this.#pos[index] = pos;
    starts[starts.length - 1] = pos + 1;
    for (let b = starts.length - 2; b > a; b--) {
      const first = starts[b]!;
      this.#swap(pos, first);
      pos = first;
      starts[b] = first + 1;
    }
    const n = this.#geometry.pieceCount;
    const unstarted = this.#order.subarray(0, starts[starts.length - 1]!);
    if (this.#sequential) this.#sequential = new LowestFirst(n, unstarted);
    if (this.#priorityPieces.has(index)) {
      const priority: number[] = [];
      for (const i of unstarted) if (this.#priorityPieces.has(i) && (i === index || this.#priority.has(i))) priority.push(i);
      this.#priority = new LowestFirst(n, priority);
    }
  }

  /** Remove from the buckets, O(number of buckets), i.e. O(peers), and from the index-order sets. */
  #removeUnstarted(index: number): void {
    const starts = this.#starts;
    let pos = this.#pos[index]!;
    for (let b = this.#avail[index]!; b + 1 < starts.length; b++) {
      const last = starts[b + 1]! - 1;
      this.#swap(pos, last);
      pos = last;
      starts[b + 1] = last;
    }
    this.#pos[index] = -1;
    this.#sequential?.delete(index);
    this.#priority.delete(index);
  }
}

function addRequester(piece: PartialPiece, block: number, peer: PeerToken): void {
  if (piece.requester[block] === undefined) {
    piece.requester[block] = peer;
    return;
  }
  piece.moreRequesters ??= new Map();
  const more = piece.moreRequesters.get(block);
  if (more) more.push(peer);
  else piece.moreRequesters.set(block, [peer]);
}

/** Returns whether `peer` had the block requested. */
function removeRequester(piece: PartialPiece, block: number, peer: PeerToken): boolean {
  const more = piece.moreRequesters?.get(block);
  if (piece.requester[block] === peer) {
    piece.requester[block] = more?.shift(); // the next requester, if any, moves up
  } else {
    const i = more ? more.indexOf(peer) : -1;
    if (i < 0) return false;
    more!.splice(i, 1);
  }
  if (more && more.length === 0) piece.moreRequesters!.delete(block);
  return true;
}

/** Every peer with the block requested (a fresh array). */
function requestersOfBlock(piece: PartialPiece, block: number): PeerToken[] {
  const first = piece.requester[block];
  if (first === undefined) return [];
  const more = piece.moreRequesters?.get(block);
  return more ? [first, ...more] : [first];
}

function forEachSetBit(bitfield: Bitfield, fn: (index: number) => void): void {
  const bytes = bitfield.bytes;
  for (let i = 0; i < bytes.length; i++) {
    let v = bytes[i]!;
    while (v !== 0) {
      const bit = Math.clz32(v) - 24; // 0 = high bit = lowest index
      fn(i * 8 + bit);
      v &= ~(0x80 >> bit);
    }
  }
}
