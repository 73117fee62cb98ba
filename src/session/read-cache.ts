/**
 * A small piece-level read cache for serving blocks: the first request for a
 * piece reads the whole piece with positioned reads, later blocks of it come
 * from memory. LRU, bounded in bytes; concurrent reads of one piece share one
 * disk read. Freshly verified pieces can be inserted directly.
 */

export const READ_CACHE_BYTES = 32 * 1024 * 1024;

export class PieceReadCache {
  readonly #maxBytes: number;
  readonly #load: (index: number) => Promise<Buffer>;
  readonly #entries = new Map<number, Buffer>();
  readonly #inflight = new Map<number, Promise<Buffer>>();
  #bytes = 0;

  constructor(load: (index: number) => Promise<Buffer>, maxBytes = READ_CACHE_BYTES) {
    this.#load = load;
    this.#maxBytes = maxBytes;
  }

  async get(index: number): Promise<Buffer> {
    const hit = this.#entries.get(index);
    if (hit) {
      this.#entries.delete(index);
      this.#entries.set(index, hit); // most recently used last
      return hit;
    }
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

  put(index: number, piece: Buffer): void {
    if (piece.length > this.#maxBytes) return;
    const old = this.#entries.get(index);
    if (old) {
      this.#bytes -= old.length;
      this.#entries.delete(index);
    }
    this.#entries.set(index, piece);
    this.#bytes += piece.length;
    for (const [k, v] of this.#entries) {
      if (this.#bytes <= this.#maxBytes) break;
      this.#entries.delete(k);
      this.#bytes -= v.length;
    }
  }

  clear(): void {
    this.#entries.clear();
    this.#bytes = 0;
  }
}
