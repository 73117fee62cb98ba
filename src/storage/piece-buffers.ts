/**
 * Piece buffers for a download: reused instead of allocated per piece (a fresh
 * 256 KiB buffer costs page faults and kernel zeroing), and page-aligned so
 * storage can write them with O_DIRECT without a bounce copy. Node cannot align
 * a Buffer, but a WebAssembly.Memory is mmap'd: views into one start on a page
 * boundary at every multiple of 4096. Owns the chunks of such memory, the free
 * list, and the registry that tells storage which buffers are aligned. Counts
 * the bytes of buffers handed out and not given back (`heldBytes`, and its
 * peak): what the session's piece budget bounds. At least one piece-length
 * buffer stays on the free list however large the piece, so a download of
 * 32 MiB pieces reuses its buffers instead of mapping a fresh one per piece
 * (the dropped ones stayed resident until a GC).
 */

/** O_DIRECT needs buffer address, file offset and length aligned to the logical block size: 4096 covers 512 and 4K devices. */
export const DIRECT_ALIGN = 4096;
const WASM_PAGE = 65_536;
/** Buffers are carved out of chunks of at least this many bytes (one mapping each). */
const CHUNK_BYTES = 4 * 1024 * 1024;
/** Wholly free chunks beyond this many free bytes are given back (dropped for the GC). */
const DEFAULT_MAX_FREE_BYTES = 16 * 1024 * 1024;

// The global exists in every Node build with WebAssembly; TypeScript declares it only with lib "dom".
declare const WebAssembly: { Memory: new (d: { initial: number; maximum: number }) => { readonly buffer: ArrayBuffer } } | undefined;

/** Backing stores known to start on a page boundary. */
const alignedStores = new WeakSet<ArrayBufferLike>();

/** True when `buf` starts on a DIRECT_ALIGN boundary in memory (known only for buffers from this module). */
export function isAligned(buf: Uint8Array): boolean {
  return buf.byteOffset % DIRECT_ALIGN === 0 && alignedStores.has(buf.buffer);
}

/** True when `buf` is a view into page-aligned memory (its byteOffset is then its address modulo the page size). */
export function inAlignedStore(buf: Uint8Array): boolean {
  return alignedStores.has(buf.buffer);
}

interface Chunk {
  readonly buffers: Buffer[];
  free: number;
}

export class PieceBuffers {
  readonly pieceLength: number;
  readonly #maxFreeBytes: number;
  readonly #perChunk: number;
  readonly #chunkOf = new WeakMap<ArrayBufferLike, Chunk>();
  readonly #free: Buffer[] = [];
  /** False once aligned memory could not be had (no WebAssembly, or mapping failed): plain buffers from then on. */
  #aligned: boolean;
  #chunks = 0;
  /** Buffers handed out by take() and not given back yet, and their bytes (now and at most). */
  readonly #out = new WeakSet<Buffer>();
  #held = 0;
  #peakHeld = 0;

  constructor(pieceLength: number, opts: { maxFreeBytes?: number; aligned?: boolean } = {}) {
    if (!Number.isSafeInteger(pieceLength) || pieceLength <= 0) throw new RangeError('pieceLength');
    this.pieceLength = pieceLength;
    this.#maxFreeBytes = opts.maxFreeBytes ?? DEFAULT_MAX_FREE_BYTES;
    this.#perChunk = Math.max(1, Math.floor(CHUNK_BYTES / pieceLength));
    this.#aligned = (opts.aligned ?? true) && pieceLength % DIRECT_ALIGN === 0 && typeof WebAssembly !== 'undefined';
  }

  /** A buffer of `size` bytes with unspecified contents. Piece-length ones are reused. */
  take(size: number): Buffer {
    const buf = this.#take(size);
    this.#out.add(buf);
    this.#held += size;
    if (this.#held > this.#peakHeld) this.#peakHeld = this.#held;
    return buf;
  }

  #take(size: number): Buffer {
    if (size !== this.pieceLength) return Buffer.allocUnsafeSlow(size);
    const reused = this.#free.pop();
    if (reused) {
      const chunk = this.#chunkOf.get(reused.buffer);
      if (chunk) chunk.free--;
      return reused;
    }
    if (this.#aligned) {
      const chunk = this.#newChunk();
      if (chunk) {
        chunk.free = chunk.buffers.length - 1;
        for (let i = chunk.buffers.length - 1; i >= 1; i--) this.#free.push(chunk.buffers[i]!);
        return chunk.buffers[0]!;
      }
    }
    return Buffer.allocUnsafeSlow(size);
  }

  /** Hand a buffer back once nothing references it any more. Other sizes, and buffers take() did not hand out, are left to the GC. */
  give(buf: Buffer): void {
    if (!this.#out.delete(buf)) return; // not ours, or given already: on the free list twice it would be handed out twice
    this.#held -= buf.length;
    if (buf.length !== this.pieceLength) return;
    const chunk = this.#chunkOf.get(buf.buffer);
    if (!chunk) {
      // a plain buffer: keep a few, as before aligned memory
      if (this.#free.length * this.pieceLength < this.#maxFreeBytes) this.#free.push(buf);
      return;
    }
    chunk.free++;
    this.#free.push(buf);
    if (chunk.free === chunk.buffers.length && this.#free.length * this.pieceLength > Math.max(this.#maxFreeBytes, this.pieceLength)) this.#dropChunk(chunk);
  }

  /** Bytes of the buffers handed out and not given back. */
  get heldBytes(): number {
    return this.#held;
  }

  /** The most `heldBytes` has been. */
  get peakHeldBytes(): number {
    return this.#peakHeld;
  }

  /** Bytes of aligned chunks currently mapped (for tests and diagnostics). */
  get chunkBytes(): number {
    return this.#chunks * this.#perChunk * this.pieceLength;
  }

  /** Buffers on the free list. */
  get freeCount(): number {
    return this.#free.length;
  }

  #newChunk(): Chunk | undefined {
    const bytes = this.#perChunk * this.pieceLength;
    const pages = Math.ceil(bytes / WASM_PAGE);
    let store: ArrayBuffer;
    try {
      store = new WebAssembly!.Memory({ initial: pages, maximum: pages }).buffer;
    } catch {
      this.#aligned = false; // out of address space or wasm disabled: plain buffers work, only unaligned
      return undefined;
    }
    alignedStores.add(store);
    const buffers: Buffer[] = [];
    for (let i = 0; i < this.#perChunk; i++) buffers.push(Buffer.from(store, i * this.pieceLength, this.pieceLength));
    const chunk: Chunk = { buffers, free: 0 };
    this.#chunkOf.set(store, chunk);
    this.#chunks++;
    return chunk;
  }

  #dropChunk(chunk: Chunk): void {
    const mine = new Set(chunk.buffers);
    let kept = 0;
    for (const b of this.#free) if (!mine.has(b)) this.#free[kept++] = b;
    this.#free.length = kept;
    this.#chunks--;
  }
}
