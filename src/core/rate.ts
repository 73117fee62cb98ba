/**
 * Transfer-rate measurement and rate limiting: a sliding-window RateMeter and a
 * TokenBucket. Pure (time is passed in or read from a clock function).
 */

/** A meter younger than this divides by this, not by its age (no spike from the first block). */
const MIN_SPAN_S = 0.25;

/**
 * Bytes per second over a sliding window of one-second buckets; a meter
 * younger than the window divides by its age, so a peer's rate is right in
 * its first seconds (dividing 0.3 s of bytes by the whole window read 15x low).
 */
export class RateMeter {
  readonly #windowS: number;
  readonly #buckets: Float64Array;
  #bucketSecond = -1;
  #total = 0;
  readonly #now: () => number;
  readonly #createdMs: number;

  constructor(windowS = 5, now: () => number = Date.now) {
    this.#windowS = windowS;
    this.#buckets = new Float64Array(windowS);
    this.#now = now;
    this.#createdMs = now();
  }

  add(bytes: number): void {
    this.#advance();
    const i = this.#bucketSecond % this.#windowS;
    this.#buckets[i] = this.#buckets[i]! + bytes;
    this.#total += bytes;
  }

  /** Lifetime total of bytes added. */
  get total(): number {
    return this.#total;
  }

  /** Current rate in bytes per second (averaged over the window, partial current second included). */
  get rate(): number {
    this.#advance();
    let sum = 0;
    for (const b of this.#buckets) sum += b;
    const ms = this.#now();
    const elapsedInCurrent = (ms % 1000) / 1000;
    const span = Math.min(Math.max(1, this.#windowS - 1 + elapsedInCurrent), Math.max(MIN_SPAN_S, (ms - this.#createdMs) / 1000));
    return sum / span;
  }

  #advance(): void {
    const second = Math.floor(this.#now() / 1000);
    if (this.#bucketSecond < 0) {
      this.#bucketSecond = second;
      return;
    }
    const steps = Math.min(second - this.#bucketSecond, this.#windowS);
    for (let s = 1; s <= steps; s++) this.#buckets[(this.#bucketSecond + s) % this.#windowS] = 0;
    if (second > this.#bucketSecond) this.#bucketSecond = second;
  }
}

/**
 * A token bucket for --upload-limit / --download-limit. `take(n)` returns 0 when
 * n tokens were available (and takes them), else the milliseconds to wait.
 * A rate of 0 or Infinity means unlimited.
 */
export class TokenBucket {
  readonly #rate: number;
  readonly #capacity: number;
  #tokens: number;
  #last: number;
  readonly #now: () => number;

  constructor(bytesPerSecond: number, now: () => number = Date.now) {
    this.#rate = bytesPerSecond;
    // burst of a quarter second (at least one block) keeps sends smooth
    this.#capacity = Math.max(16 * 1024, bytesPerSecond / 4);
    this.#tokens = this.#capacity;
    this.#now = now;
    this.#last = now();
  }

  get unlimited(): boolean {
    return !(this.#rate > 0 && Number.isFinite(this.#rate));
  }

  take(n: number): number {
    if (this.unlimited) return 0;
    this.#refill();
    if (this.#tokens >= n || this.#tokens >= this.#capacity) {
      this.#tokens -= n; // may go negative for n > capacity: the debt is paid by waiting
      return 0;
    }
    return Math.ceil(((n - this.#tokens) / this.#rate) * 1000);
  }

  /**
   * Take `n` tokens now, into debt if need be, and return the milliseconds
   * until that debt is paid (0: none). Callers are served in the order they
   * reserve: one that was kept waiting cannot be overtaken by one that asks
   * again the moment its own wait ends (take() lets timers race for tokens:
   * under an upload limit one peer could starve every other).
   */
  reserve(n: number): number {
    if (this.unlimited) return 0;
    this.#refill();
    this.#tokens -= n;
    return this.#tokens >= 0 ? 0 : Math.ceil((-this.#tokens / this.#rate) * 1000);
  }

  #refill(): void {
    const now = this.#now();
    this.#tokens = Math.min(this.#capacity, this.#tokens + ((now - this.#last) / 1000) * this.#rate);
    this.#last = now;
  }
}
