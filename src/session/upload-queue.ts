/**
 * One peer's queued requests to us (BEP 3 `request` / `cancel`), served in
 * order. Owns the queue and its cancel index: a cancel costs O(1) however
 * long the queue is (with a 2000-deep reqq a linear search per cancel let a
 * peer spend our main thread cheaply). Cancelled entries are skipped when
 * they reach the head and compacted away when they pile up. Pure.
 */

export interface UploadRequest {
  readonly index: number;
  readonly begin: number;
  readonly length: number;
  cancelled: boolean;
}

/** index < 2^24 and begin < 2^29 (pieces are at most 512 MiB): the key is exact. */
function requestKey(index: number, begin: number): number {
  return index * 2 ** 29 + begin;
}

export class UploadQueue {
  #queue: UploadRequest[] = [];
  /** Live (not cancelled) requests by block, oldest first. */
  readonly #byKey = new Map<number, UploadRequest[]>();
  #live = 0;

  /** Requests still to serve (cancelled ones not counted). */
  get size(): number {
    return this.#live;
  }

  /** Entries held, cancelled ones not yet dropped included (for tests and diagnostics). */
  get held(): number {
    return this.#queue.length;
  }

  push(index: number, begin: number, length: number): void {
    const req: UploadRequest = { index, begin, length, cancelled: false };
    this.#queue.push(req);
    const key = requestKey(index, begin);
    const same = this.#byKey.get(key);
    if (same) same.push(req);
    else this.#byKey.set(key, [req]);
    this.#live++;
    // cancelled entries behind a stalled head: drop them before they outgrow the live ones
    if (this.#queue.length > 2 * this.#live + 64) this.#queue = this.#queue.filter((r) => !r.cancelled);
  }

  /** Cancel the oldest matching request; false when none was queued. */
  cancel(index: number, begin: number, length: number): boolean {
    const key = requestKey(index, begin);
    const same = this.#byKey.get(key);
    const i = same ? same.findIndex((r) => r.length === length) : -1;
    if (i < 0) return false;
    const [req] = same!.splice(i, 1);
    if (same!.length === 0) this.#byKey.delete(key);
    req!.cancelled = true;
    this.#live--;
    return true;
  }

  /** The next request to serve, if any (cancelled ones at the head are dropped). */
  peek(): UploadRequest | undefined {
    let head = this.#queue[0];
    while (head?.cancelled) {
      this.#queue.shift();
      head = this.#queue[0];
    }
    return head;
  }

  /** Remove and return the next request to serve. */
  shift(): UploadRequest | undefined {
    const req = this.peek();
    if (!req) return undefined;
    this.#queue.shift();
    const key = requestKey(req.index, req.begin);
    const same = this.#byKey.get(key)!;
    same.splice(same.indexOf(req), 1); // FIFO per block: index 0 in practice
    if (same.length === 0) this.#byKey.delete(key);
    this.#live--;
    return req;
  }

  /** The live requests in order (for read-ahead). */
  *pending(): IterableIterator<UploadRequest> {
    for (const r of this.#queue) if (!r.cancelled) yield r;
  }

  clear(): void {
    this.#queue = [];
    this.#byKey.clear();
    this.#live = 0;
  }
}
