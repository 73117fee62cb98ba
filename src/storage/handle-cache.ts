/**
 * A bounded cache of open FileHandles for storage.ts and check.ts: at most
 * `capacity` descriptors held (open, being opened or being closed) whatever
 * the torrent looks like. A caller leases a handle for one operation and
 * gives it back; idle handles stay open (least recently used closed first)
 * so the next operation on that file need not reopen it. When every handle
 * is in use, a caller for a new file waits (first come, first served) until
 * one is given back; a caller for a file already open shares its handle and
 * never waits. No deadlock as long as no caller holds a lease while waiting
 * for another: storage.ts and check.ts take one at a time, the one exception
 * (adopting a file while the part file is leased) needs a capacity of 2,
 * the minimum.
 *
 * The bound comes from the process's real descriptor limit (openFileLimit:
 * RLIMIT_NOFILE from /proc/self/limits, which Node raises to the hard limit
 * at start), a quarter of it for files and the rest for sockets and Node's
 * own (handleBudget). Should open() still fail with EMFILE/ENFILE (other
 * caches in this process, sockets, another program's use of the system
 * table), the cache closes the idle handles of every cache in the process,
 * lowers its own capacity to what it holds, and retries; with nothing idle
 * anywhere it waits for one of its handles to be given back (or a moment,
 * for sockets to close), for at most EMFILE_RETRY_MS in all. No BEP.
 */
import { readFileSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';

/** A handle leased for one operation; give it back with release() (once). */
export interface Lease {
  readonly fh: FileHandle;
  release(): void;
}

/** The fewest handles a cache holds: adopting a file reads the part file while writing it. */
export const MIN_HANDLES = 2;

/** How long an open that keeps failing with EMFILE/ENFILE is retried before the error is reported. */
export const EMFILE_RETRY_MS = 20_000;

/** The descriptor limit assumed where /proc/self/limits cannot be read (Linux's usual soft limit). */
const FALLBACK_LIMIT = 1024;

let cachedLimit: number | undefined;

/** This process's limit on open descriptors (the soft RLIMIT_NOFILE); Infinity when unlimited. */
export function openFileLimit(): number {
  cachedLimit ??= parseOpenFileLimit(readLimits()) ?? FALLBACK_LIMIT;
  return cachedLimit;
}

function readLimits(): string {
  try {
    return readFileSync('/proc/self/limits', 'latin1');
  } catch {
    return '';
  }
}

/** The soft "Max open files" of a /proc/<pid>/limits text; undefined when absent. */
export function parseOpenFileLimit(limits: string): number | undefined {
  const m = /^Max open files\s+(\d+|unlimited)\s/m.exec(limits);
  if (!m) return undefined;
  return m[1] === 'unlimited' ? Infinity : Number(m[1]);
}

/**
 * File handles one cache may hold under descriptor limit `limit`: a quarter
 * of it (at least MIN_HANDLES), at most `wanted`. The other three quarters
 * are for sockets (50 peers, 64 handshakes, dials, trackers, web seeds, the
 * DHT), the hash workers and Node's own descriptors.
 */
export function handleBudget(wanted: number, limit: number = openFileLimit()): number {
  return Math.max(MIN_HANDLES, Math.min(wanted, Math.floor(limit / 4)));
}

interface Entry<K> {
  readonly key: K;
  readonly handle: Promise<FileHandle>;
  /** Set once the open succeeded. */
  fh: FileHandle | undefined;
  users: number;
  /** Taken out of the map (discarded, evicted, or the cache closed): closed once its last lease is given back. */
  gone: boolean;
  /** Its close has begun. */
  closing: boolean;
  /** Resolves once its descriptor is closed, or its open failed. */
  readonly done: Promise<void>;
  readonly markDone: () => void;
}

interface Waiter<K> {
  readonly key: K;
  readonly open: () => Promise<FileHandle>;
  /** Leases `entry` (synchronously: it counts as used from here on) for the waiting caller. */
  readonly grant: (entry: Entry<K>) => void;
  readonly reject: (err: unknown) => void;
}

/** Every cache not yet closed: an EMFILE in one closes idle handles in all. */
const live = new Set<HandleCache<unknown>>();

/** Closes every idle handle of every cache in this process; resolves with how many once they are closed. */
export async function relieveDescriptorPressure(): Promise<number> {
  const closing = [...live].map((c) => c.closeIdle());
  return (await Promise.all(closing)).reduce((a, b) => a + b, 0);
}

/** Whether `err` says the process (EMFILE) or the system (ENFILE) has no descriptor left; also inside a DiskError. */
function isDescriptorExhaustion(err: unknown): boolean {
  const e = err as { code?: unknown; syscallCode?: unknown } | undefined;
  return [e?.code, e?.syscallCode].some((code) => code === 'EMFILE' || code === 'ENFILE');
}

export interface HandleCacheOptions<K> {
  /** The error an acquire after close() rejects with. */
  closedError?: () => Error;
  /** How long an open failing with EMFILE/ENFILE is retried (default EMFILE_RETRY_MS). */
  emfileRetryMs?: number;
  /**
   * Runs with a handle about to be closed (no lease on it any more), before its close; what it
   * throws is ignored. storage.ts takes a written file's stamp there, through the handle that
   * wrote it, instead of opening the file again later.
   */
  beforeClose?: (key: K, fh: FileHandle) => Promise<void>;
}

export class HandleCache<K> {
  #capacity: number;
  /** Handles by key, least recently used first. */
  readonly #entries = new Map<K, Entry<K>>();
  /** Descriptors held: open, being opened, or taken out and not yet closed. */
  #held = 0;
  /** Closes under way (their room comes when they complete). */
  #closing = 0;
  readonly #waiters: Waiter<K>[] = [];
  /** Called (once each) when a handle is given back or closed: what an EMFILE retry waits for. */
  #onFreed: (() => void)[] = [];
  #closed = false;
  readonly #closedError: () => Error;
  readonly #emfileRetryMs: number;
  readonly #beforeClose: ((key: K, fh: FileHandle) => Promise<void>) | undefined;

  constructor(capacity: number, opts: HandleCacheOptions<K> = {}) {
    this.#capacity = Math.max(MIN_HANDLES, capacity);
    this.#closedError = opts.closedError ?? (() => new Error('handle cache is closed'));
    this.#emfileRetryMs = opts.emfileRetryMs ?? EMFILE_RETRY_MS;
    this.#beforeClose = opts.beforeClose;
    live.add(this as HandleCache<unknown>);
  }

  /** The most descriptors this cache holds at once (lowered after an EMFILE). */
  get capacity(): number {
    return this.#capacity;
  }

  /** Descriptors held now: open, being opened or being closed. */
  get held(): number {
    return this.#held;
  }

  /** Whether `key` has a handle (open or being opened). */
  has(key: K): boolean {
    return this.#entries.has(key);
  }

  /** The keys that have a handle. */
  keys(): K[] {
    return [...this.#entries.keys()];
  }

  /**
   * A lease on `key`'s handle, opening it with `open` when there is none. Waits
   * while every descriptor is in use. Rejects with open's error (nothing is
   * cached then), or closedError after close().
   */
  acquire(key: K, open: () => Promise<FileHandle>): Promise<Lease> {
    if (this.#closed) return Promise.reject(this.#closedError());
    const known = this.#entries.get(key);
    if (known) return this.#lease(known);
    if (this.#waiters.length === 0 && this.#makeRoom()) return this.#lease(this.#add(key, open));
    return new Promise<Lease>((resolve, reject) => {
      this.#waiters.push({ key, open, grant: (entry) => resolve(this.#lease(entry)), reject });
      this.#serveWaiters(); // or, at capacity, start closing an idle handle for this caller too
    });
  }

  /**
   * Stop using `key`'s open handle: later acquires open a new one, and this
   * one is closed once its last lease is given back; resolves then. A handle
   * still being opened is left alone (its opener decides what it opens).
   */
  discard(key: K): Promise<void> {
    const entry = this.#entries.get(key);
    if (!entry || entry.fh === undefined) return Promise.resolve();
    this.#takeOut(entry);
    return entry.done;
  }

  /** Closes every idle handle; resolves with how many once they are closed. */
  async closeIdle(): Promise<number> {
    const idle = [...this.#entries.values()].filter((e) => e.users === 0 && e.fh !== undefined);
    for (const e of idle) this.#takeOut(e);
    await Promise.all(idle.map((e) => e.done));
    return idle.length;
  }

  /** Closes every handle once its open and its leases are done; waiting acquires reject. Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    live.delete(this as HandleCache<unknown>);
    for (const w of this.#waiters.splice(0)) w.reject(this.#closedError());
    const all = [...this.#entries.values()];
    for (const e of all) this.#takeOut(e);
    await Promise.all(all.map((e) => e.done));
  }

  /** Counts a user of `entry` now, and resolves with its lease once it is open. */
  #lease(entry: Entry<K>): Promise<Lease> {
    entry.users++;
    if (!entry.gone) {
      // most recently used last
      this.#entries.delete(entry.key);
      this.#entries.set(entry.key, entry);
    }
    return entry.handle.then(
      (fh) => {
        let released = false;
        return {
          fh,
          release: () => {
            if (released) return;
            released = true;
            this.#release(entry);
          },
        };
      },
      (err: unknown) => {
        entry.users--;
        throw err;
      },
    );
  }

  #release(entry: Entry<K>): void {
    entry.users--;
    if (entry.users > 0) return;
    // someone waits for a descriptor, or we hold more than we may (capacity lowered): this one goes
    if (this.#held > this.#capacity || this.#waiters.length > 0) this.#takeOut(entry);
    else if (entry.gone) this.#closeIfIdle(entry);
    this.#freed();
  }

  #add(key: K, open: () => Promise<FileHandle>): Entry<K> {
    this.#held++;
    let markDone!: () => void;
    const done = new Promise<void>((resolve) => (markDone = resolve));
    const entry: Entry<K> = { key, handle: this.#open(open), fh: undefined, users: 0, gone: false, closing: false, done, markDone };
    this.#entries.set(key, entry);
    entry.handle.then(
      (fh) => {
        entry.fh = fh;
        if (entry.gone) this.#closeIfIdle(entry); // taken out (close()) while it opened
      },
      () => {
        // nothing to close: the descriptor was never ours
        if (this.#entries.get(key) === entry) this.#entries.delete(key);
        entry.gone = true;
        this.#held--;
        entry.markDone();
        this.#freed();
      },
    );
    return entry;
  }

  /** open(), retried on EMFILE/ENFILE after closing idle handles (ours and other caches'), or once a handle is given back. */
  async #open(open: () => Promise<FileHandle>): Promise<FileHandle> {
    const deadline = Date.now() + this.#emfileRetryMs;
    for (let pause = 10; ; pause = Math.min(pause * 2, 500)) {
      try {
        return await open();
      } catch (err) {
        if (!isDescriptorExhaustion(err) || this.#closed || Date.now() >= deadline) throw err;
        // the process cannot give us more: from now on hold no more than we do besides this open
        this.#capacity = Math.max(MIN_HANDLES, Math.min(this.#capacity, this.#held - 1));
        if ((await relieveDescriptorPressure()) === 0) await this.#nextFreed(pause);
      }
    }
  }

  /** Resolves when a handle is given back or closed here, or after `ms`. */
  #nextFreed(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      timer.unref();
      this.#onFreed.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /** A descriptor was freed or a handle given back: wake EMFILE retries, hand room to waiters. */
  #freed(): void {
    const wake = this.#onFreed;
    this.#onFreed = [];
    for (const w of wake) w();
    this.#serveWaiters();
  }

  #serveWaiters(): void {
    while (this.#waiters.length > 0 && !this.#closed) {
      const w = this.#waiters[0]!;
      const known = this.#entries.get(w.key);
      if (known) {
        this.#waiters.shift();
        w.grant(known);
        continue;
      }
      if (!this.#makeRoom(this.#waiters.length)) return;
      this.#waiters.shift();
      w.grant(this.#add(w.key, w.open));
    }
  }

  /**
   * Whether one more descriptor may be opened now. At capacity, starts closing
   * least recently used idle handles, as many as `wanted` (the callers waiting)
   * beyond the closes already under way: the room comes as they complete. One
   * close at a time made a torrent of 20,000 small files open each file only
   * after the previous file's close had come back from the file-system pool.
   */
  #makeRoom(wanted = 1): boolean {
    if (this.#held < this.#capacity) return true;
    for (const e of this.#entries.values()) {
      if (this.#closing >= wanted) break;
      if (e.users > 0 || e.fh === undefined) continue;
      this.#takeOut(e);
    }
    return false;
  }

  /** Out of the map: no new lease gets it; closed once idle. */
  #takeOut(entry: Entry<K>): void {
    if (entry.gone) return;
    entry.gone = true;
    if (this.#entries.get(entry.key) === entry) this.#entries.delete(entry.key);
    this.#closeIfIdle(entry);
  }

  #closeIfIdle(entry: Entry<K>): void {
    if (entry.users > 0 || entry.fh === undefined || entry.closing) return;
    entry.closing = true;
    this.#closing++;
    const fh = entry.fh;
    const before = this.#beforeClose;
    void (before ? before(entry.key, fh).catch(() => undefined) : Promise.resolve())
      .then(() => fh.close())
      .catch(() => undefined)
      .then(() => {
        this.#closing--;
        this.#held--;
        entry.markDone();
        this.#freed();
      });
  }
}
