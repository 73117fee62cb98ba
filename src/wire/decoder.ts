/**
 * Streaming, sans-I/O peer wire decoder (BEP 3 framing, BEP 6 and BEP 10 messages).
 * Owns every limit a single frame can break (HARDENING.md "peer wire"): the length
 * cap before buffering, exact sizes per message type, bitfield shape, index ranges,
 * request length. It does not know what was requested or negotiated: that is peer/.
 */
import { Bitfield } from '../core/bitfield.js';
import { ProtocolError } from '../core/errors.js';
import { BLOCK_SIZE } from '../core/geometry.js';
import { LENGTH_PREFIX_BYTES, MessageId, type Message } from './messages.js';

/** Default cap on a frame's length prefix: a 1 MiB payload plus the largest header. */
export const DEFAULT_MAX_MESSAGE_LENGTH = 1024 * 1024 + 13;

export interface DecoderLimits {
  /** Pieces in the torrent: bounds every index and fixes the bitfield's size. */
  pieceCount: number;
  /** Largest accepted length prefix in bytes (default DEFAULT_MAX_MESSAGE_LENGTH). */
  maxMessageLength?: number;
  /** Largest accepted block in a piece message, in bytes (default BLOCK_SIZE: tt never asks for more). */
  maxBlockLength?: number;
  /**
   * Tests only (a scripted peer observing what tt sends): no index, bitfield-size,
   * request-length or block-length checks; a bitfield takes its size from its bytes.
   * Frame sizes per message type are still enforced.
   */
  lenient?: boolean;
}

/** Exact length prefix of each fixed-size message, by id. */
const FIXED_LENGTH = new Map<number, number>([
  [MessageId.choke, 1],
  [MessageId.unchoke, 1],
  [MessageId.interested, 1],
  [MessageId.notInterested, 1],
  [MessageId.have, 5],
  [MessageId.request, 13],
  [MessageId.cancel, 13],
  [MessageId.port, 3],
  [MessageId.suggest, 5],
  [MessageId.haveAll, 1],
  [MessageId.haveNone, 1],
  [MessageId.reject, 13],
  [MessageId.allowedFast, 5],
]);

/** Smallest piece frame: id, index, begin and at least one byte of block. */
const MIN_PIECE_LENGTH = 1 + 4 + 4 + 1;
/** Smallest extended frame: id and the extended message id. */
const MIN_EXTENDED_LENGTH = 2;

/** Chunks up to this size are copied into a shared tail store instead of listed one by one. */
const SMALL_CHUNK_BYTES = 1024;
/** Size of each tail store that small chunks are gathered into. */
const TAIL_STORE_BYTES = 16 * 1024;

const MESSAGE_NAMES = new Map<number, string>(Object.entries(MessageId).map(([name, id]) => [id, name]));

/**
 * The ProtocolError push() throws. `decoded` holds the valid messages that came
 * before the bad frame in the same push (a connection about to close may ignore
 * them; a test peer records them).
 */
export class FrameError extends ProtocolError {
  readonly decoded: readonly Message[];
  constructor(message: string, decoded: readonly Message[]) {
    super(message);
    this.decoded = decoded;
    this.name = 'FrameError';
  }
}

/**
 * Turns a byte stream into whole messages. `push` returns every message completed
 * by the chunk and keeps the rest; any violation throws a FrameError (a
 * ProtocolError) and leaves the decoder failed: every later push throws a
 * ProtocolError with the same message.
 *
 * Buffering is linear: chunks are kept in a list (chunks of 1 KiB or less are
 * gathered into one store) and a frame is copied once only when it spans chunks.
 * A piece block or extended payload lying wholly inside one pushed chunk is
 * returned as a view into that chunk (keeping the chunk alive), so a caller must
 * not reuse or overwrite a chunk buffer after pushing it.
 */
export class MessageDecoder {
  readonly #pieceCount: number;
  readonly #maxMessageLength: number;
  readonly #maxBlockLength: number;
  readonly #lenient: boolean;
  #chunks: Buffer[] = [];
  /** Read offset into #chunks[0]. */
  #head = 0;
  #buffered = 0;
  /** Length prefix of the frame being assembled, or -1 before its 4 bytes arrive. */
  #frameLength = -1;
  /** Whether the frame's id byte has been checked against its length. */
  #idChecked = false;
  #error: ProtocolError | undefined;
  /** Where small chunks are gathered: bytes [0, #tailEnd) are in use and never rewritten. */
  #tailStore: Buffer | undefined;
  #tailEnd = 0;
  /** The listed view that the next small chunk may extend, if it is still the last chunk. */
  #tailView: Buffer | undefined;

  constructor(limits: DecoderLimits) {
    if (!Number.isSafeInteger(limits.pieceCount) || limits.pieceCount < 0) throw new RangeError('pieceCount');
    this.#pieceCount = limits.pieceCount;
    this.#maxMessageLength = limits.maxMessageLength ?? DEFAULT_MAX_MESSAGE_LENGTH;
    this.#maxBlockLength = limits.maxBlockLength ?? BLOCK_SIZE;
    this.#lenient = limits.lenient ?? false;
  }

  /**
   * Copy every still-buffered byte that lies in `store` into memory the decoder
   * owns. Call it after the messages from a push() were handled when the
   * pushed chunk was a view into a buffer that is about to be reused (socket
   * reads into one shared buffer): at most the one frame still incomplete.
   */
  detach(store: ArrayBufferLike): void {
    for (let i = 0; i < this.#chunks.length; i++) {
      const chunk = this.#chunks[i]!;
      if (chunk.buffer !== store) continue;
      const from = i === 0 ? this.#head : 0;
      const owned = Buffer.allocUnsafe(chunk.length - from);
      chunk.copy(owned, 0, from);
      this.#chunks[i] = owned;
      if (i === 0) this.#head = 0;
    }
  }

  /** Bytes received but not yet returned as messages. */
  get bufferedBytes(): number {
    return this.#buffered;
  }

  push(chunk: Buffer): Message[] {
    if (this.#error) throw this.#error;
    this.#append(chunk);
    const out: Message[] = [];
    try {
      for (;;) {
        if (this.#frameLength < 0) {
          if (this.#buffered < LENGTH_PREFIX_BYTES) break;
          const length = this.#peekUInt32();
          if (length > this.#maxMessageLength) {
            throw new ProtocolError(`message too long: length prefix ${length} exceeds ${this.#maxMessageLength}`);
          }
          this.#frameLength = length;
          this.#idChecked = false;
        }
        const length = this.#frameLength;
        if (length === 0) {
          this.#skip(LENGTH_PREFIX_BYTES);
          this.#frameLength = -1;
          out.push({ type: 'keep-alive' });
          continue;
        }
        if (!this.#idChecked) {
          if (this.#buffered < LENGTH_PREFIX_BYTES + 1) break;
          this.#checkSize(this.#peekByte(LENGTH_PREFIX_BYTES), length);
          this.#idChecked = true;
        }
        if (this.#buffered < LENGTH_PREFIX_BYTES + length) break;
        this.#skip(LENGTH_PREFIX_BYTES);
        const body = this.#take(length);
        this.#frameLength = -1;
        out.push(this.#parse(body));
      }
    } catch (err) {
      this.#error = new ProtocolError(err instanceof Error ? err.message : String(err));
      this.#chunks = [];
      this.#buffered = 0;
      throw new FrameError(this.#error.message, out);
    }
    return out;
  }

  /**
   * Lists a chunk without copying it, except that small chunks are gathered into a
   * tail store: a peer trickling tiny segments must not cost one list entry (and
   * one Buffer object) per byte while a large frame is assembled.
   */
  #append(chunk: Buffer): void {
    const n = chunk.length;
    if (n === 0) return;
    this.#buffered += n;
    if (n > SMALL_CHUNK_BYTES) {
      this.#chunks.push(chunk);
      return;
    }
    let store = this.#tailStore;
    const last = this.#chunks.length - 1;
    if (store !== undefined && this.#tailEnd + n <= store.length) {
      chunk.copy(store, this.#tailEnd);
      const view = this.#tailView;
      if (last >= 0 && view !== undefined && this.#chunks[last] === view) {
        // extend the listed view in place; its start (and so #head) is unchanged
        this.#tailView = store.subarray(view.byteOffset - store.byteOffset, this.#tailEnd + n);
        this.#chunks[last] = this.#tailView;
      } else {
        this.#tailView = store.subarray(this.#tailEnd, this.#tailEnd + n);
        this.#chunks.push(this.#tailView);
      }
      this.#tailEnd += n;
      return;
    }
    store = Buffer.allocUnsafeSlow(TAIL_STORE_BYTES);
    chunk.copy(store, 0);
    this.#tailStore = store;
    this.#tailEnd = n;
    this.#tailView = store.subarray(0, n);
    this.#chunks.push(this.#tailView);
  }

  /** Checks a frame's length against its id as soon as the id byte is seen, before buffering its payload. */
  #checkSize(id: number, length: number): void {
    const fixed = FIXED_LENGTH.get(id);
    if (fixed !== undefined) {
      if (length !== fixed) throw new ProtocolError(`${MESSAGE_NAMES.get(id)} message has length ${length}, expected ${fixed}`);
      return;
    }
    switch (id) {
      case MessageId.bitfield: {
        const expected = 1 + Math.ceil(this.#pieceCount / 8);
        if (!this.#lenient && length !== expected) {
          throw new ProtocolError(`bitfield is ${length - 1} bytes, expected ${expected - 1}`);
        }
        return;
      }
      case MessageId.piece:
        if (length < MIN_PIECE_LENGTH) throw new ProtocolError(`piece message too short (${length})`);
        if (!this.#lenient && length - 9 > this.#maxBlockLength) {
          throw new ProtocolError(`piece block too long: ${length - 9} bytes`);
        }
        return;
      case MessageId.extended:
        if (length < MIN_EXTENDED_LENGTH) throw new ProtocolError('extended message without an extended id');
        return;
      default:
        return; // unknown ids: skipped whole, bounded by maxMessageLength
    }
  }

  #checkIndex(index: number, what: string): number {
    if (!this.#lenient && index >= this.#pieceCount) {
      throw new ProtocolError(`${what} index ${index} out of range (${this.#pieceCount} pieces)`);
    }
    return index;
  }

  /** <index><begin><length> after the id of request / cancel / reject. */
  #blockRef(body: Buffer, what: string): { index: number; begin: number; length: number } {
    return { index: this.#checkIndex(body.readUInt32BE(1), what), begin: body.readUInt32BE(5), length: body.readUInt32BE(9) };
  }

  /** Parses a whole frame body (id byte first); its size was already checked. */
  #parse(body: Buffer): Message {
    const id = body[0]!;
    switch (id) {
      case MessageId.choke:
        return { type: 'choke' };
      case MessageId.unchoke:
        return { type: 'unchoke' };
      case MessageId.interested:
        return { type: 'interested' };
      case MessageId.notInterested:
        return { type: 'not-interested' };
      case MessageId.have:
        return { type: 'have', index: this.#checkIndex(body.readUInt32BE(1), 'have') };
      case MessageId.bitfield: {
        const bytes = body.subarray(1);
        const size = this.#lenient ? bytes.length * 8 : this.#pieceCount;
        return { type: 'bitfield', bitfield: Bitfield.fromWire(bytes, size) };
      }
      case MessageId.request: {
        const ref = this.#blockRef(body, 'request');
        if (!this.#lenient) {
          if (ref.length === 0) throw new ProtocolError('request of zero length');
          if (ref.length > BLOCK_SIZE) throw new ProtocolError(`request too long: ${ref.length} bytes`);
        }
        return { type: 'request', ...ref };
      }
      case MessageId.piece: {
        const index = this.#checkIndex(body.readUInt32BE(1), 'piece');
        return { type: 'piece', index, begin: body.readUInt32BE(5), block: body.subarray(9) };
      }
      case MessageId.cancel:
        return { type: 'cancel', ...this.#blockRef(body, 'cancel') };
      case MessageId.port:
        return { type: 'port', port: body.readUInt16BE(1) };
      case MessageId.suggest:
        return { type: 'suggest', index: this.#checkIndex(body.readUInt32BE(1), 'suggest') };
      case MessageId.haveAll:
        return { type: 'have-all' };
      case MessageId.haveNone:
        return { type: 'have-none' };
      case MessageId.reject:
        return { type: 'reject', ...this.#blockRef(body, 'reject') };
      case MessageId.allowedFast:
        return { type: 'allowed-fast', index: this.#checkIndex(body.readUInt32BE(1), 'allowed-fast') };
      case MessageId.extended:
        return { type: 'extended', id: body[1]!, payload: body.subarray(2) };
      default:
        return { type: 'unknown', id, length: body.length - 1 };
    }
  }

  /** The big-endian uint32 at the read position (the caller checked 4 bytes are buffered). */
  #peekUInt32(): number {
    const first = this.#chunks[0]!;
    if (first.length - this.#head >= 4) return first.readUInt32BE(this.#head);
    return ((this.#peekByte(0) << 24) | (this.#peekByte(1) << 16) | (this.#peekByte(2) << 8) | this.#peekByte(3)) >>> 0;
  }

  /** The byte `at` bytes past the read position (the caller checked it is buffered). */
  #peekByte(at: number): number {
    let offset = this.#head + at;
    for (const chunk of this.#chunks) {
      if (offset < chunk.length) return chunk[offset]!;
      offset -= chunk.length;
    }
    throw new RangeError('peek past buffered bytes');
  }

  /** Drops `n` buffered bytes. */
  #skip(n: number): void {
    this.#buffered -= n;
    while (n > 0) {
      const first = this.#chunks[0]!;
      const available = first.length - this.#head;
      if (n < available) {
        this.#head += n;
        return;
      }
      n -= available;
      this.#chunks.shift();
      this.#head = 0;
    }
  }

  /** Removes and returns `n` buffered bytes: a view when they lie in one chunk, else one copy. */
  #take(n: number): Buffer {
    const first = this.#chunks[0]!;
    if (first.length - this.#head >= n) {
      const view = first.subarray(this.#head, this.#head + n);
      this.#skip(n);
      return view;
    }
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const chunk = this.#chunks[0]!;
      const count = Math.min(chunk.length - this.#head, n - filled);
      chunk.copy(out, filled, this.#head, this.#head + count);
      filled += count;
      this.#skip(count);
    }
    return out;
  }
}
