/**
 * Magnet links, phase one (BEP 9): find peers (the magnet's trackers,
 * --peer, the DHT, PEX), fetch the info dictionary from those that offer
 * ut_metadata, and verify it against the info hash. Owns these short-lived
 * connections and their tracker announces; the download proper is an
 * ordinary TorrentSession started afterwards with the Metainfo made from
 * what this returns.
 *
 * Each metadata_size the peers announce is collected at once, in its own
 * assembly (MetadataAssembler), from the peers announcing it; the first whole
 * one whose SHA-1 is the info hash wins. So a peer announcing a wrong size
 * (10 MiB, answering just inside the request timeout) cannot hold the honest
 * peers back: their size is asked of them at the same time. Memory is bounded
 * by reserving each assembly's whole size: sizes are taken smallest first while
 * they fit in METADATA_BUFFER_BYTES (twice the 10 MiB limit) together; a size
 * that does not fit waits, connected, until one leaves (its peers go, or are
 * banned).
 *
 * Within a size, pieces (16 KiB) are spread over its peers, a few requests
 * each, the least busy peer first. A piece unanswered for METADATA_REASK_MS is
 * asked of another peer of that size too (first answer wins), so a silent or
 * slow peer delays nobody for long; one that rejects, closes or stays silent
 * for METADATA_REQUEST_TIMEOUT_MS is dropped. When an assembly does not hash
 * to the info hash, a lone sender is banned; with several senders nobody can
 * be blamed yet, so from then on one peer at a time must supply every piece of
 * that size (a new peer starts the assembly again), and the next failure names
 * the liar.
 *
 * Peer exchange (BEP 11), unless `pex` is false: our extended handshake
 * offers ut_pex, and the peers a ut_pex message names join the pool as heard
 * through PEX and are dialed, under the download's bounds (PexInbox in
 * pex.ts: pacing, strict codec, 200 new peers per connection; the pool's
 * per-IP and total caps). A peer without the metadata that offers ut_pex is
 * kept until its list arrives (at most METADATA_REQUEST_TIMEOUT_MS), then
 * closed. We send no ut_pex. A magnet does not say whether its torrent is
 * private, and a private one must never use PEX (BEP 27): what PEX taught is
 * used here only, to reach the metadata, and returned apart from the other
 * peers (`pexPeers`), for the caller to hand on once the metadata says the
 * torrent is not private.
 *
 * A peer that answers but cannot give the metadata (no BEP 10, no
 * ut_metadata or metadata_size, a reject, nothing offered in time) is closed
 * and not dialed again for NO_METADATA_RETRY_MS, doubling on each such visit
 * (PeerPool.markUnhelpful): its handshake must not reset the backoff to 5 s,
 * or it would be redialed, and send another ut_pex list, every few seconds
 * for as long as the phase lasts. It may get the metadata meanwhile (another
 * magnet user), so it is held back, not forgotten. A dial refused or a
 * connection lost keeps the pool's usual 5 s backoff.
 */
import { EventEmitter } from 'node:events';
import net from 'node:net';
import { displayUrl } from '../core/display-url.js';
import { TtError, errorMessage } from '../core/errors.js';
import { ipOf, withoutSelf, type PeerAddress } from '../core/peer-address.js';
import { peerKey } from '../core/ids.js';
import { MAX_METADATA_BYTES, MetadataAssembler } from '../metainfo/metadata.js';
import { PeerConnection, sharedReadOptions, type ReadSink } from '../peer/connection.js';
import { negotiateMse } from '../peer/mse-dial.js';
import { CRYPTO_PLAINTEXT, CRYPTO_RC4, type StreamCipher } from '../wire/mse.js';
import { Announcer, type AnnounceFn } from '../tracker/announcer.js';
import { DhtAnnouncer } from '../dht/announcer.js';
import type { DhtNode } from '../dht/node.js';
import type { TrackerFailure } from '../tracker/announcer.js';
import { encodeExtendedHandshake, parseExtendedHandshake } from '../wire/extension.js';
import { supportsExtensionProtocol } from '../wire/handshake.js';
import { OUR_UT_METADATA_ID, UT_METADATA, encodeMetadataReject, encodeMetadataRequest, parseMetadataMessage } from '../wire/ut-metadata.js';
import { OUR_UT_PEX_ID, UT_PEX } from '../wire/pex.js';
import { DEFAULT_MAX_PEERS_PER_IP, PeerPool } from './peer-pool.js';
import { PexInbox } from './pex.js';
import { CONNECT_TIMEOUT_MS, droppedPlainHandshake } from './dialer.js';

/** Requests in flight per peer (pieces are 16 KiB; a whole dictionary is usually a handful). */
export const METADATA_REQUESTS_PER_PEER = 8;
/** A request unanswered this long: the slow peer is dropped (its pieces were asked of others already, see METADATA_REASK_MS). */
export const METADATA_REQUEST_TIMEOUT_MS = 10_000;
/** A piece unanswered this long is asked of another peer of the same size too (the first answer is kept). */
export const METADATA_REASK_MS = 2_000;
/**
 * The sizes collected at once may add up to this much (each assembly can hold
 * its whole size): sizes are taken smallest first while they fit.
 */
export const METADATA_BUFFER_BYTES = 2 * MAX_METADATA_BYTES;
/** ut_metadata requests a peer may send us before we have metadata (each gets a reject) before it is closed. */
const MAX_REQUESTS_FROM_PEER = 64;
/** Connections (open and half-open) at once while looking for the metadata. */
export const METADATA_MAX_PEERS = 16;
/** What we tell trackers we still need: the size is unknown until the metadata arrives (libtorrent says the same). */
export const UNKNOWN_LEFT_BYTES = 16 * 1024;
/**
 * A peer without the metadata is dialed again no sooner than this, doubling on
 * each visit (libtorrent waits its min_reconnect_time, 60 s, before redialing
 * any peer, and a minute before asking one that rejected a metadata request).
 */
export const NO_METADATA_RETRY_MS = 60_000;
const TICK_MS = 1_000;

export interface MetadataFetchOptions {
  infoHash: Buffer;
  peerId: Buffer;
  /** The magnet's `tr` trackers, each its own tier. */
  trackers: readonly string[];
  /** Peers given on the command line. */
  peers: readonly PeerAddress[];
  /** Our listening port, as announced to trackers and peers. */
  port: number;
  clientName: string;
  /** Give up when the metadata has not arrived within this long (0 = never). */
  timeoutMs: number;
  maxPeers?: number;
  /** Connections one IP may have at once (default DEFAULT_MAX_PEERS_PER_IP). */
  maxPeersPerIp?: number;
  /** Tracker transport (tests). */
  announce?: AnnounceFn;
  /** Dial with RC4-encrypted MSE handshakes only. */
  requireEncryption?: boolean;
  /** Find peers through this DHT node too (the caller owns it). */
  dht?: DhtNode | undefined;
  /** Take peers from ut_pex messages (BEP 11) and dial them (default true; see the module header). */
  pex?: boolean;
}

export interface MetadataFetchResult {
  /** The verified info dictionary, exactly the bytes whose SHA-1 is the info hash. */
  readonly metadata: Buffer;
  /** Peers not heard of through PEX that completed a handshake: the download dials them first. */
  readonly peers: PeerAddress[];
  /**
   * Peers heard of through PEX and still known (not banned, not given up on),
   * whether or not they answered: for the download only if the torrent is not
   * private.
   */
  readonly pexPeers: PeerAddress[];
}

export interface MetadataFetchEvents {
  'peer-connected': [peer: string];
  'peer-closed': [peer: string, reason: string];
  'peer-banned': [peer: string, reason: string];
  /** A peer's ut_pex message named `added` peers, `fresh` of them new to us (as the session's event). */
  pex: [peer: string, added: number, fresh: number];
  /** A DHT lookup ended: `found` peers from `queried` nodes (as the session's event). */
  'dht-lookup': [found: number, queried: number];
  warning: [message: string];
}

interface FetchPeer {
  readonly conn: PeerConnection;
  readonly key: string;
  /** The extended id this peer wants ut_metadata under; 0 until its extended handshake offers it. */
  utMetadataId: number;
  /** The size it says the info dictionary has (its metadata_size). */
  metadataSize: number;
  /** Piece -> when we asked. */
  readonly outstanding: Map<number, number>;
  /** Data messages for pieces we did not ask of this peer. */
  unrequested: number;
  /** ut_metadata requests this peer sent us (we have nothing to give yet). */
  requestsSeen: number;
  readonly connectedAt: number;
  /** It offers no metadata but ut_pex: kept only until its peer list arrives. */
  waitingForPex: boolean;
  /** A ut_pex message of its was used. */
  pexTaken: boolean;
  /** Pacing and cap of the ut_pex messages it sends. */
  readonly pex: PexInbox;
  /** Closed because it cannot give the metadata: redialed only after NO_METADATA_RETRY_MS (see #onClose). */
  lacksMetadata: boolean;
}

/** The pieces of one announced metadata_size collected so far. */
interface SizeAssembly {
  readonly assembler: MetadataAssembler;
  /** When this size is distrusted: the one peer that must send every piece of this assembly. */
  exclusive: FetchPeer | undefined;
}

export class MetadataFetcher extends EventEmitter<MetadataFetchEvents> {
  readonly #opts: MetadataFetchOptions;
  readonly #pool = new PeerPool();
  readonly #peers = new Map<PeerConnection, FetchPeer>();
  readonly #sockets = new Set<net.Socket>();
  /** Connected sockets by the address they reached (a hostname, or an IP spelled oddly, counts as that address). */
  readonly #connectedIps = new Map<net.Socket, string>();
  /** Peers not heard of through PEX that completed a handshake. */
  readonly #connected = new Map<string, PeerAddress>();
  /** One assembly per metadata_size being collected (see #requestMore for which sizes). */
  readonly #assemblies = new Map<number, SizeAssembly>();
  /** Sizes whose check failed: from then on one peer at a time supplies them. */
  readonly #distrusted = new Set<number>();
  #announcer: Announcer | undefined;
  #dhtAnnouncer: DhtAnnouncer | undefined;
  #timer: NodeJS.Timeout | undefined;
  #deadline: NodeJS.Timeout | undefined;
  #done = false;
  #settle!: { resolve: (r: MetadataFetchResult) => void; reject: (e: unknown) => void };

  constructor(opts: MetadataFetchOptions) {
    super();
    this.#opts = opts;
  }

  get #pexEnabled(): boolean {
    return this.#opts.pex !== false;
  }

  /** Resolves with the verified metadata; rejects with a TtError (NO_PEERS, TRACKER). */
  run(): Promise<MetadataFetchResult> {
    const result = new Promise<MetadataFetchResult>((resolve, reject) => (this.#settle = { resolve, reject }));
    const { trackers, peers } = this.#opts;
    if (trackers.length === 0 && peers.length === 0 && !this.#opts.dht) {
      this.#finish(new TtError('USAGE', 'the magnet link names no tracker and no --peer was given: tt cannot find peers without one (or --dht)'));
      return result;
    }
    this.#addExplicit(peers);
    this.#timer = setInterval(() => this.#guard(() => this.#tick()), TICK_MS);
    if (this.#opts.timeoutMs > 0) {
      this.#deadline = setTimeout(() => {
        const tried = this.#pool.size;
        this.#finish(new TtError('NO_PEERS', `no peer sent the torrent's metadata within ${Math.round(this.#opts.timeoutMs / 1000)} s (${tried} peer${tried === 1 ? '' : 's'} known)`));
      }, this.#opts.timeoutMs);
    }
    if (trackers.length > 0) this.#startAnnouncer();
    if (this.#opts.dht) this.#startDht(this.#opts.dht);
    this.#connectMore();
    return result;
  }

  /** Peers learned elsewhere (an incoming connection's address, a late tracker): tried like the rest. */
  addPeers(peers: readonly PeerAddress[]): void {
    this.#addExplicit(peers);
    this.#guard(() => this.#connectMore());
  }

  /**
   * The user's peers (--peer, x.pe), never forgotten, except our own
   * listening address: said once and never dialed. Nobody here answers a
   * dial to ourselves with our peer id (the listener serves no torrent yet),
   * so it would fail, and be redialed, for the whole phase.
   */
  #addExplicit(peers: readonly PeerAddress[]): void {
    const others = withoutSelf(peers, this.#opts.port);
    for (const p of peers) if (!others.includes(p)) this.emit('warning', `peer ${peerKey(p.host, p.port)} is tt's own listening address: not dialed`);
    this.#pool.add(others, true);
  }

  /** Close every connection and timer (also after success); trackers get no `stopped`: the download announces next. */
  stop(): void {
    this.#done = true;
    if (this.#timer) clearInterval(this.#timer);
    if (this.#deadline) clearTimeout(this.#deadline);
    this.#announcer?.abandon();
    this.#dhtAnnouncer?.stop();
    for (const p of [...this.#peers.values()]) p.conn.close('metadata phase over');
    for (const s of this.#sockets) s.destroy();
    this.#sockets.clear();
  }

  #finish(outcome: MetadataFetchResult | TtError): void {
    if (this.#done) return;
    this.stop();
    if (outcome instanceof TtError) this.#settle.reject(outcome);
    else this.#settle.resolve(outcome);
  }

  /** Runs a callback from a timer or socket event: a bug ends the fetch with an error, never the process. */
  #guard(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.#finish(err instanceof TtError ? err : new TtError('INTERNAL', `metadata fetch: ${errorMessage(err)}`, { cause: err }));
    }
  }

  #startAnnouncer(): void {
    const announcer = new Announcer({
      announceList: this.#opts.trackers.map((t) => [t]),
      infoHash: this.#opts.infoHash,
      peerId: this.#opts.peerId,
      port: this.#opts.port,
      stats: () => ({ uploaded: 0, downloaded: 0, left: UNKNOWN_LEFT_BYTES }),
      ...(this.#opts.announce ? { announce: this.#opts.announce } : {}),
    });
    announcer.on('peers', (peers: PeerAddress[]) => {
      this.#pool.add(withoutSelf(peers, this.#opts.port));
      this.#guard(() => this.#connectMore());
    });
    announcer.on('warning', (message: string, url: string) => this.emit('warning', `tracker ${displayUrl(url)}: ${message}`));
    announcer.on('tracker-error', (err: unknown, url: string) => this.emit('warning', `tracker ${displayUrl(url)}: ${errorMessage(err)}`));
    announcer.on('all-failed', (failures: TrackerFailure[]) => {
      if (this.#pool.size > 0 || this.#peers.size > 0 || this.#dhtAnnouncer) return;
      const shown = failures.slice(0, 3).map((f) => `${displayUrl(f.url)}: ${errorMessage(f.error)}`);
      this.#finish(new TtError('TRACKER', `every tracker failed: ${shown.join('; ')}`));
    });
    this.#announcer = announcer;
    announcer.start();
  }

  /** BEP 5: get_peers for the info hash (announcing our port), again while nobody answers. */
  #startDht(node: DhtNode): void {
    const announcer = new DhtAnnouncer(node, this.#opts.infoHash, this.#opts.port);
    announcer.on('peers', (peers) =>
      this.#guard(() => {
        this.#pool.add(withoutSelf(peers, this.#opts.port));
        this.#connectMore();
      }),
    );
    announcer.on('lookup', (found, queried) => this.#guard(() => this.emit('dht-lookup', found, queried)));
    this.#dhtAnnouncer = announcer;
    announcer.start();
  }

  // ---- connections ----

  #connectMore(): void {
    if (this.#done) return;
    const room = (this.#opts.maxPeers ?? METADATA_MAX_PEERS) - this.#peers.size - this.#sockets.size;
    if (room <= 0) return;
    // every connection here is one we dialed, so the pool knows them all
    const perIp = { limit: this.#opts.maxPeersPerIp ?? DEFAULT_MAX_PEERS_PER_IP, busy: this.#pool.busyByIp() };
    for (const candidate of this.#pool.candidates(room, 0, perIp)) this.#dial(candidate.host, candidate.port, candidate.key);
  }

  #dial(host: string, port: number, key: string): void {
    this.#pool.markConnecting(key);
    const sink: ReadSink = { conn: undefined };
    const socket = net.connect({ host, port, noDelay: true, onread: sharedReadOptions(sink) });
    this.#sockets.add(socket);
    const timer = setTimeout(() => fail('connect timeout'), CONNECT_TIMEOUT_MS);
    timer.unref();
    let settled = false;
    const fail = (reason: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      this.#sockets.delete(socket);
      socket.destroy();
      this.#pool.markFailed(key);
      this.emit('peer-closed', key, `cannot connect: ${reason}`);
      setImmediate(() => this.#guard(() => this.#connectMore()));
    };
    socket.once('error', (err: NodeJS.ErrnoException) => fail(err.code ?? errorMessage(err)));
    socket.once('connect', () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      this.#sockets.delete(socket);
      socket.removeAllListeners('error');
      if (this.#done) {
        socket.destroy();
        return;
      }
      // a name, or another spelling (::ffff:127.0.0.1), that led back to our own listening address: ourselves, never dialed again
      if (withoutSelf([{ host: ipOf(socket.remoteAddress ?? host), port: socket.remotePort ?? port }], this.#opts.port).length === 0) {
        socket.destroy();
        this.#pool.markSelf(key);
        this.emit('peer-closed', key, 'connected to ourselves');
        return;
      }
      // the pool counted the address as given; count what it reached too
      const ip = ipOf(socket.remoteAddress ?? host);
      const limit = this.#opts.maxPeersPerIp ?? DEFAULT_MAX_PEERS_PER_IP;
      let sameIp = 0;
      for (const other of this.#connectedIps.values()) if (other === ip) sameIp++;
      if (sameIp >= limit) {
        socket.destroy();
        this.#pool.markFailed(key);
        this.emit('peer-closed', key, `more than ${limit} connections to ${ip}`);
        return;
      }
      this.#connectedIps.set(socket, ip);
      socket.once('close', () => this.#connectedIps.delete(socket));
      if (!this.#opts.requireEncryption && !this.#pool.get(key)?.encrypt) {
        this.#guard(() => this.#attach(socket, host, port, key, sink));
        return;
      }
      const provide = this.#opts.requireEncryption ? CRYPTO_RC4 : CRYPTO_PLAINTEXT | CRYPTO_RC4;
      this.#sockets.add(socket);
      negotiateMse(socket, sink, this.#opts.infoHash, provide).then(
        (mse) => {
          this.#sockets.delete(socket);
          if (this.#done) socket.destroy();
          else this.#guard(() => this.#attach(socket, host, port, key, sink, mse.cipher, mse.rest));
        },
        (err: unknown) => {
          this.#sockets.delete(socket);
          socket.destroy();
          this.#pool.markFailed(key);
          this.emit('peer-closed', key, `encrypted handshake failed: ${errorMessage(err)}`);
        },
      );
    });
  }

  #attach(socket: net.Socket, host: string, port: number, key: string, sink: ReadSink, cipher?: StreamCipher, leftover?: Buffer): void {
    const conn = new PeerConnection({
      socket,
      sharedReads: sink,
      cipher,
      ...(leftover ? { leftover } : {}),
      infoHash: this.#opts.infoHash,
      peerId: this.#opts.peerId,
      pieceCount: 0,
      pieceCountUnknown: true,
      direction: 'outgoing',
      host,
      port,
    });
    const peer: FetchPeer = {
      conn,
      key,
      utMetadataId: 0,
      metadataSize: 0,
      outstanding: new Map(),
      unrequested: 0,
      requestsSeen: 0,
      connectedAt: Date.now(),
      waitingForPex: false,
      pexTaken: false,
      pex: new PexInbox(),
      lacksMetadata: false,
    };
    this.#peers.set(conn, peer);
    conn.on('handshake', (h) => {
      this.#pool.markConnected(key);
      if (!this.#pool.get(key)?.fromPex) this.#connected.set(key, { host, port });
      this.emit('peer-connected', key);
      if (!supportsExtensionProtocol(h.reserved)) {
        this.#dropWithoutMetadata(peer, 'peer does not support the extension protocol (BEP 10), so it cannot send metadata');
        return;
      }
      const m = { [UT_METADATA]: OUR_UT_METADATA_ID, ...(this.#pexEnabled ? { [UT_PEX]: OUR_UT_PEX_ID } : {}) };
      conn.send({ type: 'extended', id: 0, payload: encodeExtendedHandshake({ m, v: this.#opts.clientName, p: this.#opts.port }) });
    });
    // exceptions thrown here are caught by the connection and close it ('protocol error: ...')
    conn.on('message', (m) => {
      if (m.type !== 'extended' || this.#done) return;
      if (m.id === 0) this.#onExtendedHandshake(peer, m.payload);
      else if (m.id === OUR_UT_METADATA_ID) this.#onMetadataMessage(peer, m.payload);
      else if (m.id === OUR_UT_PEX_ID && this.#pexEnabled) this.#onPex(peer, m.payload);
    });
    conn.on('close', (reason) => this.#guard(() => this.#onClose(peer, reason)));
    conn.start();
  }

  #onClose(peer: FetchPeer, reason: string): void {
    if (!this.#peers.delete(peer.conn)) return;
    peer.outstanding.clear();
    if (this.#done) return;
    const droppedPlain = droppedPlainHandshake(peer.conn, reason); // every connection here is one we dialed
    if (this.#pool.isBanned(peer.key)) {
      // stays banned
    } else if (peer.lacksMetadata) {
      this.#pool.markUnhelpful(peer.key, NO_METADATA_RETRY_MS);
    } else if (!(droppedPlain && this.#pool.retryEncrypted(peer.key))) {
      this.#pool.markFailed(peer.key, !reason.startsWith('protocol error'));
    }
    this.emit('peer-closed', peer.key, reason);
    this.#requestMore();
    this.#connectMore();
  }

  /**
   * Close a peer that cannot give the metadata now; #onClose holds it back
   * for NO_METADATA_RETRY_MS. One that never finished its handshake (the
   * tick's timeout) merely failed, as a dial does: the usual backoff.
   */
  #dropWithoutMetadata(peer: FetchPeer, reason: string): void {
    peer.lacksMetadata = peer.conn.handshakeDone;
    peer.conn.close(reason);
  }

  // ---- the exchange ----

  #onExtendedHandshake(peer: FetchPeer, payload: Buffer): void {
    const ext = parseExtendedHandshake(payload);
    const id = ext.m.get(UT_METADATA) ?? 0;
    if (id === 0 || ext.metadataSize === undefined) {
      // it may still know peers that have the metadata: wait for its list (or the tick's timeout)
      if (this.#pexEnabled && (ext.m.get(UT_PEX) ?? 0) !== 0 && !peer.pexTaken) peer.waitingForPex = true;
      else this.#dropWithoutMetadata(peer, 'peer does not offer the metadata (no ut_metadata / metadata_size)');
      return;
    }
    peer.waitingForPex = false;
    // each size is collected on its own (see #requestMore); what was asked under another size is void
    if (peer.metadataSize !== ext.metadataSize) peer.outstanding.clear();
    peer.utMetadataId = id;
    peer.metadataSize = ext.metadataSize;
    this.#requestMore();
  }

  #onMetadataMessage(peer: FetchPeer, payload: Buffer): void {
    const msg = parseMetadataMessage(payload);
    if (!msg) return;
    if (msg.type === 'request') {
      // we have nothing to give yet; a peer asking again and again is not worth a slot
      if (++peer.requestsSeen > MAX_REQUESTS_FROM_PEER) peer.conn.close('protocol error: endless metadata requests to a peer without metadata');
      else if (peer.utMetadataId !== 0) peer.conn.send({ type: 'extended', id: peer.utMetadataId, payload: encodeMetadataReject(msg.piece) });
      return;
    }
    const assembly = this.#assemblies.get(peer.metadataSize);
    if (!peer.outstanding.delete(msg.piece) || !assembly) {
      // unasked-for pieces are ignored, but a peer cannot make us parse them forever
      if (++peer.unrequested > METADATA_REQUESTS_PER_PEER * 4) peer.conn.close('protocol error: metadata pieces we did not ask for');
      return;
    }
    if (msg.type === 'reject') {
      this.#dropWithoutMetadata(peer, 'peer rejected a metadata request');
      return;
    }
    const assembler = assembly.assembler;
    if (msg.totalSize !== assembler.size) {
      peer.conn.close(`protocol error: metadata total_size ${msg.totalSize}, expected ${assembler.size}`);
      return;
    }
    // a piece asked of two peers (METADATA_REASK_MS): the second copy is not kept
    assembler.add(msg.piece, msg.data, peer.key);
    if (assembler.complete) this.#verify(assembly);
    else this.#requestMore();
  }

  /**
   * BEP 11, receiving only: the peers it names join the pool as PEX peers and
   * are dialed (bounds in PexInbox; a malformed message or a flood throws,
   * which closes the peer). A peer without the metadata has then given all
   * it can.
   */
  #onPex(peer: FetchPeer, payload: Buffer): void {
    const learned = peer.pex.accept(Date.now(), payload, (peers) => this.#pool.add(withoutSelf(peers, this.#opts.port), false, true));
    if (!learned) return;
    peer.pexTaken = true;
    this.emit('pex', peer.key, learned.named, learned.fresh);
    if (peer.waitingForPex) this.#dropWithoutMetadata(peer, 'peer does not offer the metadata (its ut_pex peer list taken)');
    this.#connectMore();
  }

  #verify(assembly: SizeAssembly): void {
    const size = assembly.assembler.size;
    const result = assembly.assembler.verify();
    if (result.ok) {
      const peers = [...this.#connected].filter(([key]) => !this.#pool.isBanned(key)).map(([, address]) => address);
      this.#finish({ metadata: result.metadata, peers, pexPeers: this.#pool.fromPex() });
      return;
    }
    // this size's in-flight answers belong to the failed round; the next peer asked alone starts it again
    this.#assemblies.delete(size);
    this.#distrusted.add(size);
    for (const p of this.#peers.values()) if (p.metadataSize === size) p.outstanding.clear();
    if (result.sources.length === 1) {
      const liar = result.sources[0]!;
      this.#pool.ban(liar, 'sent metadata that does not match the info hash');
      this.emit('peer-banned', liar, 'sent metadata that does not match the info hash');
      for (const p of [...this.#peers.values()]) if (p.key === liar) p.conn.close('banned: bad metadata');
    } else {
      this.emit('warning', `metadata from ${result.sources.length} peers did not match the info hash; asking one peer at a time`);
    }
    this.#requestMore();
  }

  /**
   * Choose the sizes to collect and hand out their missing pieces. Every size
   * a connected peer announces is collected, smallest first while their sum
   * fits in METADATA_BUFFER_BYTES; an assembly whose size no connected peer
   * offers any more, or that no longer fits, is dropped (never checked, so
   * nobody is blamed for it). Within a size: spread over its peers, or all to
   * one once a check of that size has failed.
   */
  #requestMore(): void {
    if (this.#done) return;
    const bySize = new Map<number, FetchPeer[]>();
    for (const p of this.#peers.values()) {
      if (p.utMetadataId === 0 || p.conn.closed) continue;
      const list = bySize.get(p.metadataSize);
      if (list) list.push(p);
      else bySize.set(p.metadataSize, [p]);
    }
    const chosen = new Set<number>();
    let room = METADATA_BUFFER_BYTES;
    for (const size of [...bySize.keys()].sort((a, b) => a - b)) {
      if (size > room) break;
      chosen.add(size);
      room -= size;
    }
    for (const size of [...this.#assemblies.keys()]) {
      if (chosen.has(size)) continue;
      this.#assemblies.delete(size);
      for (const p of bySize.get(size) ?? []) p.outstanding.clear();
    }
    const now = Date.now();
    for (const size of chosen) {
      let peers = bySize.get(size)!;
      let assembly = this.#assemblies.get(size);
      if (this.#distrusted.has(size)) {
        if (!assembly?.exclusive || !peers.includes(assembly.exclusive)) {
          // a new peer alone: what another sent is dropped, so a failure has exactly one sender
          for (const p of peers) p.outstanding.clear();
          assembly = { assembler: new MetadataAssembler(this.#opts.infoHash, size), exclusive: peers[0] };
          this.#assemblies.set(size, assembly);
        }
        peers = [assembly.exclusive!];
      } else if (!assembly) {
        assembly = { assembler: new MetadataAssembler(this.#opts.infoHash, size), exclusive: undefined };
        this.#assemblies.set(size, assembly);
      }
      this.#askFor(assembly.assembler, peers, now);
    }
  }

  /**
   * Ask `peers` (all of one size) for the pieces `assembler` lacks: a piece
   * nobody was asked for, or whose latest request is METADATA_REASK_MS old,
   * goes to the least busy peer with room that was not asked for it yet.
   */
  #askFor(assembler: MetadataAssembler, peers: FetchPeer[], now: number): void {
    for (const piece of assembler.missing()) {
      let latest = -Infinity;
      for (const p of peers) latest = Math.max(latest, p.outstanding.get(piece) ?? -Infinity);
      if (now - latest < METADATA_REASK_MS) continue;
      let best: FetchPeer | undefined;
      for (const p of peers) {
        if (p.outstanding.size >= METADATA_REQUESTS_PER_PEER || p.outstanding.has(piece)) continue;
        if (!best || p.outstanding.size < best.outstanding.size) best = p;
      }
      if (!best) {
        if (peers.every((p) => p.outstanding.size >= METADATA_REQUESTS_PER_PEER)) return;
        continue;
      }
      best.outstanding.set(piece, now);
      best.conn.send({ type: 'extended', id: best.utMetadataId, payload: encodeMetadataRequest(piece) });
    }
  }

  #tick(): void {
    const now = Date.now();
    for (const p of [...this.#peers.values()]) {
      if (p.utMetadataId === 0 && now - p.connectedAt > METADATA_REQUEST_TIMEOUT_MS) {
        this.#dropWithoutMetadata(p, p.waitingForPex ? 'no metadata offered, and no ut_pex peer list in time' : 'no metadata offered in time');
        continue;
      }
      for (const askedAt of p.outstanding.values()) {
        if (now - askedAt > METADATA_REQUEST_TIMEOUT_MS) {
          p.conn.close('metadata request timeout');
          break;
        }
      }
    }
    // pieces held too long by one peer are asked of another
    this.#requestMore();
    this.#announcer?.requestPeers();
    if (this.#peers.size === 0 && this.#sockets.size === 0) this.#dhtAnnouncer?.requestPeers();
    this.#connectMore();
  }
}

/** Fetch and verify a magnet link's metadata (see MetadataFetcher). */
export function fetchMetadata(opts: MetadataFetchOptions, observe?: (f: MetadataFetcher) => void): Promise<MetadataFetchResult> {
  const fetcher = new MetadataFetcher(opts);
  observe?.(fetcher);
  return fetcher.run();
}
