/**
 * TorrentSession: the orchestrator for one torrent, downloading and/or seeding.
 * It wires the picker, storage, hasher, announcer and peer connections
 * together and keeps the invariants written in STATE.md beside this file
 * (a piece is "had" only after its hash matched AND its write completed).
 * Policy lives elsewhere: picking in pieces/picker, choking in choker.ts,
 * request depth in pipeline.ts, peer bookkeeping in peer-pool.ts, dialing
 * (connect, half-open count, per-IP recheck, the MSE redial) in dialer.ts,
 * serving requests in uploader.ts, per-connection state in peer-state.ts,
 * BEP 19 web seeds in web-seeds.ts (which stores their blocks here as a
 * peer's), BEP 11 peer exchange pacing and sending in pex.ts, answering
 * BEP 9 metadata requests in metadata-server.ts, what our BEP 10 extended
 * handshake offers and what a peer's sets in extension-handshake.ts.
 */
import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type net from 'node:net';
import { displayUrl } from '../core/display-url.js';
import { Bitfield } from '../core/bitfield.js';
import { BLOCK_SIZE, PieceGeometry } from '../core/geometry.js';
import { DiskError, TtError, errorMessage } from '../core/errors.js';
import { generatePeerId, peerKey } from '../core/ids.js';
import { ipOf, withoutSelf, type PeerAddress } from '../core/peer-address.js';
import { RateMeter, TokenBucket } from '../core/rate.js';
import { pieceHash, type Metainfo } from '../metainfo/metainfo.js';
import { READ_CACHE_BYTES } from './read-cache.js';
import { FileSelection, partFileName } from '../metainfo/selection.js';
import { PeerConnection, type ReadSink } from '../peer/connection.js';
import { PiecePicker, type BlockRequest, type Hurry, type PeerToken, type PieceOrder } from '../pieces/picker.js';
import { firstLastPieces } from '../pieces/first-last.js';
import { WebSeeds, usableWebSeeds, type WebSeedHost } from './web-seeds.js';
import { TorrentStorage, hasPartFile, type FileOpener } from '../storage/storage.js';
import { checkExisting, type CheckProgress } from '../storage/check.js';
import { expectedStamps, filesTouched, loadResume, removeResume, sameStamp, saveResume, stampFolder, type FolderStamps } from '../storage/resume.js';
import { PieceHasher } from '../storage/hasher.js';
import { paddingBlocks } from '../pieces/padding.js';
import { piecesIn, wholePaddingPieces } from '../metainfo/padding-pieces.js';
import { acquireDownloadLock } from '../storage/lock.js';
import { PieceBuffers } from '../storage/piece-buffers.js';
import { Announcer, type TrackerFailure } from '../tracker/announcer.js';
import { DhtAnnouncer } from '../dht/announcer.js';
import type { DhtNode } from '../dht/node.js';
import { unmapIpv4 } from '../core/compact-peer.js';
import type { Message } from '../wire/messages.js';
import type { Handshake } from '../wire/handshake.js';
import { EXTENDED_HANDSHAKE_ID, parseExtendedHandshake } from '../wire/extension.js';
import type { StreamCipher } from '../wire/mse.js';
import { OUR_UT_PEX_ID } from '../wire/pex.js';
import { sendPex } from './pex.js';
import { SmartBan } from './smart-ban.js';
import { OUR_UT_METADATA_ID } from '../wire/ut-metadata.js';
import { MetadataServer } from './metadata-server.js';
import { supportsDht, supportsExtensionProtocol } from '../wire/handshake.js';
import { chooseUnchoked, pickOptimistic, OPTIMISTIC_INTERVAL_MS, RECHOKE_INTERVAL_MS } from './choker.js';
import { DEFAULT_MAX_PEERS_PER_IP, PeerPool, type PeerIdentity } from './peer-pool.js';
import { Uploader } from './uploader.js';
import { Listener } from './listener.js';
import { depthShare, grownQueueDepth, nextQueueDepth } from './pipeline.js';
import { PeerState, blockKey, keyBegin, keyIndex, rememberReleased } from './peer-state.js';
import { headHurry } from './head-copy.js';
import { Dialer } from './dialer.js';
import { applyPeerExtensions, ourExtendedHandshake, peerExtensions } from './extension-handshake.js';


export const REQUEST_TIMEOUT_MS = 30_000;
/**
 * Verified-but-unwritten bytes above which we stop reading sockets. 8 MiB:
 * on a 4 GiB download, where the kernel's writeback throttles writes, 16 MiB
 * gave peak RSS 98-104 MiB and 8 MiB 87-91 MiB, with no loss of speed.
 */
export const DISK_QUEUE_MAX_BYTES = 8 * 1024 * 1024;
/**
 * Bytes of piece buffers a download may hold: each piece started and not yet
 * verified (being downloaded, hashed or written) takes one. The picker starts
 * no piece past it, but one piece always may, however large. 32 MiB: tt's
 * other memory is ~60 MiB, and the README promises a peak RSS of 100.
 * Measured on 512 MiB from libtorrent: the pieces in progress span 16-18 MiB
 * with 256 KiB and 1 MiB pieces from one seeder, 27 MiB from 8, so it does not
 * bind there; with 32 MiB pieces one is in progress (peak RSS 282 -> 94 MiB),
 * with 128 MiB pieces one (443 -> 189 MiB).
 */
export const PIECE_BUFFER_BUDGET = 32 * 1024 * 1024;
/** No new requests to a peer while this much of what we sent it waits unsent (4,000 requests' worth). */
export const REQUEST_BACKLOG_BYTES = 64 * 1024;
/** Which of two idle peers is the better one to close for a newcomer: the one that gave less in all, then the longer idle. */
function lessUseful(a: PeerState, b: PeerState): boolean {
  const given = (p: PeerState): number => p.acceptedBytes + p.sentBytes;
  return given(a) !== given(b) ? given(a) < given(b) : a.lastPayloadAt < b.lastPayloadAt;
}

/** How often a download checks that its files are still in place, and up to how many files it does. */
export const FILES_CHECK_MS = 30_000;
const FILES_CHECK_MAX = 2_000;
/** Chokes in a row, each while our requests waited and with no block since the unchoke, before the peer is closed. */
export const MAX_FRUITLESS_CHOKES = 20;
const MAX_UNREQUESTED_BLOCKS = 64;
/** Endgame copies only of blocks whose requesters would take longer than this (#worthCopying). */
const ENDGAME_COPY_AFTER_MS = 250;
/** A seed dials a peer learnt from a tracker only after this long, giving it time to connect first. */
const SEED_DIAL_DELAY_MS = 5_000;
/** A peer doing nothing for this long may be closed to make room for a newcomer. */
const IDLE_EVICT_MS = 2_000;
/**
 * When no peer is idle, one that moved no block either way for this long
 * (interested or not) makes room instead: otherwise 50 connections that say
 * interested and then only send keep-alives lock every honest peer out, as
 * a review showed against a seed. Libtorrent also replaces its least useful
 * peer when full.
 */
export const USELESS_EVICT_MS = 30_000;
/** Why a connection between two seeds ends, and how long before such a peer is dialed again (doubling, up to 10 min). */
const BOTH_SEEDS = 'both are seeds';
const BOTH_SEEDS_RETRY_MS = 60_000;
const TICK_MS = 1_000;
/**
 * A downloading session fetches a piece that could no longer be read from
 * disk again (its file was truncated or damaged under us); the same piece
 * lost this many times means the disk is not keeping what is written to it,
 * and the session stops with a disk error.
 */
export const MAX_PIECE_LOSSES = 3;
/**
 * A piece a peer rejected (BEP 6) while unchoking us is not asked of it again
 * for this long: it does not have it, whatever its bitfield said (its data
 * may have become unreadable, uploader.ts), and asking again at once would
 * keep our requests to it on pieces it cannot send.
 */
const REJECTED_RETRY_MS = 30_000;
/** Identities of peers that sent blocks and left, kept for a smart-ban verdict that comes later. */
const MAX_DEPARTED = 512;

export interface SessionOptions {
  meta: Metainfo;
  /** Folder that holds the torrent's files: <root>/<name> (single) or <root>/<name>/... (multi). */
  root: string;
  mode: 'download' | 'seed';
  listener: Listener;
  peerId?: Buffer;
  maxPeers?: number;
  /** Connections one IP may have at once (default DEFAULT_MAX_PEERS_PER_IP). */
  maxPeersPerIp?: number;
  uploadSlots?: number;
  /** bytes/s; 0 = unlimited */
  uploadLimit?: number;
  downloadLimit?: number;
  /** Peers the user gave (--peer host:port, a magnet's x.pe): never evicted, not held to the per-IP address cap. */
  peers?: readonly PeerAddress[];
  /** Peers heard of elsewhere (those that answered a magnet's metadata phase): kept like a tracker's. */
  foundPeers?: readonly PeerAddress[];
  /** Peers a magnet's metadata phase heard of through PEX: kept as PEX peers, and never for a private torrent or with `pex: false`. */
  pexPeers?: readonly PeerAddress[];
  /** Use the torrent's trackers (default true). */
  useTrackers?: boolean;
  /** Announce this port instead of the listener's. */
  announcePort?: number;
  /** Find peers through this DHT node too (never for a private torrent, BEP 27). The caller owns and closes it. */
  dht?: DhtNode | undefined;
  /** Give up when no peer has been connected for this long (download only; 0 = never). */
  peerTimeoutMs?: number;
  /**
   * Give up when no new block has arrived for this long although peers may be
   * connected (download only; 0 = never, as other clients wait forever).
   */
  stallTimeoutMs?: number;
  /** Serve even though pieces are missing (seed mode). */
  allowPartial?: boolean;
  requestTimeoutMs?: number;
  /** Downloading: how often every file is checked to be in place (default FILES_CHECK_MS). */
  filesCheckMs?: number;
  /** At the peer cap, a peer that moved no block either way for this long makes room for a newcomer (default USELESS_EVICT_MS). */
  uselessPeerMs?: number;
  /** Worker pool for SHA-1 (one per process can be shared by several sessions). */
  hasher?: PieceHasher;
  /** Test seam: how storage opens files (e.g. a deliberately slow disk). */
  openFile?: FileOpener;
  /** Skip checking existing data (the caller knows the folder is new). */
  skipCheck?: boolean;
  /**
   * Downloading: take the pieces a fast-resume record (storage/resume.ts)
   * vouches for without hashing them, and write one when stopping short of
   * complete (default true).
   */
  resume?: boolean;
  /** Downloading: hash every piece even when a resume record vouches for some (one is still written). */
  recheck?: boolean;
  /**
   * Write whole aligned pieces with O_DIRECT where the file system and disk
   * allow it (storage/direct-io.ts); default true. false: always the page cache.
   */
  directWrites?: boolean;
  /**
   * Download only these files (mode 'download'): the pieces overlapping them
   * are wanted, the download is done when those verify (`done`), and other
   * files are never created (metainfo/selection.ts). Undefined: everything.
   */
  selection?: FileSelection | undefined;
  /** BEP 11 peer exchange with peers that offer it (default true; never for a private torrent, BEP 27). */
  pex?: boolean;
  /** BEP 19: also download from the torrent's web seeds (url-list), default true. */
  webSeeds?: boolean;
  /** Downloading: pieces in index order, and/or the first and last piece of each wanted file first (default rarest first). */
  pieceOrder?: PieceOrder | undefined;
  /** Downloading: the most bytes of piece buffers held at once (default PIECE_BUFFER_BUDGET; at least one piece). */
  pieceBufferBudget?: number;
}

export interface SessionStats {
  pieceCount: number;
  have: number;
  totalLength: number;
  /** bytes of pieces not verified, of the whole torrent (what trackers are told) */
  left: number;
  /** pieces wanted (pieceCount without a file selection), and how many of them are verified */
  wantedPieces: number;
  wantedHave: number;
  /** bytes of the wanted pieces (totalLength without a file selection) */
  wantedLength: number;
  /** bytes of wanted pieces not verified yet */
  wantedLeft: number;
  /** payload bytes received / sent this session */
  downloaded: number;
  uploaded: number;
  /** bytes of pieces verified and written this session */
  verifiedBytes: number;
  downloadRate: number;
  uploadRate: number;
  peers: number;
  knownPeers: number;
  failedPieces: number;
  bannedPeers: number;
  /** complete pieces held in memory waiting for their hash or their write */
  pendingBytes: number;
  /** blocks received and dropped: a copy came first (endgame, a request we had given up on) */
  wastedBytes: number;
  /** bytes written with O_DIRECT, bypassing the page cache (storage/direct-io.ts) */
  directWriteBytes: number;
  /** payload bytes that came from web seeds (BEP 19) */
  webSeedBytes: number;
  /** why direct writes were turned off during this session, if they were */
  directWritesOff: string | undefined;
}

export interface SessionEvents {
  checking: [progress: CheckProgress];
  /** `resumed`: of `have`, the pieces a fast-resume record vouched for (not hashed). */
  checked: [have: number, pieceCount: number, resumed: number];
  started: [];
  'piece-verified': [index: number];
  'piece-failed': [index: number, peers: string[]];
  'peer-banned': [peer: string, reason: string];
  /** `encrypted`: the stream is RC4 (MSE selected it). */
  'peer-connected': [peer: string, encrypted: boolean];
  'peer-dial-failed': [peer: string, reason: string];
  /** An incoming connection was turned away before it became a peer. */
  'peer-refused': [peer: string, reason: string];
  'peer-closed': [peer: string, reason: string];
  warning: [message: string];
  /** A DHT lookup ended: peers found, nodes asked. */
  'dht-lookup': [found: number, queried: number];
  /** A web seed (BEP 19) was given up: too many failures, or it sent corrupt data. */
  'web-seed-dropped': [url: string, reason: string];
  /** A peer's ut_pex message named `added` peers, `fresh` of them new to us. */
  pex: [peer: string, added: number, fresh: number];
  complete: [];
  error: [error: TtError];
}

export class TorrentSession extends EventEmitter<SessionEvents> {
  readonly meta: Metainfo;
  readonly geometry: PieceGeometry;
  readonly peerId: Buffer;
  readonly opts: SessionOptions;
  have: Bitfield;
  picker: PiecePicker | undefined;
  storage: TorrentStorage | undefined;
  readonly pool = new PeerPool();
  readonly downloadRate = new RateMeter();
  readonly uploadRate = new RateMeter();

  readonly #peers = new Map<PeerConnection, PeerState>();
  /** Outgoing connections until they are peers (dialer.ts): stop() ends those in progress. */
  readonly #dialer: Dialer;
  #announcer: Announcer | undefined;
  #dhtAnnouncer: DhtAnnouncer | undefined;
  #uploader: Uploader | undefined;
  /** Fast resume: every file's stamp when the session started, and the files found with data not yet synced. */
  #foundStamps: FolderStamps | undefined;
  #foundUnsynced = new Set<number>();
  /** Pieces wholly in BEP 47 padding: had from the start, verified by nobody's bytes. */
  #paddingOnly = 0;
  /** pieces being assembled: index -> buffer and the peer that sent each block */
  readonly #assembly = new Map<number, { buffer: Buffer; senders: string[] }>();
  readonly #smartBan = new SmartBan();
  #diskQueueBytes = 0;
  /** Piece buffers, reused and page-aligned (storage/piece-buffers.ts): only in-flight pieces hold one. */
  readonly #buffers: PieceBuffers;
  /** bytes of complete pieces waiting for their SHA-1 (counted with the disk queue) */
  #hashingBytes = 0;
  readonly #hasher: PieceHasher;
  #readingPaused = false;
  #timers: NodeJS.Timeout[] = [];
  #stopped = false;
  #completeEmitted = false;
  #started = false;
  #lastPeerAt = Date.now();
  /**
   * For --stall-timeout: when each sender's last new block arrived, and when
   * waiting for data began (start, or a lost piece reopening a finished
   * download). A banned sender's blocks do not count: its entry goes.
   */
  readonly #lastDataBy = new Map<string, number>();
  #stallFrom = Date.now();
  /** Identity of each peer that sent blocks and has left, by its key (bounded): a late smart-ban verdict bans the peer, not an ephemeral port. */
  readonly #departed = new Map<string, PeerIdentity>();
  /** Times each piece was lost from disk after it was had (MAX_PIECE_LOSSES). */
  readonly #losses = new Map<number, number>();
  /** Pieces found unreadable whose warning waits for #checkFiles (piece -> why), and that check while it runs. */
  readonly #unreadable = new Map<number, string>();
  #checkingFiles: Promise<void> | undefined;
  #optimistic: PeerConnection | undefined;
  #downloadBucket: TokenBucket;
  #failedPieces = 0;
  #wastedBytes = 0;
  #banned = 0;
  #verifiedBytes = 0;
  /** bytes of the pieces in `have` (so stats() need not scan every piece) */
  #haveBytes = 0;
  /** BEP 19 web seeds (download mode). */
  readonly #webSeeds: WebSeeds;
  /** BEP 9: answers ut_metadata requests (not for a private torrent). */
  readonly #metadataServer: MetadataServer;
  /** Wanted pieces (all without a selection), and how many of them are verified, with their bytes. */
  readonly #selection: FileSelection | undefined;
  readonly #wantedCount: number;
  #wantedHave = 0;
  #wantedHaveBytes = 0;
  #fatal: TtError | undefined;
  readonly #pendingWrites = new Set<Promise<void>>();

  constructor(opts: SessionOptions) {
    super();
    this.opts = opts;
    this.meta = opts.meta;
    this.geometry = new PieceGeometry(opts.meta.pieceLength, opts.meta.totalLength);
    this.#buffers = new PieceBuffers(opts.meta.pieceLength);
    this.peerId = opts.peerId ?? generatePeerId();
    this.have = new Bitfield(this.geometry.pieceCount);
    // a selection only means something for a download; a seed serves what it has
    this.#selection = opts.mode === 'download' ? opts.selection : undefined;
    this.#wantedCount = this.#selection?.wanted.count ?? this.geometry.pieceCount;
    this.#downloadBucket = new TokenBucket(opts.downloadLimit ?? 0);
    // inline SHA-1 by default: on two cores the peer on the other end needs the
    // second core, and worker isolates cost ~100 MiB RSS (measured; README Performance)
    this.#hasher = opts.hasher ?? new PieceHasher(0);
    this.#padding = paddingBlocks(opts.meta.files, opts.meta.pieceLength, opts.meta.totalLength);
    this.#webSeeds = new WebSeeds(opts.meta, this.#webSeedHost());
    this.#metadataServer = new MetadataServer(opts.meta.rawInfo);
    this.#dialer = new Dialer({
      infoHash: opts.meta.infoHash,
      requireEncryption: opts.listener.requireEncryption,
      maxPeersPerIp: this.#maxPeersPerIp,
      pool: this.pool,
      stopped: () => this.#stopped,
      openIps: () => this.#openIps(),
      connected: (socket, host, port, key, sink, cipher, leftover) => this.#attach(socket, 'outgoing', host, port, key, sink, cipher, leftover).start(),
      dialFailed: (key, reason) => {
        this.#lastDialFailure = `${key}: ${reason}`;
        this.emit('peer-dial-failed', key, reason);
      },
      connectMore: () => this.#connectMore(),
      guard: (fn) => this.#guard(fn),
    });
  }

  get seeding(): boolean {
    return this.have.complete;
  }

  /** BEP 11 peer exchange is on: not turned off, and never for a private torrent (BEP 27). */
  get #pexEnabled(): boolean {
    return this.opts.pex !== false && !this.meta.private;
  }

  /** The file selection this download follows (undefined: every file). */
  get selection(): FileSelection | undefined {
    return this.#selection;
  }

  /** Every wanted piece is verified: the whole torrent, or the pieces of the selected files. */
  get done(): boolean {
    return this.#wantedHave === this.#wantedCount;
  }

  /** Our requests in flight, all peers together (bounded by SESSION_QUEUE_BLOCKS plus per-peer minimums). */
  get blocksInFlight(): number {
    let n = 0;
    for (const p of this.#peers.values()) n += p.outstanding.size;
    return n;
  }

  /** Bytes of piece buffers held now and at most so far (downloads, hashing, writing, the upload read cache). */
  get pieceBufferBytes(): { held: number; peak: number } {
    return { held: this.#buffers.heldBytes, peak: this.#buffers.peakHeldBytes };
  }

  get peerCount(): number {
    let n = 0;
    for (const p of this.#peers.values()) if (p.conn.handshakeDone) n++;
    return n;
  }

  stats(): SessionStats {
    const left = this.meta.totalLength - this.#haveBytes;
    const wantedLength = this.#selection?.wantedBytes ?? this.meta.totalLength;
    return {
      pieceCount: this.geometry.pieceCount,
      have: this.have.count,
      totalLength: this.meta.totalLength,
      left,
      wantedPieces: this.#wantedCount,
      wantedHave: this.#wantedHave,
      wantedLength,
      wantedLeft: wantedLength - this.#wantedHaveBytes,
      downloaded: this.downloadRate.total,
      uploaded: this.uploadRate.total,
      verifiedBytes: this.#verifiedBytes,
      downloadRate: this.downloadRate.rate,
      uploadRate: this.uploadRate.rate,
      peers: this.peerCount,
      knownPeers: this.pool.size,
      failedPieces: this.#failedPieces,
      bannedPeers: this.#banned,
      pendingBytes: this.#diskQueueBytes + this.#hashingBytes,
      wastedBytes: this.#wastedBytes,
      directWriteBytes: this.storage?.directWrites?.bytes ?? 0,
      webSeedBytes: this.#webSeeds.bytes,
      directWritesOff: this.storage?.directWrites?.offReason,
    };
  }

  readonly #startAbort = new AbortController();

  /**
   * Cut short a start() under way: checking existing data (a minute for
   * 100 GiB) or creating files (100,000 of them) stops at the next piece run
   * or file, and start() rejects with TtError('INTERRUPTED'). Ctrl-C during
   * checking, as in aria2c. Nothing verified is lost: the data stays on disk.
   * stop() must still follow.
   */
  interruptStart(): void {
    this.#startAbort.abort();
  }

  /** Check existing data, open storage, start listening for this torrent and announcing. */
  async start(): Promise<void> {
    // first of all: a second download of this torrent into this folder is refused before it hashes a byte (lock.ts)
    if (this.opts.mode === 'download') this.#releaseLock = await acquireDownloadLock(this.opts.root, this.meta);
    try {
      await this.#start();
    } catch (err) {
      await this.#unlock(); // a start that failed holds nothing, whether or not stop() follows
      throw err;
    }
  }

  /** Gives up the download lock once (storage/lock.ts). */
  async #unlock(): Promise<void> {
    const release = this.#releaseLock;
    this.#releaseLock = undefined;
    await release?.();
  }

  async #start(): Promise<void> {
    const { meta, root } = this.opts;
    // without --select (and when seeding), a part file left by an earlier selective run still holds
    // verified bytes of shared pieces: read the folder as "every file selected" so they are found
    // (and, downloading, moved into place)
    const onDisk = this.#selection ?? ((await hasPartFile(root, meta)) ? FileSelection.all(meta) : undefined);
    let resumed: Bitfield | undefined;
    // the folder as found: a resume record is checked against it, and the next one is written against it
    const signal = this.#startAbort.signal;
    if (this.#resumes) this.#foundStamps = await stampFolder(root, meta, partFileName(meta));
    // seeding: the files as checked, so a file changed in place later is noticed (#checkServedFiles)
    if (this.opts.mode === 'seed') this.#servedStamps = await stampFolder(root, meta, partFileName(meta));
    if (!this.opts.skipCheck) {
      if (this.#foundStamps && !this.opts.recheck) resumed = await loadResume(root, meta, this.#foundStamps);
      this.have = await checkExisting(root, meta, { onProgress: (p) => this.emit('checking', p), selection: onDisk, known: resumed, signal });
      // hashed now, not vouched for by a record: a run killed before may have left them in the page cache only
      this.#foundUnsynced = filesTouched(meta, [...this.have.indices()].filter((i) => !resumed?.has(i)));
      if (this.#foundUnsynced.size > 0) this.#foundUnsynced.add(meta.files.length); // and the part file, where it exists
    }
    // pieces wholly in BEP 47 padding are zeros (hash proved at parse): had from the start, never requested nor waited for
    const paddingRanges = wholePaddingPieces(meta.files, meta.pieceLength, meta.totalLength);
    for (const i of piecesIn(paddingRanges)) this.have.set(i);
    this.#paddingOnly = paddingRanges.reduce((n, [first, last]) => n + last - first, 0);
    for (const i of this.have.indices()) this.#countHave(i, this.geometry.pieceSize(i));
    this.emit('checked', this.have.count, this.geometry.pieceCount, resumed?.count ?? 0);
    const trackers = this.opts.useTrackers !== false && meta.announceList.length > 0;
    const dht = this.opts.dht !== undefined && !meta.private;
    const refusedWebSeeds: string[] = [];
    if (this.opts.mode === 'download' && this.opts.webSeeds !== false && !this.done) {
      const { bases, refused } = usableWebSeeds(meta.urlList);
      this.#webSeeds.add(bases);
      refusedWebSeeds.push(...refused);
    }
    const pexPeers = this.#pexEnabled ? (this.opts.pexPeers ?? []) : [];
    const givenPeers = (this.opts.peers ?? []).length + (this.opts.foundPeers ?? []).length + pexPeers.length;
    if (this.opts.mode === 'download' && !this.done && !trackers && !dht && this.#webSeeds.size === 0 && givenPeers === 0) {
      const hint = meta.private ? 'give peers with --peer host:port (a private torrent never uses the DHT)' : 'use --dht, or give peers with --peer host:port';
      // say why the web seeds did not count: the user may not know the torrent has any
      const webSeeds =
        meta.urlList.length === 0 ? '' : this.opts.webSeeds === false ? ' and --no-web-seeds' : ` and its web seeds cannot be used (${refusedWebSeeds[0]!.replace(/^web seed /, '')})`;
      throw new TtError('NO_PEERS', `no way to find peers: the torrent lists no trackers${webSeeds}; ${hint}`);
    }
    for (const why of refusedWebSeeds) this.emit('warning', why);
    if (this.opts.mode === 'seed' && !this.have.complete && !this.opts.allowPartial) {
      const missing = this.geometry.pieceCount - this.have.count;
      throw new TtError(
        'INCOMPLETE',
        `${missing} of ${this.geometry.pieceCount} pieces are missing or corrupt in ${root}; refusing to seed a partial copy (use --partial to serve what is there)`,
      );
    }
    this.storage = await TorrentStorage.open(root, meta, {
      signal,
      mode: this.opts.mode === 'download' ? 'readwrite' : 'read',
      directWrites: this.opts.directWrites ?? true,
      selection: onDisk,
      ...(this.opts.openFile ? { openFile: this.opts.openFile } : {}),
      onNotice: (message) => this.emit('warning', message), // e.g. a hard-linked file copied before tt writes into it
    });
    const storage = this.storage;
    this.#uploader = new Uploader({
      geometry: this.geometry,
      have: this.have,
      readPiece: async (index) => {
        const into = this.#allocPiece(this.geometry.pieceSize(index));
        const piece = await storage.readPiece(index, into).catch((err: unknown) => {
          this.#freePiece(into);
          throw err;
        });
        if (!piece) {
          this.#freePiece(into);
          throw new DiskError(`its data in ${root} is missing or shorter than the torrent says`);
        }
        // a file changed on disk since it was checked: this piece is hashed again before it is served
        if (this.#changedFiles.size > 0 && this.#touchesChanged(index) && !createHash('sha1').update(piece).digest().equals(pieceHash(meta, index))) {
          this.#freePiece(into);
          throw new DiskError(`it no longer matches its hash: its file changed on disk since it was checked`);
        }
        return piece;
      },
      readBlock: (index, begin, length) => storage.readBlock(index, begin, length),
      freePiece: (buffer) => this.#freePiece(buffer),
      uploadLimit: this.opts.uploadLimit ?? 0,
      uploadRate: this.uploadRate,
      isStopped: () => this.#stopped,
      onUnreadable: (index, err) => this.#guard(() => this.#pieceUnreadable(index, err)),
    });
    const order = this.opts.pieceOrder;
    this.picker = new PiecePicker(this.geometry, this.have, {
      // a seed never downloads (its storage is read-only): with --partial, or pieces lost from disk, it wants nothing
      wanted: this.opts.mode === 'seed' ? new Bitfield(this.geometry.pieceCount) : this.#selection?.wanted,
      sequential: order?.sequential,
      priority: order?.firstLast ? firstLastPieces(meta, this.#selection) : undefined,
      padding: this.#padding,
      maxBytesInProgress: this.opts.pieceBufferBudget ?? PIECE_BUFFER_BUDGET,
    });
    this.opts.listener.register(meta.infoHash, (socket, handshake, leftover, reads, cipher) =>
      this.#onIncoming(socket, handshake, leftover, reads, cipher),
    );
    if (this.opts.peers) this.pool.add(this.opts.peers, true);
    if (this.opts.foundPeers) this.pool.add(this.opts.foundPeers);
    this.pool.add(pexPeers, false, true);
    if (this.opts.useTrackers !== false && meta.announceList.length > 0) this.#startAnnouncer();
    if (dht) this.#startDht(this.opts.dht!);
    this.#started = true;
    this.#lastPeerAt = Date.now();
    this.#stallFrom = Date.now();
    this.#timers.push(setInterval(() => this.#guard(() => this.#tick()), TICK_MS));
    this.#timers.push(setInterval(() => this.#guard(() => this.#rechoke()), RECHOKE_INTERVAL_MS));
    this.#timers.push(setInterval(() => this.#guard(() => this.#rotateOptimistic()), OPTIMISTIC_INTERVAL_MS));
    for (const t of this.#timers) t.unref();
    this.emit('started');
    if (this.done) this.#onComplete();
    this.#connectMore();
    this.#webSeeds.pump();
  }

  /** Add peers learnt elsewhere (tracker, command line, PEX) and dial them; returns how many were new. */
  addPeers(peers: readonly PeerAddress[], fromPex = false): number {
    const filtered = withoutSelf(peers, this.opts.listener.port);
    const added = this.pool.add(filtered, false, fromPex);
    if (added > 0) this.#connectMore();
    return added;
  }

  /** Stop: tell trackers (bounded), close peers, finish pending writes, close files. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    for (const t of this.#timers) clearInterval(t);
    this.#timers = [];
    this.opts.listener.unregister(this.meta.infoHash);
    for (const p of [...this.#peers.values()]) p.conn.close('session stopped');
    this.#dialer.close();
    this.#webSeeds.close();
    this.#dhtAnnouncer?.stop();
    const announcer = this.#announcer;
    await Promise.all([announcer ? announcer.stop(3_000).catch(() => undefined) : undefined, this.#drainWrites()]);
    this.#uploader?.cache.clear();
    if (!this.opts.hasher) await this.#hasher.close().catch(() => undefined);
    if (this.#started && this.#resumes) await this.#saveResume();
    // every piece in its file: a part file left by an earlier selective run holds nothing more
    if (this.have.complete) await this.storage?.removeSpentPartFile().catch((err: unknown) => this.emit('warning', errorMessage(err)));
    // nothing verified (no peer, a dead tracker): the files and folders this run created, never written, go
    // (the lock first, or the folder it is in would not be empty)
    await this.#unlock();
    await this.storage?.close({ discardUntouched: this.opts.mode === 'download' && !this.#verifiedData && !this.done }).catch(() => undefined);
  }

  /** Gives up the download lock of the output folder (storage/lock.ts). */
  #releaseLock: (() => Promise<void>) | undefined;

  /** This session keeps a fast-resume record (downloads only: a seed's data is never written). */
  get #resumes(): boolean {
    return this.opts.mode === 'download' && this.opts.resume !== false;
  }

  /**
   * Stopping: a record of the verified pieces for the next run, after the
   * files written are synced (it must never vouch for bytes a power cut
   * could take); once complete, none (the data is checked like any seed's).
   */
  async #saveResume(): Promise<void> {
    const { root, meta } = this.opts;
    try {
      if (this.have.complete || !this.#verifiedData || !this.storage || !this.#foundStamps) await removeResume(root, meta);
      else {
        await this.storage.sync(this.#foundUnsynced);
        await this.storage.flushStamps();
        this.#foundUnsynced.clear();
        await saveResume(root, meta, this.have, partFileName(meta), expectedStamps(this.#foundStamps, this.storage.stamps(), meta.files.length));
      }
    } catch (err) {
      this.emit('warning', `no resume record kept: ${errorMessage(err)}`);
    }
  }

  // ---- trackers ----

  #startAnnouncer(): void {
    const announcer = new Announcer({
      announceList: this.meta.announceList,
      infoHash: this.meta.infoHash,
      peerId: this.peerId,
      port: this.opts.announcePort ?? this.opts.listener.port,
      stats: () => {
        const s = this.stats();
        return { uploaded: s.uploaded, downloaded: s.downloaded, left: s.left };
      },
      numwant: 80,
    });
    announcer.on('peers', (peers) => this.addPeers(peers));
    announcer.on('warning', (message: string, url: string) => this.emit('warning', `tracker ${displayUrl(url)}: ${message}`));
    announcer.on('tracker-error', (err: unknown, url: string) => this.emit('warning', `tracker ${displayUrl(url)}: ${errorMessage(err)}`));
    announcer.on('all-failed', (failures: TrackerFailure[]) => {
      // with a web seed still in use, the download goes on without any tracker
      const webSeeding = this.#webSeeds.active;
      if (this.opts.mode === 'download' && !this.done && this.pool.size === 0 && this.#peers.size === 0 && !webSeeding) {
        const shown = failures.slice(0, 3).map((f) => `${displayUrl(f.url)}: ${errorMessage(f.error)}`);
        const more = failures.length > 3 ? ` (and ${failures.length - 3} more)` : '';
        this.#fail(new TtError('TRACKER', `every tracker failed: ${shown.join('; ')}${more}`));
      }
    });
    this.#announcer = announcer;
    announcer.start();
  }

  /** BEP 5: look the torrent up in the DHT and announce our port there, now and periodically. */
  #startDht(node: DhtNode): void {
    const announcer = new DhtAnnouncer(node, this.meta.infoHash, this.opts.announcePort ?? this.opts.listener.port);
    announcer.on('peers', (peers) => this.#guard(() => this.addPeers(peers)));
    announcer.on('lookup', (found, queried) => this.#guard(() => this.emit('dht-lookup', found, queried)));
    this.#dhtAnnouncer = announcer;
    announcer.start();
  }

  // ---- connections ----

  #connectMore(): void {
    // seeds dial too: a leecher that announced before us would otherwise wait a whole interval
    if (this.#stopped || !this.#started) return;
    const room = this.#dialer.room(this.opts.maxPeers ?? 50, this.#peers.size);
    if (room <= 0) return;
    const minAge = this.done ? SEED_DIAL_DELAY_MS : 0;
    const perIp = { limit: this.#maxPeersPerIp, busy: this.#dialer.connectionsByIp() };
    for (const candidate of this.pool.candidates(room, minAge, perIp)) {
      if (this.#hasConnectionTo(candidate.key)) {
        this.pool.markConnected(candidate.key);
        continue;
      }
      this.#dialer.dial(candidate.host, candidate.port, candidate.key);
    }
  }

  get #maxPeersPerIp(): number {
    return this.opts.maxPeersPerIp ?? DEFAULT_MAX_PEERS_PER_IP;
  }

  /** The IP of each open connection, as the per-IP limit counts it. */
  *#openIps(): Generator<string> {
    for (const p of this.#peers.values()) yield p.ip;
  }

  #hasConnectionTo(key: string): boolean {
    for (const p of this.#peers.values()) if (p.key === key || p.poolKey === key) return true;
    return false;
  }

  #onIncoming(socket: net.Socket, handshake: Handshake, leftover: Buffer, reads: ReadSink, cipher?: StreamCipher): void {
    const host = unmapIpv4(socket.remoteAddress ?? '');
    const port = socket.remotePort ?? 0;
    const maxPeers = this.opts.maxPeers ?? 50;
    if (this.#stopped || !this.#started || this.pool.isBanned(peerKey(host, port))) {
      socket.destroy();
      return;
    }
    const ip = ipOf(host);
    // a banned peer dialing us from a new port, or a newcomer from a suspect IP too soon: turned away
    // before it is a peer (nothing read from it, no handshake sent, not counted as connected)
    const admission = this.pool.admit({ ip, peerId: handshake.peerId, incoming: true });
    if (admission.refused !== undefined) {
      this.emit('peer-refused', peerKey(host, port), admission.refused);
      socket.destroy();
      return;
    }
    if ((this.#dialer.connectionsByIp().get(ip) ?? 0) >= this.#maxPeersPerIp && !this.#evictIdlePeer(ip)) {
      this.emit('peer-refused', peerKey(host, port), `more than ${this.#maxPeersPerIp} connections from one IP`);
      socket.destroy();
      return;
    }
    if (this.#peers.size >= maxPeers && !this.#evictIdlePeer()) {
      socket.destroy();
      return;
    }
    const conn = this.#attach(socket, 'incoming', host, port, undefined, reads, cipher);
    this.#peers.get(conn)!.probation = admission.probation;
    conn.start({ handshake, leftover });
  }

  /** Wrap a connected socket in a PeerConnection and route its events here. */
  #attach(
    socket: net.Socket,
    direction: 'outgoing' | 'incoming',
    host: string,
    port: number,
    poolKey: string | undefined,
    sharedReads?: ReadSink,
    cipher?: StreamCipher,
    leftover?: Buffer,
  ): PeerConnection {
    const conn = new PeerConnection({
      socket,
      sharedReads,
      cipher,
      ...(leftover ? { leftover } : {}),
      infoHash: this.meta.infoHash,
      peerId: this.peerId,
      pieceCount: this.geometry.pieceCount,
      direction,
      host,
      port,
      dht: this.#dhtAnnouncer !== undefined,
    });
    const state = new PeerState(conn, poolKey, ipOf(socket.remoteAddress ?? host));
    this.#peers.set(conn, state);
    conn.on('handshake', (h) => this.#guardPeer(state, () => this.#onHandshake(state, h)));
    conn.on('message', (m) => this.#guardPeer(state, () => this.#onMessage(state, m)));
    conn.on('close', (reason) => this.#onClose(state, reason));
    return conn;
  }

  /**
   * At the peer cap, make room for a newcomer by closing the least useful
   * peer: interested in nothing either way and silent (no payload) for a while,
   * the longest-silent first; failing that, the one that moved no block either
   * way for longest, if over USELESS_EVICT_MS, whatever it says it wants.
   * Returns false when every peer is doing something.
   * `ip`: only a peer at that IP (the newcomer's IP is at its limit).
   */
  #evictIdlePeer(ip?: string): boolean {
    const now = Date.now();
    let victim: PeerState | undefined;
    let useless: PeerState | undefined;
    for (const p of this.#peers.values()) {
      const { conn } = p;
      if (ip !== undefined && p.ip !== ip) continue;
      // the useless one that has given least in all (an honest peer waiting for a slot has history), then the longest idle
      if (now - p.lastPayloadAt >= (this.opts.uselessPeerMs ?? USELESS_EVICT_MS) && p.uploads.size === 0 && (!useless || lessUseful(p, useless))) useless = p;
      const busy = conn.peerInterested || conn.amInterested || p.outstanding.size > 0 || p.uploads.size > 0;
      if (busy || now - p.lastBlockAt < IDLE_EVICT_MS || now - p.connectedAt < IDLE_EVICT_MS) continue;
      if (!victim || p.lastBlockAt < victim.lastBlockAt) victim = p;
    }
    victim ??= useless;
    if (!victim) return false;
    victim.conn.close(victim === useless ? `no data either way for ${Math.round((now - victim.lastPayloadAt) / 1000)} s: making room for a new peer` : 'idle: making room for a new peer');
    return true;
  }

  #unchoke(state: PeerState): void {
    if (state.conn.amChoking) state.unchokedAt = Date.now();
    state.conn.unchoke();
  }

  #onHandshake(state: PeerState, h: Handshake): void {
    const { conn } = state;
    if (conn.direction === 'outgoing') {
      // an address of a banned peer (its peer id says so), or a newcomer at a suspect IP too soon (peer-pool.ts admit);
      // incoming connections were asked before they became peers (#onIncoming)
      const admission = this.pool.admit(this.#identityOf(state));
      if (admission.refused !== undefined) {
        if (admission.banned && state.poolKey) this.pool.ban(state.poolKey, admission.refused);
        conn.close(`refused: ${admission.refused}`);
        return;
      }
      state.probation = admission.probation;
    }
    // drop a second connection to the same peer id (simultaneous connects)
    for (const other of this.#peers.values()) {
      if (other !== state && other.conn.handshakeDone && other.conn.remotePeerId?.equals(h.peerId)) {
        conn.close('duplicate connection to the same peer');
        return;
      }
    }
    if (state.poolKey) this.pool.markConnected(state.poolKey);
    // counts as "a peer connected" at once, unless its IP had bans: a banned peer's extended handshake may
    // still give it away (below); if it stays, the next tick counts it
    if (this.pool.bansAt(state.ip) === 0) this.#lastPeerAt = Date.now();
    this.emit('peer-connected', state.key, conn.encrypted);
    conn.batch(() => {
      if (supportsExtensionProtocol(h.reserved)) {
        const ours = { isPrivate: this.meta.private, pex: this.#pexEnabled, metadataSize: this.meta.rawInfo.length, listenPort: this.opts.listener.port };
        conn.send({ type: 'extended', id: EXTENDED_HANDSHAKE_ID, payload: ourExtendedHandshake(ours) });
      }
      // BEP 6: a fast peer learns "all" or "none" in 5 bytes; a plain one gets a bitfield only when there is something to say
      if (conn.fastExtension && this.have.complete) conn.send({ type: 'have-all' });
      else if (conn.fastExtension && this.have.count === 0) conn.send({ type: 'have-none' });
      else if (this.have.count > 0) conn.send({ type: 'bitfield', bitfield: this.have });
      // BEP 5: a peer that runs a DHT node learns where ours listens
      if (this.#dhtAnnouncer && this.opts.dht && supportsDht(h.reserved)) conn.send({ type: 'port', port: this.opts.dht.port });
    });
  }

  #onMessage(state: PeerState, m: Message): void {
    const { conn } = state;
    switch (m.type) {
      case 'bitfield':
      case 'have-all':
        this.#peerAvailabilityAdded(state, m.type === 'have-all' ? 'all' : m.bitfield);
        break;
      case 'have':
        this.picker?.peerHave(m.index);
        this.#updateInterest(state);
        break;
      case 'unchoke':
        this.#fillRequests(state);
        break;
      case 'choke':
        if (state.outstanding.size > 0 && this.#fruitlessChoke(state)) return;
        this.#dropOutstanding(state);
        break;
      case 'interested':
        this.#maybeUnchokeNow(state);
        break;
      case 'not-interested':
        if (!conn.amChoking) {
          conn.choke();
          this.#uploader!.discard(state);
          this.#fillFreeSlot();
        }
        break;
      case 'request':
        state.lastRequestAt = Date.now();
        this.#uploader!.request(state, m.index, m.begin, m.length);
        break;
      case 'cancel':
        this.#uploader!.cancel(state, m.index, m.begin, m.length);
        break;
      case 'piece':
        this.#onPiece(state, m.index, m.begin, m.block);
        break;
      case 'reject':
        this.#onReject(state, m.index, m.begin);
        break;
      case 'port':
        // BEP 5: the peer's DHT node; asked once per connection (a ping adds it to the routing table when it answers)
        if (this.#dhtAnnouncer && this.opts.dht && !state.dhtNodeAdded) {
          state.dhtNodeAdded = true;
          this.opts.dht.addNode(conn.host, m.port);
        }
        break;
      case 'extended':
        if (m.id === OUR_UT_METADATA_ID && !this.meta.private) this.#metadataServer.onMessage(state, m.payload);
        else if (m.id === OUR_UT_PEX_ID && this.#pexEnabled) this.#onPex(state, m.payload);
        else if (m.id === EXTENDED_HANDSHAKE_ID) {
          const listen = applyPeerExtensions(state, peerExtensions(parseExtendedHandshake(m.payload), state, this.#pexEnabled));
          const banned = listen ? this.pool.banReason(peerKey(listen.host, listen.port)) : undefined;
          if (banned !== undefined) {
            // a banned peer back under a new peer id (libtorrent takes a new one for every connection): turned
            // away before it is asked for anything; its new id is remembered, and it costs nothing, so its IP
            // does not count another ban
            this.pool.ban(state.key, banned, this.#identityOf(state), false);
            conn.close(`refused: banned: ${banned} (it listens at ${peerKey(listen!.host, listen!.port)})`);
            return;
          }
          if (listen && state.probation && this.pool.isProven(this.#identityOf(state))) state.probation = false;
          // an incoming peer told us where it listens: that is its identity in
          // the pool, so we never dial a second connection to it
          if (listen) {
            this.pool.add([{ host: listen.host, port: listen.port }]);
            this.pool.markConnected(peerKey(listen.host, listen.port));
          }
        }
        break;
      default:
        break; // keep-alive, suggest, allowed-fast, have-none, unknown: nothing to do
    }
  }

  /** BEP 11, receiving: the peers it names join the pool (bounded by wire/pex.ts, per connection, and by the pool's cap). */
  #onPex(state: PeerState, payload: Buffer): void {
    // a flood or a malformed message throws ProtocolError, which closes this peer (#guardPeer);
    // a peer on probation is not taken at its word: it could name one new address of its own after another
    const learned = state.pex.accept(Date.now(), payload, (peers) => (state.probation ? 0 : this.addPeers(peers, true)));
    if (learned) this.emit('pex', state.key, learned.named, learned.fresh);
  }

  #onClose(state: PeerState, reason: string): void {
    if (!this.#peers.delete(state.conn)) return;
    const picker = this.picker;
    if (picker) {
      picker.releaseAll(state.conn);
      if (state.conn.handshakeDone && !state.conn.peerBitfield.empty) picker.peerLost(state.conn.peerBitfield);
    }
    if (this.#optimistic === state.conn) this.#optimistic = undefined;
    if (state.delivered && !this.pool.isBanned(state.key)) {
      // a piece it sent blocks of may yet fail, or verify and prove one of its blocks differed: ban the peer then, not a port
      this.#departed.delete(state.key);
      this.#departed.set(state.key, this.#identityOf(state));
      if (this.#departed.size > MAX_DEPARTED) this.#departed.delete(this.#departed.keys().next().value!);
    }
    if (state.poolKey && !this.pool.isBanned(state.poolKey)) {
      // a peer that requires encryption closes a plain handshake unanswered: the dialer redials it with MSE, once
      if (!this.#dialer.redialEncrypted(state.conn, state.poolKey, reason)) {
        // two seeds have nothing for each other: a minute, doubling, not the 5 s a handshake resets
        if (reason === BOTH_SEEDS) this.pool.markUnhelpful(state.poolKey, BOTH_SEEDS_RETRY_MS);
        else if (reason === 'connected to ourselves') this.pool.markSelf(state.poolKey);
        else this.pool.markFailed(state.poolKey, !reason.startsWith('protocol error'));
      }
    }
    if (state.conn.handshakeDone) this.emit('peer-closed', state.key, reason);
    if (!state.conn.amChoking) this.#fillFreeSlot();
    // other peers may now take the released blocks
    if (!this.#stopped) {
      for (const p of this.#peers.values()) this.#fillRequests(p);
      this.#connectMore();
    }
  }

  // ---- downloading ----

  #peerAvailabilityAdded(state: PeerState, has: Bitfield | 'all'): void {
    const picker = this.picker;
    if (!picker) return;
    if (has === 'all') picker.peerHas(state.conn.peerBitfield);
    else picker.peerHas(has);
    this.#updateInterest(state);
  }

  #updateInterest(state: PeerState): void {
    const { conn } = state;
    if (!this.picker) return;
    const wanted = !this.done && this.picker.interestingFor(conn.peerBitfield);
    if (wanted) {
      conn.interested();
      this.#fillRequests(state);
    } else conn.notInterested();
    // two seeds have nothing to say to each other (nor a seed to us once we have all we want)
    if (this.done && conn.peerBitfield.complete) conn.close(BOTH_SEEDS);
  }

  #fillRequests(state: PeerState): void {
    const { conn } = state;
    const picker = this.picker;
    if (!picker || this.#stopped || conn.closed || conn.peerChoking || !conn.amInterested || this.#readingPaused) return;
    if (this.done) return;
    const room = this.#depthFor(state) - state.outstanding.size;
    if (room <= 0) return;
    // requests queued behind unsent bytes help nobody: a peer that does not read gets no more
    if (conn.writableLength > REQUEST_BACKLOG_BYTES) return;
    const wanted = state.snubbed ? Math.min(room, 1) : room;
    const has = this.#askable(state);
    const blocks = state.probation ? this.#probationPick(picker, state, has, wanted) : picker.pick(conn, has, wanted, this.#worthCopying(), this.#hurry(state));
    if (blocks.length === 0) {
      if (!picker.interestingFor(conn.peerBitfield)) conn.notInterested();
      return;
    }
    let sent = 0;
    for (const b of blocks) {
      const wait = this.#downloadBucket.take(b.length);
      if (wait > 0) {
        picker.release(conn, b.index, b.begin);
        this.#scheduleRefill(state, wait);
        continue;
      }
      state.outstanding.add(blockKey(b.index, b.begin));
      blocks[sent++] = b;
    }
    blocks.length = sent;
    conn.requestMany(blocks); // one write of all of them
  }

  /**
   * A peer on probation (a newcomer from a suspect IP, peer-pool.ts admit)
   * is asked for blocks of one piece at a time: the one its first block
   * came from, until that piece verifies (it proves itself if it sent some
   * of it) or fails (a sole sender is banned). So it can spoil at most one
   * piece per connection.
   */
  #probationPick(picker: PiecePicker, state: PeerState, has: Bitfield, count: number): BlockRequest[] {
    const { conn } = state;
    if (state.probationPiece !== undefined && (this.have.has(state.probationPiece) || !has.has(state.probationPiece))) state.probationPiece = undefined;
    if (state.probationPiece !== undefined) return picker.pickFrom(conn, state.probationPiece, count);
    const first = picker.pick(conn, has, 1, this.#worthCopying(), this.#hurry(state));
    if (first.length === 0) return first;
    state.probationPiece = first[0]!.index;
    return first.concat(picker.pickFrom(conn, state.probationPiece, count - 1));
  }

  /** The pieces we may ask `state` for: those it has, but the ones it rejected lately (REJECTED_RETRY_MS). */
  #askable(state: PeerState): Bitfield {
    const rejected = state.rejectedPieces;
    if (!rejected || rejected.size === 0) return state.conn.peerBitfield;
    const now = Date.now();
    const has = new Bitfield(this.geometry.pieceCount, state.conn.peerBitfield.bytes);
    for (const [index, at] of rejected) {
      if (now - at > REJECTED_RETRY_MS) rejected.delete(index);
      else has.clear(index);
    }
    return has;
  }

  /** Sequential: whether `state` should copy a head block another peer holds (session/head-copy.ts). */
  #hurry(state: PeerState): Hurry | undefined {
    if (!this.opts.pieceOrder?.sequential) return undefined;
    return headHurry(state, (token) => this.#peers.get(token as PeerConnection), blockKey, Date.now());
  }

  /**
   * Endgame: a block is worth asking of one more peer only when every peer it
   * is outstanding at is slow to deliver: its queue would take more than
   * ENDGAME_COPY_AFTER_MS at its rate, or nothing came from it for that long.
   * A copy from a peer that is about to send it anyway is sent twice (libtorrent
   * and aria2c read a request from disk as soon as it arrives, so a cancel
   * rarely saves it): with 4 libtorrent seeds, copying everything at endgame
   * wasted 15-20 MiB per GiB and made the last ~1000 blocks take 60-100 ms
   * instead of 20-30.
   */
  #worthCopying(): (requesters: readonly PeerToken[]) => boolean {
    let prompt: Set<PeerToken> | undefined; // worked out once per pick, and only if it reaches endgame
    return (requesters) => {
      if (!prompt) {
        prompt = new Set();
        const now = Date.now();
        for (const p of this.#peers.values()) {
          const drainMs = (p.outstanding.size * BLOCK_SIZE * 1000) / Math.max(1, p.conn.downloadRate.rate);
          if (drainMs <= ENDGAME_COPY_AFTER_MS && now - p.lastBlockAt <= ENDGAME_COPY_AFTER_MS) prompt.add(p.conn);
        }
      }
      for (const r of requesters) if (prompt.has(r)) return false;
      return true;
    };
  }

  /** How many blocks `state` may have in flight: its rate-driven depth, its reqq, its share of the session's. */
  #depthFor(state: PeerState): number {
    let active = 0;
    for (const p of this.#peers.values()) if (!p.conn.peerChoking && p.conn.amInterested) active++;
    return Math.min(state.queueDepth, state.maxQueueDepth, depthShare(active));
  }

  /**
   * A choke while our requests wait and nothing came since the unchoke. From
   * the second in a row the peer is asked for one block at a time (as a
   * snubbed one), so its unchokes no longer fetch a queue of requests each;
   * after MAX_FRUITLESS_CHOKES it is closed (true). Libtorrent rechokes every
   * 15 s: an honest peer sends some of what it was asked in between.
   */
  #fruitlessChoke(state: PeerState): boolean {
    if (++state.fruitlessChokes >= 2) state.snubbed = true;
    if (state.fruitlessChokes < MAX_FRUITLESS_CHOKES) return false;
    state.conn.close(`protocol abuse: choked us ${MAX_FRUITLESS_CHOKES} times in a row without sending a block`);
    return true;
  }

  #refillTimers = new WeakSet<PeerState>();
  #scheduleRefill(state: PeerState, waitMs: number): void {
    if (this.#refillTimers.has(state)) return;
    this.#refillTimers.add(state);
    const t = setTimeout(() => {
      this.#refillTimers.delete(state);
      this.#guardPeer(state, () => this.#fillRequests(state));
    }, Math.min(waitMs, 1000));
    t.unref();
  }

  #dropOutstanding(state: PeerState): void {
    const picker = this.picker;
    if (!picker) return;
    for (const key of state.outstanding) {
      picker.release(state.conn, keyIndex(key), keyBegin(key));
      // a peer with the fast extension may still serve them after a choke, a snubbed one late
      rememberReleased(state, key);
    }
    state.outstanding.clear();
    // the released blocks can go to peers that are unchoking us
    for (const p of this.#peers.values()) if (p !== state) this.#fillRequests(p);
  }

  #onReject(state: PeerState, index: number, begin: number): void {
    const key = blockKey(index, begin);
    // the answer to a cancel of ours (BEP 6 rejects a cancelled request): it says nothing of a request of
    // the same block made since (a piece that failed its hash is asked for again), which stays outstanding;
    // taken for a refusal, the piece was not asked of this peer for REJECTED_RETRY_MS, and a download
    // whose only source it was stalled
    if (state.released.delete(key)) return;
    if (!state.outstanding.delete(key)) return;
    this.picker?.release(state.conn, index, begin);
    // refused while it unchokes us: it does not have that piece (any more), whatever it said; ask it for others
    if (!state.conn.peerChoking) {
      (state.rejectedPieces ??= new Map()).set(index, Date.now());
      this.#fillRequests(state);
    }
  }

  #onPiece(state: PeerState, index: number, begin: number, block: Buffer): void {
    const picker = this.picker;
    if (!picker) return;
    const key = blockKey(index, begin);
    const awaited = state.outstanding.has(key);
    if ((!awaited && !state.released.has(key)) || !this.geometry.isExpectedBlock(index, begin, block.length)) {
      // never requested, or the wrong size: ignore, but not forever
      if (++state.unrequested > MAX_UNREQUESTED_BLOCKS) state.conn.close('protocol error: too many unrequested blocks');
      return;
    }
    if (awaited) {
      state.queueDepth = grownQueueDepth(state.queueDepth, state.outstanding.size, state.maxQueueDepth);
      state.outstanding.delete(key);
    } else state.released.delete(key); // it crossed our cancel, or came after a choke: still good data
    state.lastBlockAt = Date.now();
    state.lastPayloadAt = state.lastBlockAt;
    state.acceptedBytes += block.length;
    state.blocksThisTick++;
    state.snubbed = false;
    state.fruitlessChokes = 0;
    state.delivered = true;
    this.#storeBlock(picker, state.conn, state.key, index, begin, block, state.lastBlockAt);
    // refill in batches: one write of many requests, not a syscall per block
    this.#refillAfterRead(state);
  }

  /**
   * Refill `state`'s requests once the read being handled is done: a 1 MiB
   * read holds up to 64 blocks from one peer, and refilling as soon as a
   * quarter of its queue was free wrote to its socket two or three times per
   * read (each write to a loopback peer costs ~30-50 us of our CPU: the
   * kernel delivers it and wakes the peer). A microtask runs after the read's
   * callback returns, before the next read.
   */
  #refillAfterRead(state: PeerState): void {
    this.#refillSoon.add(state);
    if (this.#refillQueued) return;
    this.#refillQueued = true;
    queueMicrotask(() => {
      this.#refillQueued = false;
      for (const s of this.#refillSoon) {
        this.#refillSoon.delete(s);
        const depth = this.#depthFor(s);
        if (depth - s.outstanding.size >= Math.max(1, depth >> 2)) this.#guardPeer(s, () => this.#fillRequests(s));
      }
    });
  }

  /** `peer: reason` of the last outgoing connection that failed (the no-peers error names it). */
  #lastDialFailure: string | undefined;

  /** Blocks wholly in BEP 47 padding files, by piece (pieces/padding.ts). */
  readonly #padding: ReadonlyMap<number, readonly number[]>;

  readonly #refillSoon = new Set<PeerState>();
  #refillQueued = false;

  /**
   * A block we asked `token` for arrived (from a peer or a web seed): the
   * first copy goes into its piece's buffer (the piece is hashed once whole)
   * and is cancelled at the other peers asked for it; a later copy is waste.
   */
  #storeBlock(picker: PiecePicker, token: PeerToken, sender: string, index: number, begin: number, block: Buffer, now: number): void {
    this.downloadRate.add(block.length);
    if (picker.received(token, index, begin) !== 'new') {
      this.#wastedBytes += block.length; // someone else's copy came first
      return;
    }
    if ((this.opts.stallTimeoutMs ?? 0) > 0) this.#lastDataBy.set(sender, now);
    let entry = this.#assembly.get(index);
    if (!entry) {
      entry = { buffer: this.#allocPiece(this.geometry.pieceSize(index)), senders: [] };
      this.#assembly.set(index, entry);
      // blocks of BEP 47 padding are never asked for (the picker counts them received): zeros
      for (const b of this.#padding.get(index) ?? []) entry.buffer.fill(0, b * BLOCK_SIZE, Math.min((b + 1) * BLOCK_SIZE, entry.buffer.length));
    }
    block.copy(entry.buffer, begin);
    entry.senders[begin / BLOCK_SIZE] = sender;
    // endgame: the same block was asked of others; cancel it there
    const key = blockKey(index, begin);
    for (const other of picker.requestersOf(index, begin)) {
      if (other === token) continue;
      const otherState = this.#peers.get(other as PeerConnection);
      if (otherState?.outstanding.delete(key)) {
        otherState.conn.cancel(index, begin, block.length);
        rememberReleased(otherState, key); // it may already be on its way
      }
      picker.release(other, index, begin); // a web seed's copy, when it comes, is waste
    }
    if (picker.isPieceComplete(index)) this.#verifyPiece(index);
  }

  // ---- web seeds (BEP 19): web-seeds.ts fetches, blocks are stored here ----

  #webSeedHost(): WebSeedHost {
    return {
      picker: () => (this.#stopped || this.done || this.#readingPaused ? undefined : this.picker),
      worthCopying: () => this.#worthCopying(),
      alive: (now) => void (this.#lastPeerAt = now),
      store: (picker, ws, b, data, now) => this.#storeBlock(picker, ws, ws.key, b.index, b.begin, data, now),
      released: () => {
        for (const p of this.#peers.values()) this.#fillRequests(p);
      },
      dropped: (url, reason) => this.emit('web-seed-dropped', url, reason),
      warning: (message) => this.emit('warning', message),
      guard: (fn) => this.#guard(fn),
    };
  }

  #verifyPiece(index: number): void {
    const entry = this.#assembly.get(index);
    if (!entry) return;
    this.#assembly.delete(index);
    this.#hashingBytes += entry.buffer.length;
    this.#updateReadPause();
    this.#hasher.hash(entry.buffer).then(
      (digest) => {
        this.#hashingBytes -= entry.buffer.length;
        this.#updateReadPause();
        if (!this.#stopped) this.#onHashed(index, entry, digest.equals(pieceHash(this.meta, index)));
      },
      (err: unknown) => {
        this.#hashingBytes -= entry.buffer.length;
        this.picker?.pieceFailed(index);
        this.emit('warning', `cannot hash piece ${index}: ${errorMessage(err)}`);
      },
    );
  }

  #onHashed(index: number, entry: { buffer: Buffer; senders: string[] }, ok: boolean): void {
    if (!ok) {
      this.#onHashFailure(index, entry.buffer, entry.senders);
      return;
    }
    // the piece verified: an earlier sender of one of its blocks whose copy differed lied
    for (const g of this.#smartBan.verified(index, entry.buffer)) this.#ban(g.key, g.reason);
    this.#proveSenders(entry.senders);
    this.#diskQueueBytes += entry.buffer.length;
    this.#updateReadPause();
    // files being measured after a piece was found unreadable (#checkFiles): our own write must not
    // extend a truncated file first, or the pieces it cut off would read as zeros (a hole) yet still be had
    const measured = this.#checkingFiles?.catch(() => undefined);
    const write = (measured ? measured.then(() => this.storage!.writePiece(index, entry.buffer)) : this.storage!.writePiece(index, entry.buffer)).then(
      () => {
        this.#diskQueueBytes -= entry.buffer.length;
        this.#updateReadPause();
        this.#onPieceWritten(index, entry.buffer);
      },
      (err: unknown) => {
        this.#diskQueueBytes -= entry.buffer.length;
        this.picker?.pieceFailed(index);
        this.#fail(err instanceof TtError ? err : new DiskError(`cannot write piece ${index}: ${errorMessage(err)}`, err));
      },
    );
    this.#pendingWrites.add(write);
    void write.finally(() => this.#pendingWrites.delete(write));
  }

  #onPieceWritten(index: number, piece: Buffer): void {
    // the invariant: hash matched AND write completed -> only now is it "had"; also while
    // stopping (a write stop() waited for): the resume record and the stop message count it
    if (this.have.set(index)) this.#countHave(index, piece.length);
    const roomMade = this.picker?.waitingForRoom === true; // the piece budget held back pieces: its verification makes room
    this.picker?.pieceVerified(index);
    this.#verifiedBytes += piece.length;
    if (this.#stopped) {
      this.#freePiece(piece);
      return;
    }
    // keep it for serving only when someone may ask for it soon; otherwise
    // its buffer is reused for the next piece (no allocation, no page faults)
    if (this.#someoneWants(index)) this.#uploader?.cache.put(index, piece);
    else this.#freePiece(piece);
    this.emit('piece-verified', index);
    for (const p of this.#peers.values()) {
      if (!p.conn.handshakeDone) continue;
      // not to a peer that has the piece (libtorrent's send_redundant_have off): it learns nothing,
      // and from 8 seeds a have per piece per seed woke each seed process 4096 times per GiB
      if (!p.conn.peerBitfield.has(index)) p.conn.have(index);
      if (p.conn.amInterested && !this.picker!.interestingFor(p.conn.peerBitfield)) p.conn.notInterested();
    }
    if (this.done) this.#onComplete();
    else if (roomMade) {
      for (const p of this.#peers.values()) this.#fillRequests(p);
      this.#webSeeds.pump();
    }
  }

  /** Counts a newly verified piece in the totals. */
  /** Whether any piece of the files' data is verified (padding-only pieces are had from the start). */
  get #verifiedData(): boolean {
    return this.have.count > this.#paddingOnly;
  }

  #countHave(index: number, bytes: number): void {
    this.#haveBytes += bytes;
    if (this.#selection && !this.#selection.wanted.has(index)) return;
    this.#wantedHave++;
    this.#wantedHaveBytes += bytes;
  }

  /** Whether a peer interested in us lacks piece `index` (then a verified piece stays in the upload read cache for it). */
  #someoneWants(index: number): boolean {
    for (const p of this.#peers.values()) if (p.conn.peerInterested && !p.conn.peerBitfield.has(index)) return true;
    return false;
  }

  #allocPiece(size: number): Buffer {
    return this.#buffers.take(size);
  }

  /** `piece` is referenced nowhere any more: its buffer serves the next piece. */
  #freePiece(piece: Buffer): void {
    this.#buffers.give(piece);
  }

  /**
   * A piece failed its hash. A sole sender is banned at once. With several
   * senders, remember each block's sender and hash (libtorrent's smart ban):
   * when the piece later verifies, whoever sent a block that differs lied.
   * As a fallback, a peer involved in many failures is banned too.
   */
  #onHashFailure(index: number, buffer: Buffer, senders: string[]): void {
    this.#failedPieces++;
    this.picker?.pieceFailed(index);
    const { contributors, guilty } = this.#smartBan.failed(index, buffer, senders);
    this.emit('piece-failed', index, contributors);
    for (const g of guilty) this.#ban(g.key, g.reason);
    this.#freePiece(buffer); // its block digests are kept; the bytes are not needed
    for (const p of this.#peers.values()) this.#fillRequests(p);
  }

  /**
   * Ban `key` (a peer's address:port as its connection shows it, or a web
   * seed's URL): the peer behind it, by its IP and peer id and its listening
   * address (PeerPool.ban), so it cannot come back from another port. Its
   * blocks stop counting as data for --stall-timeout.
   */
  #ban(key: string, reason: string): void {
    if (this.pool.isBanned(key)) return;
    this.#banned++;
    let who = this.#departed.get(key);
    for (const p of this.#peers.values()) {
      if (p.key === key) {
        who = this.#identityOf(p);
        if (p.poolKey) this.pool.ban(p.poolKey, reason);
        p.conn.close(`banned: ${reason}`);
      }
    }
    this.#departed.delete(key);
    this.pool.ban(key, reason, who);
    this.#lastDataBy.delete(key);
    this.emit('peer-banned', key, reason);
    this.#webSeeds.ban(key, reason);
  }

  /** Who is behind a connection, as far as a ban or a proof goes: its IP, peer id, listening address. */
  #identityOf(state: PeerState): PeerIdentity {
    return { ip: state.ip, peerId: state.conn.remotePeerId, listen: state.listenAddress, incoming: state.conn.direction === 'incoming' };
  }

  /**
   * A piece verified: the connected peers that sent its blocks (and were not
   * just banned for one) proved themselves; they leave probation, and are
   * let in at once if they come back (PeerPool.prove).
   */
  #proveSenders(senders: readonly (string | undefined)[]): void {
    let keys: Set<string> | undefined;
    for (const p of this.#peers.values()) {
      if (p.proven || p.conn.closed) continue;
      keys ??= new Set(senders.filter((k): k is string => k !== undefined));
      if (!keys.has(p.key)) continue;
      p.proven = true;
      p.probation = false;
      p.probationPiece = undefined;
      this.pool.prove(this.#identityOf(p));
    }
  }

  #updateReadPause(): void {
    const pause = this.#diskQueueBytes + this.#hashingBytes > DISK_QUEUE_MAX_BYTES;
    if (pause === this.#readingPaused) return;
    this.#readingPaused = pause;
    for (const p of this.#peers.values()) {
      if (pause) p.conn.pause();
      else {
        p.conn.resume();
        this.#fillRequests(p);
      }
    }
    if (!pause) this.#webSeeds.pump();
  }

  async #drainWrites(): Promise<void> {
    for (let i = 0; i < 1000 && this.#pendingWrites.size > 0; i++) await Promise.allSettled([...this.#pendingWrites]);
  }

  #onComplete(): void {
    for (const p of this.#peers.values()) {
      p.conn.notInterested();
      if (p.conn.peerBitfield.complete) p.conn.close(BOTH_SEEDS);
    }
    // once per session: done again after a lost piece was fetched again (--seed) is not a new completion
    if (this.#completeEmitted) return;
    this.#completeEmitted = true;
    // every file must still be the one tt wrote: writes into a folder deleted mid-download land in
    // unlinked files and fail nothing (storage.ts), so "complete" is said only once that is checked
    const inPlace = this.storage ? this.storage.assertFilesInPlace() : Promise.resolve();
    inPlace.then(
      () => {
        if (this.#stopped || this.#fatal) return;
        // trackers count a completed download only for the whole torrent (a file selection leaves us a leecher)
        if (this.have.complete) this.#announcer?.completed();
        this.emit('complete');
      },
      (err: unknown) => this.#fail(err instanceof TtError ? err : new DiskError(errorMessage(err))),
    );
  }

  /**
   * Serving piece `index` found it unreadable (its file truncated or
   * damaged under us; uploader.ts): it is no longer had, at once, so its
   * requests are rejected and the rest served. Then every file is looked at
   * (#checkFiles): the pieces past the end of a file that got shorter are
   * lost as well, found now rather than one request at a time (and before
   * our own writes could extend the file over holes that read as zeros).
   */
  #pieceUnreadable(index: number, err: unknown): void {
    if (this.#stopped || !this.have.has(index)) return;
    this.#unreadable.set(index, errorMessage(err));
    this.#losePieces([index]);
    this.#checkingFiles ??= this.#checkFiles().finally(() => (this.#checkingFiles = undefined));
  }

  /**
   * Look for files shorter than the torrent says, until no unreadable piece
   * is waiting to be explained: their pieces past the end are lost, with one
   * warning per file; an unreadable piece no file explains (a read error)
   * gets one warning of its own.
   */
  async #checkFiles(): Promise<void> {
    const { meta } = this;
    const pieceLength = meta.pieceLength;
    /** file -> the size it was reported at: a piece read (and found short) while this ran adds no second warning */
    const reported = new Map<number, number>();
    for (let round = 0; round < 100 && this.#unreadable.size > 0 && !this.#stopped; round++) {
      const pending = new Map(this.#unreadable);
      this.#unreadable.clear();
      let stamps: FolderStamps | undefined;
      try {
        stamps = await stampFolder(this.opts.root, meta, partFileName(meta));
      } catch {
        stamps = undefined; // the folder cannot be looked at: each piece is reported as it is
      }
      if (this.#stopped) return;
      meta.files.forEach((file, i) => {
        const size = stamps?.files[i]?.[0];
        if (size === undefined || file.padding || Number(size) >= file.length) return;
        const first = Math.floor((file.offset + Number(size)) / pieceLength);
        const last = Math.ceil((file.offset + file.length) / pieceLength) - 1;
        const lost: number[] = [];
        for (let p = first; p <= last; p++) {
          if (pending.delete(p) || this.have.has(p)) lost.push(p);
        }
        if (lost.length === 0) return;
        this.#losePieces(lost);
        if (reported.get(i) === Number(size)) return;
        reported.set(i, Number(size));
        const name = file.path.join('/'); // the reporter makes it safe for a terminal
        const which = first === last ? `piece ${first}` : `pieces ${first}..${last}`;
        this.emit('warning', `${name} is ${Number(size)} bytes, not ${file.length}: ${which} past its end can no longer be read: ${this.#lossOutcome}`);
      });
      for (const [p, why] of pending) this.emit('warning', `piece ${p} can no longer be read (${why}): ${this.#lossOutcome}`);
    }
  }

  /** What happens to a lost piece: a download fetches it again, a seed stops serving it. */
  get #lossOutcome(): string {
    return this.opts.mode === 'download' ? 'fetching again' : 'no longer served';
  }

  /**
   * `pieces` are no longer had: out of `have` and the totals (status, stats,
   * the trackers' `left`). A download (also --seed after completion) fetches
   * them again, as any missing piece, so the copy on disk ends complete; a
   * piece lost MAX_PIECE_LOSSES times stops the session with a disk error
   * (the disk does not keep what is written to it). A seed (read-only
   * storage) only stops serving them.
   */
  #losePieces(pieces: readonly number[]): void {
    const wasDone = this.done;
    let lostAgain: number | undefined;
    for (const index of pieces) {
      if (!this.have.clear(index)) continue;
      const size = this.geometry.pieceSize(index);
      this.#haveBytes -= size;
      if (!this.#selection || this.#selection.wanted.has(index)) {
        this.#wantedHave--;
        this.#wantedHaveBytes -= size;
      }
      if (this.opts.mode !== 'download') continue;
      const losses = (this.#losses.get(index) ?? 0) + 1;
      this.#losses.set(index, losses);
      if (losses >= MAX_PIECE_LOSSES) lostAgain ??= index;
      this.picker?.pieceLost(index);
    }
    if (this.opts.mode !== 'download') return;
    if (lostAgain !== undefined) {
      this.#fail(new DiskError(`piece ${lostAgain} was lost from disk ${MAX_PIECE_LOSSES} times after it was written and verified: the disk does not keep its data`));
      return;
    }
    if (wasDone && !this.done) {
      // waiting for data starts now, not when the download last completed; the seeds we parted from have it
      this.#stallFrom = Date.now();
      this.#lastPeerAt = Date.now();
      this.pool.wakeUnhelpful();
    }
    for (const p of this.#peers.values()) if (p.conn.handshakeDone) this.#updateInterest(p);
    this.#webSeeds.pump();
    this.#connectMore();
  }

  /** Resolves when every pending piece write has finished. */
  flush(): Promise<void> {
    return this.#drainWrites();
  }

  // ---- choking (the uploader serves whoever is unchoked) ----

  #unchokedCount(): number {
    let n = 0;
    for (const p of this.#peers.values()) if (!p.conn.amChoking) n++;
    return n;
  }

  #maybeUnchokeNow(state: PeerState): void {
    if (!state.conn.amChoking || this.have.count === 0) return;
    if (this.#unchokedCount() < (this.opts.uploadSlots ?? 4)) this.#unchoke(state);
  }

  #fillFreeSlot(): void {
    if (this.have.count === 0) return;
    const slots = this.opts.uploadSlots ?? 4;
    for (const p of this.#peers.values()) {
      if (this.#unchokedCount() >= slots) return;
      if (p.conn.amChoking && p.conn.peerInterested && p.conn.handshakeDone) this.#unchoke(p);
    }
  }

  #rechoke(): void {
    if (this.have.count === 0) return;
    const peers = [...this.#peers.values()].filter((p) => p.conn.handshakeDone);
    const now = Date.now();
    const candidates = peers.map((p) => ({
      key: p.conn,
      interested: p.conn.peerInterested,
      downloadRate: p.conn.downloadRate.rate,
      uploadRate: p.conn.uploadRate.rate,
      unchokedAt: p.unchokedAt,
      idleSlot: !p.conn.amChoking && now - p.unchokedAt >= RECHOKE_INTERVAL_MS && p.lastRequestAt < p.unchokedAt,
    }));
    const unchoke = chooseUnchoked(candidates, this.opts.uploadSlots ?? 4, this.done, this.#optimistic);
    for (const p of peers) {
      if (unchoke.has(p.conn)) this.#unchoke(p);
      else {
        p.conn.choke();
        this.#uploader!.discard(p);
      }
    }
  }

  #rotateOptimistic(): void {
    const peers = [...this.#peers.values()].filter((p) => p.conn.handshakeDone && p.conn.amChoking);
    const candidates = peers.map((p) => ({ key: p.conn, interested: p.conn.peerInterested, downloadRate: 0, uploadRate: 0 }));
    this.#optimistic = pickOptimistic(candidates, new Set());
  }

  // ---- housekeeping ----

  #tick(): void {
    const now = Date.now();
    const requestTimeout = this.opts.requestTimeoutMs ?? REQUEST_TIMEOUT_MS;
    for (const state of this.#peers.values()) {
      // blocks we sent count here; blocks we accepted count as they arrive (#onPiece): unrequested ones never
      const sent = state.conn.uploadRate.total;
      if (sent !== state.sentBytes) {
        state.sentBytes = sent;
        state.lastPayloadAt = now;
      }
      // request depth follows the measured rate (PERFORMANCE.md: a constant cannot fill a fast link)
      state.queueDepth = nextQueueDepth(state.queueDepth, state.blocksThisTick, state.conn.downloadRate.rate, state.maxQueueDepth);
      state.blocksThisTick = 0;
      if (state.outstanding.size > 0 && now - state.lastBlockAt > requestTimeout) {
        // a stalled peer: give its blocks to others, ask it for one at a time
        state.snubbed = true;
        state.lastBlockAt = now;
        this.#dropOutstanding(state);
      }
      this.#fillRequests(state);
    }
    if (this.#pexEnabled) sendPex(now, this.#peers);
    this.#webSeeds.pump();
    if (this.peerCount > 0 || this.#webSeeds.busy) this.#lastPeerAt = now;
    const peerTimeout = this.opts.peerTimeoutMs ?? 0;
    if (this.opts.mode === 'download' && !this.done && peerTimeout > 0 && now - this.#lastPeerAt > peerTimeout) {
      // why the last dial failed says more than the count (refused, encryption, a timeout)
      const last = this.#lastDialFailure !== undefined ? ` (last attempt: ${this.#lastDialFailure})` : '';
      this.#fail(new TtError('NO_PEERS', `no peer connected for ${Math.round(peerTimeout / 1000)} s${last}`));
      return;
    }
    const stallTimeout = this.opts.stallTimeoutMs ?? 0;
    if (this.opts.mode === 'download' && !this.done && stallTimeout > 0 && now - this.#lastDataAt(now, stallTimeout) > stallTimeout) {
      const n = this.peerCount;
      this.#fail(new TtError('NO_PEERS', `no data for ${Math.round(stallTimeout / 1000)} s (${n} peer${n === 1 ? '' : 's'} connected, none sending; --stall-timeout)`));
      return;
    }
    this.#checkFilesNow(now);
    this.#checkServedFiles(now);
    if (this.peerCount < (this.opts.maxPeers ?? 50) / 2 && !this.pool.hasWaiting()) {
      this.#announcer?.requestPeers();
      if (this.opts.mode === 'download' && !this.done) this.#dhtAnnouncer?.requestPeers();
    }
    this.#connectMore();
  }

  /**
   * Downloading: every FILES_CHECK_MS, whether every file is still the one tt
   * writes (storage.assertFilesInPlace): a folder moved or deleted under a
   * download stops it then, not when the last piece is in (writes through
   * handles held open would land in the moved files). Torrents of more than
   * FILES_CHECK_MAX files are checked at completion only (one lstat each).
   */
  #checkFilesNow(now: number): void {
    const storage = this.storage;
    if (!storage || this.opts.mode !== 'download' || this.done || this.#filesInPlaceBusy || this.meta.files.length > FILES_CHECK_MAX) return;
    if (now - this.#filesCheckedAt < (this.opts.filesCheckMs ?? FILES_CHECK_MS)) return;
    this.#filesCheckedAt = now;
    this.#filesInPlaceBusy = true;
    storage.assertFilesInPlace({ sizes: false }).then(
      () => (this.#filesInPlaceBusy = false),
      (err: unknown) => {
        this.#filesInPlaceBusy = false;
        if (!this.#stopped && !this.done) this.#fail(err instanceof TtError ? err : new DiskError(errorMessage(err)));
      },
    );
  }

  #filesCheckedAt = Date.now();
  #filesInPlaceBusy = false;

  /**
   * Seeding: every FILES_CHECK_MS, whether a file was changed in place since
   * it was checked (its size, mtime or ctime: a build rewritten under
   * `tt seed`). Its pieces are then hashed again as they are read to be
   * served, and one that no longer matches is not had any more (requests for
   * it rejected) instead of reaching leechers as a hash failure that gets
   * this seed banned. Pieces too large to read whole (served block by block)
   * are given up at once. libtorrent and Transmission serve such bytes as
   * they are. Torrents of more than FILES_CHECK_MAX files are not watched.
   */
  #checkServedFiles(now: number): void {
    const was = this.#servedStamps;
    if (!was || this.#stopped || this.#servedCheckBusy || this.meta.files.length > FILES_CHECK_MAX) return;
    if (now - this.#servedCheckedAt < (this.opts.filesCheckMs ?? FILES_CHECK_MS)) return;
    this.#servedCheckedAt = now;
    this.#servedCheckBusy = true;
    const { meta } = this;
    stampFolder(this.opts.root, meta, partFileName(meta))
      .then((found) => {
        if (this.#stopped) return;
        found.files.forEach((stamp, i) => {
          const before = was.files[i];
          if (this.#changedFiles.has(i) || before === undefined || before === null || meta.files[i]!.padding) return;
          if (sameStamp(stamp ?? null, before)) return;
          this.#changedFiles.add(i);
          const whole = meta.pieceLength * 2 <= READ_CACHE_BYTES;
          this.emit(
            'warning',
            `${meta.files[i]!.path.join('/')} changed on disk while seeding: ${whole ? 'its pieces are hashed again before they are served' : 'its pieces are no longer served'}`,
          );
          if (!whole) this.#losePieces([...filesPieces(meta, i)].filter((p) => this.have.has(p)));
        });
      })
      .catch(() => undefined) // a folder that cannot be looked at: reads will say so
      .finally(() => (this.#servedCheckBusy = false));
  }

  #servedStamps: FolderStamps | undefined;
  #servedCheckedAt = Date.now();
  #servedCheckBusy = false;
  /** Files (indices) changed on disk since `tt seed` checked them. */
  readonly #changedFiles = new Set<number>();

  #touchesChanged(index: number): boolean {
    for (const f of filesTouched(this.meta, [index])) if (this.#changedFiles.has(f)) return true;
    return false;
  }

  /** When the newest block still counted arrived (or waiting began); forgets senders quiet for longer than `stallTimeout`. */
  #lastDataAt(now: number, stallTimeout: number): number {
    let last = this.#stallFrom;
    for (const [sender, at] of this.#lastDataBy) {
      if (now - at > stallTimeout) this.#lastDataBy.delete(sender);
      else if (at > last) last = at;
    }
    return last;
  }

  #fail(err: TtError): void {
    if (this.#fatal || this.#stopped) return;
    this.#fatal = err;
    this.emit('error', err);
  }

  /** Run a timer callback; a bug there must not crash the process. */
  #guard(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.emit('warning', `internal error: ${errorMessage(err)}`);
    }
  }

  /** Run a per-peer handler; an exception closes that connection only. */
  #guardPeer(state: PeerState, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      state.conn.close(`error: ${errorMessage(err)}`);
    }
  }
}

/** The pieces file `fileIndex` of `meta` lies in (none for an empty file). */
function* filesPieces(meta: Metainfo, fileIndex: number): Generator<number> {
  const f = meta.files[fileIndex]!;
  if (f.length === 0) return;
  for (let p = Math.floor(f.offset / meta.pieceLength); p <= Math.floor((f.offset + f.length - 1) / meta.pieceLength); p++) yield p;
}
