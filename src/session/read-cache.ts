/**
 * A small piece-level read cache for serving blocks: the first request for a
 * piece reads the whole piece with positioned reads, later blocks of it come
 * from memory. LRU, bounded in bytes; concurrent reads of one piece share one
 * disk read. Freshly verified pieces can be inserted directly.
 *
 * Buffers are recycled, not left to the GC: a fresh 256 KiB buffer costs page
 * faults and zeroing in the kernel on every read. A buffer handed to a socket
 * is pinned until the socket is done with it; an evicted buffer goes back to
 * `release` only once nothing pins it, so a recycled buffer is never one a
 * pending send still points into.
 */

export const READ_CACHE_BYTES = 32 * 1024 * 1024;

export class PieceReadCache {
  readonly #maxBytes: number;
  readonly #load: (index: number) => Promise<Buffer>;
  readonly #release: (buffer: Buffer) => void;
  readonly #entries = new Map<number, Buffer>();
  readonly #inflight = new Map<number, Promise<Buffer>>();
  /** Sends in flight per buffer (cached or evicted). */
  readonly #pins = new Map<Buffer, number>();
  /** Evicted buffers that are still pinned: released when their last pin goes. */
  readonly #retired = new Set<Buffer>();
  #bytes = 0;

  /**
   * @param load reads a whole piece (the buffer it returns becomes the cache's)
   * @param release takes back a buffer the cache no longer references
   */
  constructor(load: (index: number) => Promise<Buffer>, maxBytes = READ_CACHE_BYTES, release: (buffer: Buffer) => void = () => undefined) {
    this.#load = load;
    this.#maxBytes = maxBytes;
    this.#release = release;
  }

  /** The piece, from memory or disk. Valid until the caller's next await unless pinned. */
  async get(index: number): Promise<Buffer> {
    const hit = this.peek(index);
    if (hit) return hit;
    let pending = this.#inflight.get(index);
    if (!pending) {
      pending = this.#load(index).finally(() => this.#inflight.delete(index));
      this.#inflight.set(index, pending);
      const piece = await pending;
      this.put(index, piece);
      return piece;
    }
    return pending;
  }

  /** The piece if it is in memory now (no disk read), refreshing its recency. */
  peek(index: number): Buffer | undefined {
    const hit = this.#entries.get(index);
    if (hit) {
      this.#entries.delete(index);
      this.#entries.set(index, hit);
    }
    return hit;
  }

  /** Start reading a piece into the cache without waiting for it (read-ahead). */
  prefetch(index: number): void {
    if (this.#entries.has(index) || this.#inflight.has(index)) return;
    this.get(index).catch(() => undefined);
  }

  /** Take ownership of `piece` as the cached copy of `index`. */
  put(index: number, piece: Buffer): void {
    if (piece.length > this.#maxBytes) {
      this.#evicted(piece);
      return;
    }
    const old = this.#entries.get(index);
    if (old) {
      this.#bytes -= old.length;
      this.#entries.delete(index);
      if (old !== piece) this.#evicted(old);
    }
    this.#entries.set(index, piece);
    this.#bytes += piece.length;
    for (const [k, v] of this.#entries) {
      if (this.#bytes <= this.#maxBytes) break;
      this.#entries.delete(k);
      this.#bytes -= v.length;
      this.#evicted(v);
    }
  }

  /** Keep `buffer` from being recycled until unpin() (a send still points into it). */
  pin(buffer: Buffer): void {
    this.#pins.set(buffer, (this.#pins.get(buffer) ?? 0) + 1);
  }

  unpin(buffer: Buffer): void {
    const n = (this.#pins.get(buffer) ?? 0) - 1;
    if (n > 0) {
      this.#pins.set(buffer, n);
      return;
    }
    this.#pins.delete(buffer);
    if (this.#retired.delete(buffer)) this.#release(buffer);
  }

  /** Drop every entry (pinned buffers are released when their sends finish). */
  clear(): void {
    const all = [...this.#entries.values()];
    this.#entries.clear();
    this.#bytes = 0;
    for (const b of all) this.#evicted(b);
  }

  /** Bytes held by cached entries (not counting retired, still-pinned buffers). */
  get bytes(): number {
    return this.#bytes;
  }

  #evicted(buffer: Buffer): void {
    if (this.#pins.has(buffer)) this.#retired.add(buffer);
    else this.#release(buffer);
  }
}
