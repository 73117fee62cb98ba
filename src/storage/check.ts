/**
 * Verifies data already on disk against the torrent's piece hashes (BEP 3
 * `pieces`), e.g. before resuming or seeding. Reads large sequential runs into
 * SharedArrayBuffers and hashes them in worker threads while the next run is
 * read; many small files a run crosses are read on the small-file worker
 * (small-files.ts) in one message, each file's open, checks, read and close
 * synchronous there, straight into the run's shared memory; other files are
 * opened and read CHECK_OPEN_PARALLEL at a time, each into its own slice of
 * the run (so a folder of 100,000 small files is not one open() round trip
 * after another), through a bounded
 * handle cache (handle-cache.ts: never more descriptors than a quarter of
 * the process's limit, EMFILE retried after closing idle handles). Read-only: never
 * creates, writes or truncates anything, and never reads a byte from outside
 * realpath(root) (each handle is confined). With a file selection, only
 * wanted pieces are checked, and unselected files' bytes are read from the
 * part file, as storage.ts writes them. Pieces the caller already knows
 * (fast resume, resume.ts) are reported present without being read, and so
 * are pieces wholly in BEP 47 padding: zeros, their hash proved when the
 * torrent was read (metainfo/padding-pieces.ts), so a crafted torrent's
 * terabytes of padding cost nothing here.
 *
 * Each byte has one source, the one storage.ts reads it from: a file that
 * exists, else (for the edge bytes of a selected file not created yet, or an
 * unselected one) the part file. Never both, and never "whichever hashes":
 * a piece verified from the part file while storage reads the file would be
 * served as bytes nobody checked. An existing selected file is therefore
 * trusted even where the part file may hold its edge bytes, which is sound
 * because storage.ts gives a newly selected file its name only after copying
 * them in (temporary + fsync + rename). A file incomplete some other way
 * (truncated by hand, or left by a tt older than that rename) costs
 * downloading its first and last piece again, never a wrong piece.
 */
import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { Bitfield } from '../core/bitfield.js';
import { DiskError, TtError } from '../core/errors.js';
import { PieceGeometry } from '../core/geometry.js';
import type { Metainfo } from '../metainfo/metainfo.js';
import { piecesIn, wholePaddingPieces } from '../metainfo/padding-pieces.js';
import { edgeRanges, type FileSelection } from '../metainfo/selection.js';
import { HAS_PROC_FD, assertOpenedInside, realRoot } from './confine.js';
import { toDiskError } from './disk-error.js';
import { PieceHasher, defaultHashWorkers } from './hasher.js';
import { forEachLimit } from './for-each-limit.js';
import { HandleCache, handleBudget } from './handle-cache.js';
import { spansFor, type FileSpan } from './layout.js';
import { lookupAllInside, resolveInside, type Resolved } from './safe-path.js';
import { SMALL_FILE_BYTES, smallFiles, type SmallRead } from './small-files.js';

export interface CheckProgress {
  /** Pieces examined so far. */
  checked: number;
  total: number;
  /** Pieces that matched their hash so far. */
  have: number;
  /** Torrent bytes examined so far. */
  bytes: number;
}

export interface CheckOptions {
  signal?: AbortSignal;
  onProgress?: (p: CheckProgress) => void;
  /** Hash worker threads; 0 hashes on the main thread. Default: one per core, at most 4. */
  workers?: number;
  /** Check only the pieces this selection wants (others are reported missing). */
  selection?: FileSelection | undefined;
  /** Pieces already known to be on disk and correct (fast resume): reported present, not read. */
  known?: Bitfield | undefined;
}

/** Bytes read per sequential run (whole pieces). */
export const CHECK_RUN_BYTES = 8 * 1024 * 1024;

/** One check in progress: inputs, and the bitfield and counters it fills in. */
interface CheckContext {
  readonly files: FileReader;
  readonly geometry: PieceGeometry;
  readonly meta: Metainfo;
  readonly result: Bitfield;
  readonly progress: CheckProgress;
  readonly opts: CheckOptions;
}

/** A byte range [start, end) of a run that is not on disk. */
type Gap = readonly [number, number];

/**
 * Which pieces are on disk and hash correctly. Missing or short files make
 * the pieces they cover missing. Throws DiskError for unsafe paths (a
 * symlink anywhere under root, even one planted while checking) or
 * unreadable files, TtError('INTERRUPTED') when `signal` aborts.
 */
export async function checkExisting(root: string, meta: Metainfo, opts: CheckOptions = {}): Promise<Bitfield> {
  const found = await lookupAllInside(root, meta.files.map((f) => f.path));
  const paths = found.map((f) => f.path);
  const selection = opts.selection;
  if (selection) paths.push(await resolveInside(root, [selection.partFileName]));
  const rootReal = await realRoot(root).catch((err: unknown) => {
    if ((err as DiskError).syscallCode === 'ENOENT') return undefined; // no folder yet: every file is missing
    throw err;
  });
  const files = new FileReader(meta, paths, rootReal, selection, found);
  const geometry = new PieceGeometry(meta.pieceLength, meta.totalLength);
  const result = new Bitfield(meta.pieceCount);
  if (opts.known) for (const i of opts.known.indices()) result.set(i);
  const padding = wholePaddingPieces(meta.files, meta.pieceLength, meta.totalLength);
  for (const i of piecesIn(padding)) result.set(i);
  const progress: CheckProgress = { checked: 0, total: meta.pieceCount, have: result.count, bytes: 0 };
  // padding pieces are known like a resume record's: never read nor hashed
  const ctx: CheckContext = { files, geometry, meta, result, progress, opts: padding.length > 0 ? { ...opts, known: new Bitfield(meta.pieceCount, result.bytes) } : opts };
  try {
    if (meta.pieceLength > CHECK_RUN_BYTES) await checkLargePieces(ctx);
    else await checkRuns(ctx);
  } finally {
    await files.close();
  }
  return result;
}

async function checkRuns(ctx: CheckContext): Promise<void> {
  const { files, geometry, meta, result, progress, opts } = ctx;
  const workers = opts.workers ?? defaultHashWorkers();
  const hasher = new PieceHasher(workers);
  const piecesPerRun = Math.max(1, Math.floor(CHECK_RUN_BYTES / meta.pieceLength));
  const runBytes = piecesPerRun * meta.pieceLength;
  const maxBuffers = Math.max(2, workers + 1);
  const free: Buffer[] = [];
  let allocated = 0;
  /**
   * Hash tasks under way. A task never rejects: its failure is kept in
   * `failed`, and its buffer goes back to `free` as it leaves this set, so
   * every buffer not free belongs to a task here (waiting for a buffer never
   * waits on an empty set) and no failure goes unseen.
   */
  const inflight = new Set<Promise<void>>();
  let failed: { err: unknown } | undefined;
  const stopIfDone = (): void => {
    throwIfAborted(opts.signal);
    if (failed) throw failed.err;
  };

  const finish = (first: number, count: number, bytes: number, hashes: Buffer | undefined, skip: Uint8Array): void => {
    for (let k = 0; k < count; k++) {
      const index = first + k;
      if (skip[k] || !hashes) continue;
      if (hashes.compare(meta.pieces, index * 20, index * 20 + 20, k * 20, k * 20 + 20) === 0) {
        result.set(index);
        progress.have++;
      }
    }
    progress.checked += count;
    progress.bytes += bytes;
    opts.onProgress?.({ ...progress });
  };

  try {
    for (let first = 0; first < meta.pieceCount; first += piecesPerRun) {
      stopIfDone();
      const count = Math.min(piecesPerRun, meta.pieceCount - first);
      const unwanted = notWanted(opts, first, count);
      if (unwanted?.every((u) => u === 1)) {
        // nothing here is wanted: no buffer taken, nothing read
        finish(first, count, Math.min(runBytes, meta.totalLength - geometry.pieceOffset(first)), undefined, unwanted);
        continue;
      }
      while (free.length === 0 && allocated >= maxBuffers) {
        await Promise.race(inflight);
        stopIfDone(); // a stop while hashing is not followed by one more read
      }
      const buffer = free.pop() ?? (allocated++, Buffer.from(new SharedArrayBuffer(runBytes)));
      const offset = geometry.pieceOffset(first);
      const length = Math.min(runBytes, meta.totalLength - offset);
      const view = buffer.subarray(0, length);
      const skip = unwanted ?? new Uint8Array(count);
      let missing = skip.reduce((n, u) => n + u, 0);
      // read only the wanted pieces' bytes (an unwanted piece may span thousands of files not on disk)
      const gaps = await readWanted(files, view, offset, skip, meta.pieceLength);
      for (const [start, end] of gaps) {
        const from = Math.floor(start / meta.pieceLength);
        const to = Math.ceil(end / meta.pieceLength);
        for (let k = from; k < to; k++) if (!skip[k]) (skip[k] = 1), missing++;
      }
      if (missing === count) {
        free.push(buffer);
        finish(first, count, length, undefined, skip);
        continue;
      }
      const task: Promise<void> = hasher
        .hashPieces(view, meta.pieceLength, missing > 0 ? skip : undefined)
        .then((hashes) => finish(first, count, length, hashes, skip))
        .catch((err: unknown) => {
          failed ??= { err };
        })
        .finally(() => {
          free.push(buffer);
          inflight.delete(task);
        });
      inflight.add(task);
    }
    await Promise.all(inflight);
    stopIfDone(); // a partial answer is never returned
  } finally {
    // stopped or failed: the hashes under way fail at once (close), and are
    // waited for, so nothing of this check is still running once it settles
    await hasher.close();
    await Promise.all(inflight);
  }
}

/** Pieces over CHECK_RUN_BYTES: streamed through one hash on the main thread. */
async function checkLargePieces(ctx: CheckContext): Promise<void> {
  const { files, geometry, meta, result, progress, opts } = ctx;
  const buffer = Buffer.allocUnsafe(CHECK_RUN_BYTES);
  for (let index = 0; index < meta.pieceCount; index++) {
    const size = geometry.pieceSize(index);
    if ((opts.selection && !opts.selection.wanted.has(index)) || opts.known?.has(index)) {
      progress.checked++;
      progress.bytes += size;
      continue;
    }
    const hash = createHash('sha1');
    let complete = true;
    for (let at = 0; at < size && complete; at += CHECK_RUN_BYTES) {
      throwIfAborted(opts.signal);
      const view = buffer.subarray(0, Math.min(CHECK_RUN_BYTES, size - at));
      const gaps = await files.readInto(geometry.pieceOffset(index) + at, view);
      if (gaps.length > 0) complete = false;
      else hash.update(view);
    }
    if (complete && hash.digest().equals(meta.pieces.subarray(index * 20, index * 20 + 20))) {
      result.set(index);
      progress.have++;
    }
    progress.checked++;
    progress.bytes += size;
    opts.onProgress?.({ ...progress });
  }
}

/**
 * Reads the pieces of a run not marked in `skip` (maximal runs of them at a
 * time) into `view`, which starts at torrent offset `offset`; returns the gaps
 * (view-relative) that were not on disk. Without skips: one read of it all.
 */
async function readWanted(files: FileReader, view: Buffer, offset: number, skip: Uint8Array, pieceLength: number): Promise<Gap[]> {
  const gaps: Gap[] = [];
  for (let k = 0; k < skip.length; ) {
    if (skip[k]) {
      k++;
      continue;
    }
    let end = k;
    while (end < skip.length && !skip[end]) end++;
    const from = k * pieceLength;
    const to = Math.min(view.length, end * pieceLength);
    for (const [a, b] of await files.readInto(offset + from, view.subarray(from, to))) gaps.push([from + a, from + b]);
    k = end;
  }
  return gaps;
}

/**
 * 1 for each piece of [first, first + count) not to read: the selection does
 * not want it, or it is already known; undefined when every piece is read.
 */
function notWanted({ selection, known }: CheckOptions, first: number, count: number): Uint8Array | undefined {
  if (!selection && !known) return undefined;
  const out = new Uint8Array(count);
  for (let k = 0; k < count; k++) {
    const index = first + k;
    out[k] = (selection && !selection.wanted.has(index)) || known?.has(index) ? 1 : 0;
  }
  return out;
}

function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new TtError('INTERRUPTED', 'checking stopped', { cause: signal.reason });
}

/**
 * Files opened and read at once while a run crosses many of them: a torrent
 * of 100,000 small files is otherwise checked one open() round trip after
 * another. Each in flight holds one handle while it is read.
 */
export const CHECK_OPEN_PARALLEL = 32;

/**
 * Small files a range must cross for them to be read on the small-file worker: the five calls
 * through libuv's pool a file takes the usual way cost the main thread ~100 µs a file here; a
 * worker thread costs ~15 ms to start.
 */
const SMALL_BATCH_MIN = 64;

/**
 * Positioned reads over the torrent's files, read-only, one handle per file
 * (leased from a bounded cache for each read). A range crossing many files
 * opens and reads them CHECK_OPEN_PARALLEL at a time (fewer under a low
 * descriptor limit), each into its own part of the target; a file is closed
 * once its span is read unless the range ends in it (the next range goes on
 * there).
 */
class FileReader {
  readonly #meta: Metainfo;
  readonly #paths: readonly string[];
  /** realpath(root); undefined when root does not exist (every file is missing). */
  readonly #rootReal: string | undefined;
  readonly #selection: FileSelection | undefined;
  /** Handles by file index: the spans read at once, the file a range ends in, the part file. */
  readonly #cache = new HandleCache<number>(handleBudget(CHECK_OPEN_PARALLEL + 2), { closedError: () => new DiskError('checking stopped') });
  /** Files found missing (never opened again during this check). */
  readonly #missing = new Set<number>();

  /** `found`: the lookups that gave `paths`; a file found missing there is not opened (the part file, after them, always is). */
  constructor(meta: Metainfo, paths: readonly string[], rootReal: string | undefined, selection: FileSelection | undefined, found: readonly Resolved[]) {
    this.#meta = meta;
    this.#paths = paths;
    this.#rootReal = rootReal;
    this.#selection = selection;
    found.forEach((f, i) => f.missing && this.#missing.add(i));
  }

  /** Fill `target` with torrent bytes from `offset`; returns the ranges not on disk, in order. */
  async readInto(offset: number, target: Buffer): Promise<Gap[]> {
    const spans = spansFor(this.#meta.files, offset, target.length);
    if (spans.length === 0) return [];
    await this.#closeBefore(spans[0]!.fileIndex); // ranges go forward: files before this one are done with
    const starts = new Array<number>(spans.length);
    for (let k = 0, at = 0; k < spans.length; at += spans[k]!.length, k++) starts[k] = at;
    const gaps = new Array<Gap[] | undefined>(spans.length);
    await this.#readSmallOnWorker(spans, target, starts, gaps);
    // one handle per span in flight, and one left for the part file
    await forEachLimit(spans, Math.min(CHECK_OPEN_PARALLEL, this.#cache.capacity - 1), async (span, k) => {
      if (gaps[k] !== undefined) return; // read on the worker
      gaps[k] = await this.#readSpan(span, target, starts[k]!);
      if (k < spans.length - 1) await this.#release(span.fileIndex); // closed before the next open takes its place
    });
    return (gaps as Gap[][]).flat();
  }

  /**
   * When a range crosses at least SMALL_BATCH_MIN small files that are there (no handle open),
   * reads them on the small-file worker in one message, into `target` in place when it is shared
   * memory (the runs are), and fills in their gaps; a file the worker answers "again" for (not
   * there, not the file expected, an error) is left to the usual way, which says what is wrong.
   */
  async #readSmallOnWorker(spans: readonly FileSpan[], target: Buffer, starts: readonly number[], gaps: (Gap[] | undefined)[]): Promise<void> {
    const rootReal = this.#rootReal;
    if (!HAS_PROC_FD || rootReal === undefined) return;
    const picked: number[] = [];
    spans.forEach((span, k) => {
      const file = this.#meta.files[span.fileIndex]!;
      if (!file.padding && file.length <= SMALL_FILE_BYTES && !this.#missing.has(span.fileIndex) && !this.#cache.has(span.fileIndex)) picked.push(k);
    });
    if (picked.length < SMALL_BATCH_MIN) return;
    const shared = target.buffer instanceof SharedArrayBuffer;
    let offset = 0;
    const jobs: SmallRead[] = picked.map((k) => {
      const span = spans[k]!;
      const at = shared ? target.byteOffset + starts[k]! : offset;
      offset += span.length;
      return { path: this.#paths[span.fileIndex]!, expected: path.join(rootReal, ...this.#meta.files[span.fileIndex]!.path), position: span.fileOffset, offset: at, length: span.length };
    });
    const { buffer, got } = await smallFiles().read(jobs, shared ? (target.buffer as SharedArrayBuffer) : new ArrayBuffer(offset));
    const bytes = shared ? undefined : Buffer.from(buffer);
    picked.forEach((k, j) => {
      const n = got[j]!;
      if (n < 0) return;
      const start = starts[k]!;
      if (bytes) bytes.copy(target, start, jobs[j]!.offset, jobs[j]!.offset + n);
      gaps[k] = n < spans[k]!.length ? [[start + n, start + spans[k]!.length]] : [];
    });
  }

  /** One file's span into target[start...]; returns its gaps (target-relative). */
  async #readSpan(span: FileSpan, target: Buffer, start: number): Promise<Gap[]> {
    const end = start + span.length;
    const file = this.#meta.files[span.fileIndex]!;
    if (file.padding) {
      target.fill(0, start, end); // BEP 47: zeros by definition, never on disk
      return [];
    }
    const part = this.#meta.files.length;
    const global = file.offset + span.fileOffset;
    const fromFile = await this.#readFrom(span.fileIndex, target, start, span.length, span.fileOffset);
    if (fromFile !== undefined || !this.#selection) {
      const got = fromFile ?? 0;
      return got < span.length ? [[start + got, end]] : [];
    }
    if (!this.#selection.isSelected(span.fileIndex)) {
      // an unselected file not on disk: its bytes of shared pieces are in the part file at their offset
      // in the torrent (one an earlier run created is read above: storage.ts keeps it current)
      const got = (await this.#readFrom(part, target, start, span.length, global)) ?? 0;
      return got < span.length ? [[start + got, end]] : [];
    }
    // a selected file not created yet: an earlier run that did not select it kept its
    // bytes of shared pieces (its first and last piece) in the part file; storage.ts copies them over
    const gaps: Gap[] = [];
    let cursor = global;
    for (const [from, to] of edgeRanges(file, this.#meta.pieceLength)) {
      const a = Math.max(cursor, from);
      const b = Math.min(global + span.length, to);
      if (a >= b) continue;
      if (a > cursor) gaps.push([start + cursor - global, start + a - global]);
      const got = (await this.#readFrom(part, target, start + a - global, b - a, a)) ?? 0;
      if (got < b - a) gaps.push([start + a - global + got, start + b - global]);
      cursor = b;
    }
    if (cursor < global + span.length) gaps.push([start + cursor - global, end]);
    return gaps;
  }

  /**
   * Reads up to `length` bytes of file `fileIndex` at `position` into
   * target[start...]; returns how many were there, undefined when the file is
   * missing.
   */
  async #readFrom(fileIndex: number, target: Buffer, start: number, length: number, position: number): Promise<number | undefined> {
    const rootReal = this.#rootReal;
    if (rootReal === undefined || this.#missing.has(fileIndex)) return undefined;
    let lease;
    try {
      lease = await this.#cache.acquire(fileIndex, () => this.#openConfined(fileIndex, rootReal));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        this.#missing.add(fileIndex);
        return undefined;
      }
      throw toDiskError('check', this.#paths[fileIndex]!, err);
    }
    let done = 0;
    try {
      while (done < length) {
        const { bytesRead } = await lease.fh.read(target, start + done, length - done, position + done);
        if (bytesRead === 0) break;
        done += bytesRead;
      }
    } catch (err) {
      throw toDiskError('check', this.#paths[fileIndex]!, err);
    } finally {
      lease.release();
    }
    return done;
  }

  /** Closes every handle, once the opens and reads under way have ended. */
  async close(): Promise<void> {
    await this.#cache.close();
  }

  /** Open read-only, refusing a handle outside rootReal. Rejects with open()'s own error (ENOENT: missing; EMFILE: retried by the cache). */
  async #openConfined(fileIndex: number, rootReal: string): Promise<FileHandle> {
    const file = this.#paths[fileIndex]!;
    // O_NONBLOCK: a FIFO planted after the path checks must not block the open (nor later reads)
    const fh = await open(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    try {
      if (!(await fh.stat()).isFile()) throw new DiskError(`refusing ${JSON.stringify(file)}: not a regular file`);
      await assertOpenedInside(fh, rootReal, this.#meta.files[fileIndex]?.path ?? [this.#selection!.partFileName]);
    } catch (err) {
      await fh.close().catch(() => undefined);
      throw err;
    }
    return fh;
  }

  /** Done with file `fileIndex` (never the part file, which every range may need): closes it. */
  async #release(fileIndex: number): Promise<void> {
    if (fileIndex < this.#meta.files.length) await this.#cache.discard(fileIndex);
  }

  /** Releases the files before `fileIndex`. */
  async #closeBefore(fileIndex: number): Promise<void> {
    await Promise.all(this.#cache.keys().filter((i) => i < fileIndex).map((i) => this.#release(i)));
  }
}
