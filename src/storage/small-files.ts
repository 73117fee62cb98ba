/**
 * Reads and writes small files on one worker thread, each file's whole
 * sequence synchronous there. A write: open (no symlink as the last
 * component), fstat (the file storage.ts created or found, one link only),
 * /proc/self/fd (reached without a symlink, inside the download folder), the
 * write, fstat for its stamp, close. A read: open read-only (no symlink as
 * the last component), fstat when storage.ts knows the file's identity,
 * /proc/self/fd, the read, close. It also creates files (open O_EXCL, fstat,
 * close), a folder's at once. Owns the worker (plain JS evaluated from a
 * string, as hasher.ts's) and its messages; storage.ts decides what goes
 * there and does anything else itself.
 *
 * Why: through libuv's pool every call costs tt's main thread about 20 µs on
 * this project's VMs, whatever it does, and a small file needs four to six;
 * 20,000 files of 4-5 KB took 3.5-4.5 s to write that way, the main thread
 * busy the whole time, and serving them cost 1.5 s of it per pass. The same
 * sequence, synchronous on a worker, many files per message: 0.5-0.6 s
 * (measured alone: 1.5-1.8 s through the pool). This is what libtorrent's
 * disk threads do.
 *
 * The worker never decides anything but "done" (for a read: how many bytes
 * the file had): a file that is not exactly what is expected (not a regular
 * file, another inode, other hard links, a path through a symlink, no name
 * left after the write) or any error at all is answered "again", and the
 * caller (storage.ts, check.ts) reads or writes it the usual way, which says
 * precisely what is wrong (or copies a hard-linked file first). A positioned
 * write of the same bytes may be done twice; never into another file. Bytes
 * are read from the expected file only.
 */
import { Worker } from 'node:worker_threads';

/** One file's share of a read or write: `length` bytes at `position` of the file, at `offset` of the message's buffer. */
interface SmallFileJob {
  /** The file's path (absolute, under the download folder). */
  readonly path: string;
  /** What /proc/self/fd must name: the path under realpath(root). */
  readonly expected: string;
  readonly position: number;
  readonly offset: number;
  readonly length: number;
}

/** A write: the file must be the one storage.ts knows (decimal strings of BigInt dev and ino), with one link. */
export interface SmallWrite extends SmallFileJob {
  readonly dev: string;
  readonly ino: string;
}

/** A read: the file must have this identity when storage.ts knows it. */
export interface SmallRead extends SmallFileJob {
  readonly dev?: string;
  readonly ino?: string;
}

/** Files this long or shorter are read and written on the small-file worker. */
export const SMALL_FILE_BYTES = 128 * 1024;

/** Done: the file's stamp after the write (size, mtimeNs, ctimeNs, ino), as resume.ts's Stamp. Else undefined: write it again the usual way. */
export type SmallWriteResult = readonly [string, string, string, string] | undefined;

/** What lstat said of a path (never following a symlink). */
export interface StatResult {
  readonly isFile: boolean;
  readonly dev: bigint;
  readonly ino: bigint;
  readonly size: bigint;
  readonly mtimeNs: bigint;
  readonly ctimeNs: bigint;
}

/** The lstat of each path asked, by its index: undefined for any error (missing included: the caller asks lstat itself, which says which). */
export interface StatTable {
  at(index: number): StatResult | undefined;
}

/** The worker's answer: 6 slots per path (regular file 1 or 0, or -1: an error; dev, ino, size, mtimeNs, ctimeNs), ~50 bytes a file however many. */
function statTable(slots: BigInt64Array | undefined): StatTable {
  return {
    at(index: number): StatResult | undefined {
      const k = 6 * index;
      if (slots === undefined || k + 6 > slots.length || slots[k]! < 0n) return undefined;
      return { isFile: slots[k] === 1n, dev: slots[k + 1]!, ino: slots[k + 2]!, size: slots[k + 3]!, mtimeNs: slots[k + 4]!, ctimeNs: slots[k + 5]! };
    },
  };
}

/** Created (O_EXCL, empty): its dev, and its stamp (size, mtimeNs, ctimeNs, ino). Else undefined: create or find it the usual way. */
export type CreateResult = readonly [string, string, string, string, string] | undefined;

const WORKER_SOURCE = `
const fs = require('node:fs');
const { parentPort } = require('node:worker_threads');
const FLAGS = fs.constants.O_RDWR | fs.constants.O_NOFOLLOW;
const CREATE = FLAGS | fs.constants.O_CREAT | fs.constants.O_EXCL;
function create(at) {
  let fd;
  try {
    fd = fs.openSync(at, CREATE, 0o644);
    const st = fs.fstatSync(fd, { bigint: true });
    return [String(st.dev), String(st.size), String(st.mtimeNs), String(st.ctimeNs), String(st.ino)];
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) try { fs.closeSync(fd); } catch {}
  }
}
// the file open at job.path as expected (regular, job's identity when it has one, one link when
// asked, reached without a symlink): its fd, else undefined (closed)
function openAsExpected(job, flags, oneLink) {
  const fd = fs.openSync(job.path, flags);
  try {
    const st = fs.fstatSync(fd, { bigint: true });
    if (!st.isFile() || (oneLink && st.nlink !== 1n)) throw 0;
    if (job.dev !== undefined && (String(st.dev) !== job.dev || String(st.ino) !== job.ino)) throw 0;
    if (fs.readlinkSync('/proc/self/fd/' + fd) !== job.expected) throw 0;
    return fd;
  } catch {
    try { fs.closeSync(fd); } catch {}
    return undefined;
  }
}
function one(job, bytes) {
  let fd;
  try {
    fd = openAsExpected(job, FLAGS, true);
    if (fd === undefined) return undefined;
    for (let done = 0; done < job.length; ) {
      const n = fs.writeSync(fd, bytes, job.offset + done, job.length - done, job.position + done);
      if (n <= 0) return undefined;
      done += n;
    }
    const after = fs.fstatSync(fd, { bigint: true });
    if (after.nlink === 0n) return undefined;
    return [String(after.size), String(after.mtimeNs), String(after.ctimeNs), String(after.ino)];
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) try { fs.closeSync(fd); } catch {}
  }
}
// O_NONBLOCK: a FIFO planted under a file's name must not block the open (it is then no regular file)
const READ_FLAGS = fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK;
function read(job, bytes) {
  let fd;
  try {
    fd = openAsExpected(job, READ_FLAGS, false);
    if (fd === undefined) return -1;
    let done = 0;
    while (done < job.length) {
      const n = fs.readSync(fd, bytes, job.offset + done, job.length - done, job.position + done);
      if (n <= 0) break;
      done += n;
    }
    return done;
  } catch {
    return -1;
  } finally {
    if (fd !== undefined) try { fs.closeSync(fd); } catch {}
  }
}
// lstat of many paths: 6 BigInt64 slots each (regular file 1 or 0, or -1 for an error; dev, ino, size, mtimeNs, ctimeNs)
function statAll(paths) {
  const out = new BigInt64Array(6 * paths.length);
  paths.forEach((at, k) => {
    try {
      const st = fs.lstatSync(at, { bigint: true });
      out.set([st.isFile() ? 1n : 0n, st.dev, st.ino, st.size, st.mtimeNs, st.ctimeNs], 6 * k);
    } catch {
      out[6 * k] = -1n;
    }
  });
  return out;
}
parentPort.on('message', (m) => {
  if (m.create) return parentPort.postMessage({ id: m.id, results: m.create.map(create) });
  if (m.stat) {
    const table = statAll(m.stat);
    return parentPort.postMessage({ id: m.id, results: table }, [table.buffer]);
  }
  if (m.read) {
    const bytes = new Uint8Array(m.buffer);
    const results = m.read.map((job) => read(job, bytes));
    // an ArrayBuffer goes back (it was transferred here); a SharedArrayBuffer is the caller's already
    if (m.buffer instanceof SharedArrayBuffer) return parentPort.postMessage({ id: m.id, results });
    return parentPort.postMessage({ id: m.id, results, buffer: m.buffer }, [m.buffer]);
  }
  const bytes = new Uint8Array(m.buffer);
  parentPort.postMessage({ id: m.id, results: m.jobs.map((job) => one(job, bytes)) });
});
`;

interface Pending {
  resolve(results: unknown[], buffer?: ArrayBuffer): void;
}

export class SmallFileWorker {
  #worker: Worker | undefined;
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;
  #broken = false;

  /**
   * Writes `jobs` (their bytes in `buffer`, which is transferred: not usable
   * afterwards) on the worker; one result per job, in order. Never rejects:
   * when the worker cannot be used, every result is undefined.
   */
  write(jobs: readonly SmallWrite[], buffer: ArrayBuffer): Promise<SmallWriteResult[]> {
    return this.#ask(jobs.length, (id) => ({ id, jobs, buffer }), [buffer]);
  }

  /**
   * Reads `jobs` on the worker into `buffer`; resolves with, per job in
   * order, how many of its bytes were there (fewer than asked: the file ends
   * there), or -1: read it the usual way (not the file expected, or any
   * error). An ArrayBuffer is transferred there and back (not usable
   * meanwhile; the one resolved is the one to use); a SharedArrayBuffer is
   * written in place. Never rejects; when the worker cannot be used, every
   * job is -1 and the buffer a new one of the same size.
   */
  async read<B extends ArrayBuffer | SharedArrayBuffer>(jobs: readonly SmallRead[], buffer: B): Promise<{ buffer: B; got: number[] }> {
    const size = buffer.byteLength;
    const shared = buffer instanceof SharedArrayBuffer;
    let back: ArrayBuffer | undefined;
    const results = await this.#ask<number | undefined>(jobs.length, (id) => ({ id, read: jobs, buffer }), shared ? [] : [buffer as ArrayBuffer], (b) => (back = b));
    const got = jobs.map((_, k) => results[k] ?? -1);
    if (shared) return { buffer, got };
    if (back === undefined) return { buffer: (buffer.byteLength === size ? buffer : new ArrayBuffer(size)) as B, got: jobs.map(() => -1) };
    return { buffer: back as B, got };
  }

  /** Sends the message `make(id)`  /** Sends the message `make(id)` (transferring `transfer`) and resolves with its `count` results; all undefined when the worker cannot be used. */
  #ask<R>(count: number, make: (id: number) => object, transfer: ArrayBuffer[], onBuffer?: (buffer: ArrayBuffer) => void): Promise<R[]> {
    const none = (): R[] => Array.from({ length: count }, () => undefined as R);
    if (this.#broken || count === 0) return Promise.resolve(none());
    let worker: Worker;
    try {
      worker = this.#start();
    } catch {
      this.#broken = true; // no thread to be had (a resource limit): the usual way from now on
      return Promise.resolve(none());
    }
    const id = this.#nextId++;
    return new Promise((resolve) => {
      // the thread keeps the process alive while it owes an answer, never when idle
      if (this.#pending.size === 0) worker.ref();
      this.#pending.set(id, {
        resolve: (results, buffer) => {
          if (buffer !== undefined) onBuffer?.(buffer);
          resolve(results as R[]);
        },
      });
      try {
        worker.postMessage(make(id), transfer);
      } catch {
        this.#answered(id);
        resolve(none());
      }
    });
  }

  /** Forgets request `id`; the thread is unreferenced once nothing is owed. */
  #answered(id: number): void {
    this.#pending.delete(id);
    if (this.#pending.size === 0) this.#worker?.unref();
  }

  /** lstat of each of `paths` (never following a symlink). Never rejects: when the worker cannot be used, every answer is undefined. */
  async stat(paths: readonly string[]): Promise<StatTable> {
    if (paths.length === 0) return statTable(undefined);
    // answered with one BigInt64Array (transferred), or nothing usable
    const results: unknown = await this.#ask<unknown>(1, (id) => ({ id, stat: paths }), []);
    return statTable(results instanceof BigInt64Array ? results : undefined);
  }

  /**
   * Creates each of `paths` (O_EXCL: never a file that is there; no symlink followed as the last
   * component), empty, and closes it; one result per path. Never rejects: a path that cannot be
   * created so, or all when the worker cannot be used, is undefined.
   */
  create(paths: readonly string[]): Promise<CreateResult[]> {
    return this.#ask(paths.length, (id) => ({ id, create: paths }), []);
  }

  /** Ends the worker; writes still waiting are answered "again". */
  async close(): Promise<void> {
    const worker = this.#worker;
    this.#worker = undefined;
    this.#broken = true;
    this.#failAll();
    if (worker) await worker.terminate();
  }

  #start(): Worker {
    if (this.#worker) return this.#worker;
    const worker = new Worker(WORKER_SOURCE, { eval: true });
    worker.on('message', (m: { id: number; results: unknown[]; buffer?: ArrayBuffer }) => {
      const p = this.#pending.get(m.id);
      this.#answered(m.id);
      p?.resolve(m.results, m.buffer);
    });
    const fail = (): void => {
      this.#broken = true;
      this.#worker = undefined;
      this.#failAll();
    };
    worker.on('error', fail);
    worker.on('exit', fail);
    worker.unref(); // idle: never what keeps tt running (after the listeners: adding one refs it again)
    this.#worker = worker;
    return worker;
  }

  #failAll(): void {
    for (const [id, p] of this.#pending) {
      this.#pending.delete(id);
      p.resolve([]); // no result: every job is done again the usual way
    }
  }
}

/** Paths a caller must have for statMany to use the worker: below this, libuv's pool costs less than a message. */
export const STAT_BATCH_MIN = 64;

let shared: SmallFileWorker | undefined;

/**
 * The small-file worker the process shares (its thread started on first use;
 * idle, it keeps nothing alive). One thread for every storage, check and
 * stat: each is a V8 isolate of ~10-15 MB. Never closed by its users.
 */
export function smallFiles(): SmallFileWorker {
  shared ??= new SmallFileWorker();
  return shared;
}

/**
 * SmallFileWorker.stat on the shared worker for STAT_BATCH_MIN paths or more;
 * for fewer, every result is undefined (the caller lstats them itself). A
 * folder of 20,000 files costs the main thread ~0.4 s through the pool.
 */
export function statMany(paths: readonly string[]): Promise<StatTable> {
  if (paths.length < STAT_BATCH_MIN) return Promise.resolve(statTable(undefined));
  return smallFiles().stat(paths);
}

