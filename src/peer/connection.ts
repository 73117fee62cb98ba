/**
 * PeerConnection: one TCP connection to one peer (BEP 3). Owns the socket, the
 * handshake, framing (via the sans-I/O wire decoder), keep-alives and timeouts,
 * and the four choke/interest flags plus the peer's bitfield. It never decides
 * what to download or whom to unchoke: it emits validated messages and the
 * session decides. Every failure closes this connection only.
 */
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { Bitfield } from '../core/bitfield.js';
import { ProtocolError, errorMessage } from '../core/errors.js';
import { RateMeter } from '../core/rate.js';
import { MessageDecoder } from '../wire/decoder.js';
import {
  encodeHave,
  encodeMessage,
  encodePieceHeader,
  encodeRequests,
  encodeCancel,
  encodeReject,
  type Message,
} from '../wire/messages.js';
import type { StreamCipher } from '../wire/mse.js';
import {
  HANDSHAKE_LENGTH,
  defaultReserved,
  encodeHandshake,
  parseHandshake,
  supportsFastExtension,
  type Handshake,
} from '../wire/handshake.js';

export const HANDSHAKE_TIMEOUT_MS = 10_000;
export const IDLE_TIMEOUT_MS = 120_000;
export const KEEP_ALIVE_INTERVAL_MS = 60_000;
const TIMER_TICK_MS = 5_000;

/** Reserved bytes we send: BEP 10 extension protocol (byte 5, 0x10), BEP 6 fast extension (byte 7, 0x04), with `dht` BEP 5 (byte 7, 0x01). */
export function ourReserved(dht = false): Buffer {
  return defaultReserved(dht);
}

/**
 * Reads into one buffer shared by every socket opened with sharedReadOptions():
 * no allocation per read, and reads of up to 1 MiB instead of the 64 KiB Node
 * allocates per 'data' event (1 GiB from one seed: 1.8 s instead of 2.2, CPU
 * -17%; 256 KiB and 4 MiB measured slower). All callbacks run on the event loop
 * one at a time and each read is consumed (messages handled, an incomplete
 * frame copied out) before the buffer is reused.
 */
export const SHARED_READ_BYTES = 1024 * 1024;

/**
 * Most bytes we let wait in a peer's socket. What we send answers what the
 * peer does (requests we make after its unchokes, rejects and blocks of its
 * requests, haves), so a peer that stops reading while it goes on provoking
 * us would otherwise grow our memory without end (a choke/unchoke flood grew
 * it 800 MB in 24 s). Uploads already wait at 1 MiB queued (uploader.ts);
 * past this the peer is closed.
 */
export const MAX_QUEUED_SEND_BYTES = 4 * 1024 * 1024;
let sharedReadBuffer: Buffer | undefined;

/** Routes a socket's reads to the PeerConnection that later wraps it. */
export interface ReadSink {
  conn: PeerConnection | undefined;
  /**
   * Copies of reads before a connection was attached: normally none for an
   * outgoing socket (Node reads only after 'connect'); an incoming one's
   * handshake, which the listener reads from here.
   */
  early?: Buffer[] | undefined;
  /** Called after each read stored in `early` (the listener waiting for a handshake). */
  onEarly?: (() => void) | undefined;
}

/**
 * Hand one read to the sink: to its connection, or (none attached yet) into
 * `early`. `transient` reads live in the shared buffer and are copied when kept.
 */
export function deliverRead(sink: ReadSink, chunk: Buffer, transient: boolean): void {
  if (sink.conn) {
    sink.conn.receiveShared(chunk);
    return;
  }
  (sink.early ??= []).push(transient ? Buffer.from(chunk) : chunk);
  sink.onEarly?.();
}

/**
 * `onread` options for net.connect() (and, through the listener, accepted
 * sockets): reads land in the shared buffer and go
 * to `sink.conn` (set by the PeerConnection given `sharedReads: sink`).
 */
export function sharedReadOptions(sink: ReadSink): { buffer: Buffer; callback: (n: number, buf: Buffer) => boolean } {
  sharedReadBuffer ??= Buffer.allocUnsafeSlow(SHARED_READ_BYTES);
  return {
    buffer: sharedReadBuffer,
    callback: (n, buf) => {
      deliverRead(sink, buf.subarray(0, n), true);
      return true;
    },
  };
}

export interface PeerConnectionOptions {
  socket: Socket;
  /** The socket was opened with sharedReadOptions(sink): its data arrives through the sink, not 'data' events. */
  sharedReads?: ReadSink | undefined;
  infoHash: Buffer;
  /** Our peer id. */
  peerId: Buffer;
  pieceCount: number;
  /**
   * The piece count is not known yet (a magnet link's metadata phase): accept
   * bitfields of any length and haves of any index, and keep none of them.
   */
  pieceCountUnknown?: boolean;
  /** outgoing: we send our handshake first; incoming: the listener already read theirs. */
  direction: 'outgoing' | 'incoming';
  /** For incoming connections: the handshake the listener read. */
  remoteHandshake?: Handshake;
  /** Incoming: bytes that arrived after the handshake. Outgoing after MSE: plaintext that followed it. */
  leftover?: Buffer;
  /** The RC4 stream an MSE handshake selected: every byte after it is decrypted on arrival and encrypted on sending. */
  cipher?: StreamCipher | undefined;
  host: string;
  port: number;
  /** We run a DHT node: say so in the handshake (BEP 5). */
  dht?: boolean | undefined;
  handshakeTimeoutMs?: number;
  idleTimeoutMs?: number;
  keepAliveIntervalMs?: number;
}

export interface PeerConnectionEvents {
  handshake: [handshake: Handshake];
  message: [message: Message];
  close: [reason: string];
}

export class PeerConnection extends EventEmitter<PeerConnectionEvents> {
  readonly host: string;
  readonly port: number;
  readonly direction: 'outgoing' | 'incoming';
  readonly socket: Socket;

  amChoking = true;
  amInterested = false;
  peerChoking = true;
  peerInterested = false;
  /** What the peer has; `all` after have-all (BEP 6) is folded into a full bitfield. */
  readonly peerBitfield: Bitfield;
  remotePeerId: Buffer | undefined;
  remoteReserved: Buffer | undefined;
  /**
   * BEP 6 is on for this connection (both set the bit): every request gets
   * exactly one answer, a piece or a reject, and a choke no longer discards
   * requests by itself.
   */
  fastExtension = false;

  /** Payload bytes of piece messages received from / sent to this peer. */
  readonly downloadRate = new RateMeter();
  readonly uploadRate = new RateMeter();

  #handshakeDone = false;
  #gotBitfield = false;
  #closed = false;
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  /** Piece indices to announce at the end of this event-loop turn. */
  #haves: number[] = [];
  /** Bytes read before this connection was attached to its socket (fed at start()). */
  #early: Buffer[] = [];
  readonly #decoder: MessageDecoder;
  readonly #cipher: StreamCipher | undefined;
  readonly #leftover: Buffer | undefined;
  readonly #infoHash: Buffer;
  readonly #dht: boolean;
  readonly #peerId: Buffer;
  #lastReceived = Date.now();
  #lastSent = Date.now();
  readonly #timer: NodeJS.Timeout;
  readonly #idleTimeoutMs: number;
  readonly #keepAliveMs: number;
  readonly #handshakeDeadline: number;

  constructor(opts: PeerConnectionOptions) {
    super();
    this.socket = opts.socket;
    this.host = opts.host;
    this.port = opts.port;
    this.direction = opts.direction;
    this.#infoHash = opts.infoHash;
    this.#dht = opts.dht === true;
    this.#peerId = opts.peerId;
    this.#cipher = opts.cipher;
    this.#leftover = opts.leftover;
    this.peerBitfield = new Bitfield(opts.pieceCount);
    this.#decoder = new MessageDecoder({ pieceCount: opts.pieceCount, lenient: opts.pieceCountUnknown === true });
    this.#idleTimeoutMs = opts.idleTimeoutMs ?? IDLE_TIMEOUT_MS;
    this.#keepAliveMs = opts.keepAliveIntervalMs ?? KEEP_ALIVE_INTERVAL_MS;
    this.#handshakeDeadline = Date.now() + (opts.handshakeTimeoutMs ?? HANDSHAKE_TIMEOUT_MS);

    this.socket.setNoDelay(true);
    if (opts.sharedReads) {
      opts.sharedReads.conn = this;
      this.#early = opts.sharedReads.early?.splice(0) ?? [];
    } else {
      this.socket.on('data', (chunk: Buffer) => this.#onData(this.#cipher ? this.#cipher.decrypt.process(chunk) : chunk));
    }
    this.socket.on('error', (err) => this.close(`socket error: ${errorMessage(err)}`));
    this.socket.on('close', () => this.close('connection closed by peer'));
    this.socket.on('end', () => this.close('connection ended by peer'));

    const tick = Math.min(TIMER_TICK_MS, opts.handshakeTimeoutMs ?? TIMER_TICK_MS);
    this.#timer = setInterval(() => this.#onTimer(), tick);
    this.#timer.unref();
  }

  /**
   * Start the exchange. Separate from the constructor so the owner can attach
   * listeners first. Outgoing: send our handshake and wait for theirs.
   * Incoming: theirs was read already; answer it and feed the leftover bytes.
   */
  start(remote?: { handshake: Handshake; leftover?: Buffer }): void {
    if (this.direction === 'outgoing') {
      this.#write(encodeHandshake(this.#infoHash, this.#peerId, ourReserved(this.#dht)));
      if (this.#leftover && this.#leftover.length > 0) this.#onData(this.#leftover);
      for (const chunk of this.#early.splice(0)) this.#onData(this.#cipher ? this.#cipher.decrypt.process(chunk) : chunk);
      return;
    }
    if (!remote) throw new Error('incoming connection needs the remote handshake');
    this.#write(encodeHandshake(this.#infoHash, this.#peerId, ourReserved(this.#dht)));
    this.#acceptHandshake(remote.handshake);
    if (!this.#closed && remote.leftover && remote.leftover.length > 0) this.#onData(remote.leftover);
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** True when the stream is RC4-encrypted (an MSE handshake selected it). */
  get encrypted(): boolean {
    return this.#cipher !== undefined;
  }

  get handshakeDone(): boolean {
    return this.#handshakeDone;
  }

  /** Bytes queued in the socket but not yet sent: used for send-side backpressure. */
  get writableLength(): number {
    return this.socket.writableLength;
  }

  get key(): string {
    return this.host.includes(':') ? `[${this.host}]:${this.port}` : `${this.host}:${this.port}`;
  }

  // ---- sending (state-changing commands are no-ops when nothing changes) ----

  choke(): void {
    if (this.amChoking) return;
    this.amChoking = true;
    this.send({ type: 'choke' });
  }

  unchoke(): void {
    if (!this.amChoking) return;
    this.amChoking = false;
    this.send({ type: 'unchoke' });
  }

  interested(): void {
    if (this.amInterested) return;
    this.amInterested = true;
    this.send({ type: 'interested' });
  }

  notInterested(): void {
    if (!this.amInterested) return;
    this.amInterested = false;
    this.send({ type: 'not-interested' });
  }

  /**
   * Announce a piece. Haves made in the same event-loop turn go out as one
   * write at its end: pieces verified together cost the peer one wake-up, not
   * one per piece. Nothing we send depends on a have arriving first.
   */
  have(index: number): void {
    if (this.#closed) return;
    this.#haves.push(index);
    if (this.#haves.length === 1) setImmediate(() => this.#flushHaves());
  }

  #flushHaves(): void {
    const haves = this.#haves;
    this.#haves = [];
    if (this.#closed || haves.length === 0) return;
    this.#write(haves.length === 1 ? encodeHave(haves[0]!) : Buffer.concat(haves.map(encodeHave)));
  }

  /** Requests, all in one write (a socket.write per request cost ~1 µs of JS each). */
  requestMany(blocks: readonly { index: number; begin: number; length: number }[]): void {
    if (blocks.length > 0) this.#write(encodeRequests(blocks));
  }

  cancel(index: number, begin: number, length: number): void {
    this.#write(encodeCancel(index, begin, length));
  }

  /** BEP 6 reject request: only on a fast-extension connection (a plain peer must close on one). */
  reject(index: number, begin: number, length: number): void {
    if (this.fastExtension) this.#write(encodeReject(index, begin, length));
  }

  /** piece: <len=0009+X><id=7><index><begin><block> — header and block written together (one writev when corked). */
  sendPiece(index: number, begin: number, block: Buffer, onSent?: () => void): void {
    if (this.#closed) {
      onSent?.();
      return;
    }
    this.socket.cork();
    this.#write(encodePieceHeader(index, begin, block.length));
    // the callback runs once the socket no longer holds `block` (written, or the write failed);
    // an encrypted stream sends a copy, so `block` is free at once but the order of callbacks stays
    this.socket.write(this.#cipher ? this.#cipher.encrypt.process(block) : block, onSent);
    this.socket.uncork();
    this.uploadRate.add(block.length);
    this.#limitQueued();
  }

  send(message: Message): void {
    this.#write(encodeMessage(message));
  }

  /** Batch several sends into one writev. */
  batch(fn: () => void): void {
    if (this.#closed) return;
    this.socket.cork();
    try {
      fn();
    } finally {
      this.socket.uncork();
    }
  }

  /** Stop reading from the socket (disk backpressure); resume() undoes it. */
  pause(): void {
    if (!this.#closed) this.socket.pause();
  }

  resume(): void {
    if (!this.#closed) this.socket.resume();
  }

  /** Close with a reason; emits 'close' exactly once. */
  close(reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    this.socket.destroy();
    this.#pending = [];
    this.emit('close', reason);
  }

  // ---- receiving ----

  /** A read in the shared buffer: handled now, and whatever stays buffered is copied out before the buffer is reused. */
  receiveShared(chunk: Buffer): void {
    if (this.#cipher) {
      this.#onData(this.#cipher.decrypt.process(chunk)); // a fresh buffer: nothing to detach
      return;
    }
    this.#onData(chunk, true);
    if (!this.#closed) this.#decoder.detach(chunk.buffer);
  }

  #write(bytes: Buffer): void {
    if (this.#closed) return;
    this.#lastSent = Date.now();
    this.socket.write(this.#cipher ? this.#cipher.encrypt.process(bytes) : bytes);
    this.#limitQueued();
  }

  #closing = false;
  /** Close a peer that lets more than MAX_QUEUED_SEND_BYTES wait: after the caller's turn, so no sender sees the peer vanish mid-loop. */
  #limitQueued(): void {
    if (this.socket.writableLength <= MAX_QUEUED_SEND_BYTES || this.#closing) return;
    this.#closing = true;
    queueMicrotask(() => this.close(`peer is not reading what we send (over ${MAX_QUEUED_SEND_BYTES >> 20} MiB queued)`));
  }

  #onData(chunk: Buffer, shared = false): void {
    if (this.#closed) return;
    this.#lastReceived = Date.now();
    try {
      if (!this.#handshakeDone) {
        this.#pending.push(shared ? Buffer.from(chunk) : chunk);
        this.#pendingBytes += chunk.length;
        if (this.#pendingBytes < HANDSHAKE_LENGTH) return;
        const all = Buffer.concat(this.#pending, this.#pendingBytes);
        this.#pending = [];
        this.#pendingBytes = 0;
        this.#acceptHandshake(parseHandshake(all.subarray(0, HANDSHAKE_LENGTH)));
        if (this.#closed) return;
        chunk = all.subarray(HANDSHAKE_LENGTH);
        if (chunk.length === 0) return;
      }
      const messages = this.#decoder.push(chunk);
      for (const m of messages) {
        if (this.#closed) return;
        this.#onMessage(m);
      }
    } catch (err) {
      // a protocol violation or a bug in a handler: this connection only
      this.close(err instanceof ProtocolError ? `protocol error: ${err.message}` : `error: ${errorMessage(err)}`);
    }
  }

  #acceptHandshake(h: Handshake): void {
    if (!h.infoHash.equals(this.#infoHash)) throw new ProtocolError('handshake for another torrent');
    if (h.peerId.equals(this.#peerId)) {
      this.close('connected to ourselves');
      return;
    }
    this.remotePeerId = h.peerId;
    this.remoteReserved = h.reserved;
    this.fastExtension = supportsFastExtension(ourReserved()) && supportsFastExtension(h.reserved);
    this.#handshakeDone = true;
    this.emit('handshake', h);
  }

  #onMessage(m: Message): void {
    switch (m.type) {
      case 'choke':
        this.peerChoking = true;
        break;
      case 'unchoke':
        this.peerChoking = false;
        break;
      case 'interested':
        this.peerInterested = true;
        break;
      case 'not-interested':
        this.peerInterested = false;
        break;
      case 'have':
        // a repeated have changes nothing; one beyond our bitfield comes only when the piece count is unknown
        if (m.index >= this.peerBitfield.size || !this.peerBitfield.set(m.index)) return;
        break;
      case 'bitfield':
      case 'have-all': {
        // Real clients (aria2) send `have`s before a late bitfield: merge it,
        // and report only the new bits, as haves, so availability is never
        // counted twice. A bitfield can add pieces, never remove them.
        const first = !this.#gotBitfield && this.peerBitfield.empty;
        this.#gotBitfield = true;
        const added: number[] = [];
        for (let i = 0; i < this.peerBitfield.size; i++) {
          if ((m.type === 'have-all' || m.bitfield.has(i)) && this.peerBitfield.set(i)) added.push(i);
        }
        if (!first) {
          for (const index of added) this.emit('message', { type: 'have', index });
          return;
        }
        break;
      }
      case 'have-none':
        this.#gotBitfield = true;
        break;
      case 'piece':
        this.downloadRate.add(m.block.length);
        break;
      default:
        break;
    }
    this.emit('message', m);
  }

  #onTimer(): void {
    if (this.#closed) return;
    const now = Date.now();
    if (!this.#handshakeDone && now > this.#handshakeDeadline) {
      this.close('handshake timeout');
      return;
    }
    if (now - this.#lastReceived > this.#idleTimeoutMs) {
      this.close('idle timeout');
      return;
    }
    if (this.#handshakeDone && now - this.#lastSent > this.#keepAliveMs) this.send({ type: 'keep-alive' });
  }
}
