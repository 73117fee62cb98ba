/**
 * When storage writes a piece with O_DIRECT (bypassing the page cache) and
 * which bytes of it. Pure: the split of a write into a buffered head, an
 * aligned direct middle and a buffered tail, and the monitor that keeps direct
 * writes only while the filesystem accepts them and the disk keeps up.
 *
 * Why: copying a downloaded GiB into page cache the kernel must first allocate
 * costs 0.7-2 CPU-s on the machines this was measured on (more in a VM after
 * another program freed its memory), on two cores that the network side also
 * needs; a direct write of a whole aligned piece costs ~0.2 and leaves nothing
 * dirty for writeback. libtorrent 1.x offered the same (`disable_os_cache`).
 * On a slow disk (a hard disk seeks per random 256 KiB write) the page cache
 * wins, since writeback sorts and merges, so the monitor measures the disk's
 * throughput under direct writes and falls back when it is below
 * MIN_DIRECT_RATE.
 */
import { DIRECT_ALIGN } from './piece-buffers.js';

/** Below this measured device throughput the page cache is the better path. */
export const MIN_DIRECT_RATE = 128 * 1024 * 1024;
/** Throughput is judged over windows of this many direct bytes. */
export const DIRECT_WINDOW_BYTES = 64 * 1024 * 1024;

export interface DirectSplit {
  /** Bytes from the start written through the page cache (up to the first aligned file offset). */
  head: number;
  /** Bytes after the head written with O_DIRECT: a multiple of DIRECT_ALIGN, > 0. */
  middle: number;
}

/**
 * How to write `length` bytes that start at `bufferOffset` in an aligned store
 * to `fileOffset`, or undefined when no aligned middle exists: buffer address
 * and file offset must agree modulo DIRECT_ALIGN, and at least one whole
 * aligned block must fit. The rest after head + middle is the buffered tail.
 */
export function splitForDirect(bufferOffset: number, fileOffset: number, length: number): DirectSplit | undefined {
  if ((bufferOffset - fileOffset) % DIRECT_ALIGN !== 0) return undefined;
  const head = (DIRECT_ALIGN - (fileOffset % DIRECT_ALIGN)) % DIRECT_ALIGN;
  if (head >= length) return undefined;
  const middle = Math.floor((length - head) / DIRECT_ALIGN) * DIRECT_ALIGN;
  return middle > 0 ? { head, middle } : undefined;
}

/**
 * Keeps direct writes on while they are accepted and fast. Busy time is the
 * time at least one direct write is in flight, so concurrent writes count as
 * the device serving them together.
 */
export class DirectWriteMonitor {
  readonly #now: () => number;
  readonly #minRate: number;
  readonly #window: number;
  #off: string | undefined;
  #inFlight = 0;
  #busySince = 0;
  #busyMs = 0;
  #windowBytes = 0;
  /** Bytes written directly over the monitor's life. */
  directBytes = 0;

  constructor(opts: { now?: () => number; minRate?: number; windowBytes?: number } = {}) {
    this.#now = opts.now ?? (() => performance.now());
    this.#minRate = opts.minRate ?? MIN_DIRECT_RATE;
    this.#window = opts.windowBytes ?? DIRECT_WINDOW_BYTES;
  }

  get enabled(): boolean {
    return this.#off === undefined;
  }

  /** Why direct writes stopped, if they did. */
  get offReason(): string | undefined {
    return this.#off;
  }

  disable(reason: string): void {
    this.#off ??= reason;
  }

  /** A direct write starts. */
  begin(): void {
    if (this.#inFlight++ === 0) this.#busySince = this.#now();
  }

  /** A direct write of `bytes` ended (bytes 0 when it failed). */
  end(bytes: number): void {
    // busy all along since the last begin-from-idle or end: count it now
    const now = this.#now();
    this.#busyMs += now - this.#busySince;
    this.#busySince = now;
    this.#inFlight--;
    this.directBytes += bytes;
    this.#windowBytes += bytes;
    if (this.#windowBytes < this.#window) return;
    const rate = this.#windowBytes / (Math.max(this.#busyMs, 0.001) / 1000);
    if (rate < this.#minRate) {
      this.disable(`the disk wrote ${Math.round(rate / 1048576)} MiB/s with O_DIRECT, below ${Math.round(this.#minRate / 1048576)}: the page cache serves it better`);
    }
    this.#windowBytes = 0;
    this.#busyMs = 0;
  }
}
