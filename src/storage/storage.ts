/**
 * Piece-level disk I/O for one torrent (BEP 3 file layout): positioned reads
 * and writes across file boundaries through an LRU of open FileHandles, each
 * confined to realpath(root) after it is opened (confine.ts).
 * Owns file creation (sparse, never truncating) and fs-error mapping. With a
 * file selection, unselected files are never created: their bytes inside
 * wanted pieces live in the part file (metainfo/selection.ts) at their offset
 * in the torrent, so it stays sparse and its layout does not depend on the
 * selection; an unselected file an earlier run created is read first and kept
 * current, and a file selected now adopts its bytes from the part file.
 *
 * Adoption is crash-safe: the part file stays the only copy of an adopted
 * file's edge bytes until that file exists under its own name, and it gets
 * its name only once it holds them. The file is built beside its final path
 * as `.<info-hash>.<file index>.tt-adopt` (adoptTempName; a torrent with a
 * path component of that shape is never written, as with part-file names),
 * opened like any file (O_NOFOLLOW, confined), filled from the part file,
 * fdatasync'ed, then renamed into place (atomic within its folder). So a
 * selected file that exists holds its adopted bytes, one that does not is
 * read from the part file (check.ts, #readRange), and a run that dies at any
 * point (or a power cut: the data is synced before the rename) loses no
 * verified piece. A temporary left by such a run is reused, truncated, by the
 * next run that selects the file (refused if it is a symlink or has other
 * hard links). A file whose share of the part file is all zeros (holes, mostly:
 * pieces no run wrote, though they lie before its end) has nothing to move: it
 * is created in place, as any file, and made as long as those zeros reached
 * (sparse), with no temporary, sync nor rename. A run killed between the two
 * leaves it short, so a verified piece whose share in it really is zeros is
 * fetched again, never wrongly counted.
 *
 * Starting 20,000 small files is one folder at a time (#startFiles): each
 * folder is made once and opened once, confined, its files created or looked
 * up through that handle (O_NOFOLLOW, /proc/self/fd/N/name, so a folder
 * swapped for a symlink is not followed) and its place checked again after its
 * last file, instead of a readlink per file; a file found is lstat'ed, not
 * opened; handles are kept only while the cache has room.
 *
 * A temporary is never the only copy of anything (the part file keeps every
 * byte until all files exist under their own names), so once an open has
 * adopted what it selects, every temporary of this torrent still there is a
 * dead run's leftover, also that of a file no run selects again: a writable
 * open with a selection deletes them (#sweepAdoptTemps). Only this torrent's
 * own names, adoptTempName(meta, i) in file i's folder, and only regular
 * files with no other hard link (tt makes nothing else there), untouched for
 * ADOPT_TEMP_MIN_AGE_MS (another tt adopting into the same folder right now
 * keeps its temporary); each folder is opened confined and looked into
 * through its handle (openFolderInside), so nothing outside the root is
 * touched and no symlink followed. Best effort: what cannot be removed now
 * is tried again by the next such open.
 *
 * Handles live in a bounded cache (handle-cache.ts): one per file and kind
 * (read-only, read-write, O_DIRECT), at most `maxOpenFiles` in all (and no
 * more than a quarter of the process's descriptor limit), each leased for one
 * operation, so a torrent whose pieces span thousands of files waits for a
 * handle instead of running out of descriptors (EMFILE). No operation holds
 * two leases at once except adopting (the part file and the new file), so
 * the cache never deadlocks with its minimum of two.
 *
 * Files are opened for writing only when a write needs them: open() creates
 * the missing ones and opens the existing ones read-only, so a complete (or
 * partly complete) folder of read-only files can be checked, resumed and
 * seeded; a file that must be written but cannot be says "not writable".
 * One write open() itself makes: a file found longer than the torrent says
 * is cut to its length (#cutToLength, with a notice), as the bytes past it
 * are in no piece, so no check would ever see them, and a download must
 * leave exactly the torrent's bytes. Only files this download creates or
 * finds (selected, not padding), resolved and opened as for a piece.
 *
 * Writes never reach a file outside the folder through a hard link: every
 * open for writing fstats the file, and one with other hard links (nlink > 1:
 * `ln victim out/file`, a `cp -al` snapshot, a media library) is first
 * copied to a fresh file beside it, synced and renamed into place (under the
 * adoption temporary's name, so leftovers are handled alike), and only that
 * copy is written; the other names keep the old bytes. Reading a hard-linked
 * file (checking, seeding) needs no copy. Copying rather than refusing: the
 * download goes on, and nothing but this folder changes (the cost is the
 * file's size on disk, which the download needs anyway).
 *
 * Each file's identity (device, inode) is kept from when open() created or
 * found it: a later open that finds another file at its path fails ("was
 * replaced"), a deferred stamp (see #stampSoon) whose fstat says nlink 0 (the
 * file or its folder was deleted while tt wrote to it) makes every later
 * write fail, and assertFilesInPlace() checks, before a download is called
 * complete, that every wanted file is still at its path as the same inode
 * and whole, so deleting the folder mid-download is a disk error, not a
 * success written into files no one can see.
 */
import { constants, type BigIntStats } from 'node:fs';
import { lstat, open, readdir, rename, rm, rmdir, unlink, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { DiskError, TtError } from '../core/errors.js';
import { PieceGeometry } from '../core/geometry.js';
import type { Metainfo } from '../metainfo/metainfo.js';
import { edgeRanges, isPartFileName, partFileName, type FileSelection } from '../metainfo/selection.js';
import { HAS_PROC_FD, assertOpenedInside, openFolderInside, realRoot } from './confine.js';
import { DirectWriteMonitor, splitForDirect } from './direct-io.js';
import { forEachLimit } from './for-each-limit.js';
import { HandleCache, handleBudget, type Lease } from './handle-cache.js';
import { isResumeFileName, notOlder, stampOf, type Stamp } from './resume.js';
import { isLockFileName } from './lock.js';
import { inAlignedStore } from './piece-buffers.js';
import { toDiskError } from './disk-error.js';
import { spansFor, type FileSpan } from './layout.js';
import { SMALL_FILE_BYTES, smallFiles, statMany, type SmallFileWorker, type CreateResult, type SmallRead, type SmallWrite } from './small-files.js';
import { foldersMade, mkdirp } from './mkdirp.js';
import { resolveAllInside, resolveInside } from './safe-path.js';

export const DEFAULT_MAX_OPEN_FILES = 64;

/**
 * Opens a file; replaceable so tests can inject faults (e.g. /dev/full for
 * ENOSPC). Handles from a custom opener are trusted: not confined to the
 * root, nor checked to be the file open() created or found.
 */
export type FileOpener = (file: string, flags: number) => Promise<FileHandle>;

export interface StorageOptions {
  mode: 'read' | 'readwrite';
  /**
   * Most file handles held at once (default 64; at least 2, and never more
   * than a quarter of the process's descriptor limit: handle-cache.ts).
   */
  maxOpenFiles?: number;
  /** Test seam: how files are opened. */
  openFile?: FileOpener;
  /**
   * Write the page-aligned part of pieces in aligned buffers (piece-buffers.ts)
   * with O_DIRECT while the filesystem accepts it and the disk keeps up
   * (direct-io.ts); everything else goes through the page cache.
   */
  directWrites?: boolean;
  /** Test seam: the monitor deciding whether direct writes stay on. */
  directMonitor?: DirectWriteMonitor;
  /** Only these files are created and written; other files' bytes go to the part file. */
  selection?: FileSelection | undefined;
  /** Told what the user should know but is no error (a hard link broken by copying the file, a file longer than the torrent's cut). */
  onNotice?: (message: string) => void;
  /** Stops open() creating files (TtError INTERRUPTED): Ctrl-C while 100,000 files are made. */
  signal?: AbortSignal | undefined;
}

// O_NOFOLLOW: a symlink planted after resolveInside() still is not followed.
const READ_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW;
const WRITE_FLAGS = constants.O_RDWR | constants.O_NOFOLLOW;
// Only open() creates files: a file removed later is reported, not silently recreated.
const CREATE_FLAGS = WRITE_FLAGS | constants.O_CREAT;
/** open() creating a missing file: EEXIST says it is there (then opened read-only, for writing only when needed). */
const CREATE_NEW_FLAGS = CREATE_FLAGS | constants.O_EXCL;
/** Linux's O_DIRECT; undefined where Node does not define it (no direct writes there). */
const O_DIRECT = (constants as { O_DIRECT?: number }).O_DIRECT;

/** What a cached handle of a file is for (its key in the cache is fileIndex * KINDS + kind). */
const READ = 0;
const WRITE = 1;
const DIRECT = 2;
const KINDS = 3;
type Kind = typeof READ | typeof WRITE | typeof DIRECT;

/** A file as tt created or found it: what it must still be (see assertFilesInPlace). */
interface Identity {
  readonly dev: bigint;
  readonly ino: bigint;
}

/** Whether a name still leads to the file tt wrote: same device and inode. */
function sameFile(a: Identity, b: Identity): boolean {
  return a.dev === b.dev && a.ino === b.ino;
}

function identityOf(st: BigIntStats): Identity {
  return { dev: st.dev, ino: st.ino };
}

/** Another file than tt's at a file's path (deleted and made again, or moved away and replaced). */
class NotOurFile extends DiskError {}

/** Whether `root` holds the part file of an earlier selective download of `meta` (a regular file, not a link). */
export async function hasPartFile(root: string, meta: Metainfo): Promise<boolean> {
  try {
    return (await lstat(await resolveInside(root, [partFileName(meta)]))).isFile();
  } catch {
    return false;
  }
}

/**
 * `.<info-hash>.<file index>.tt-adopt`: where a file selected now is built
 * from the part file, in its own folder, before it is renamed into place
 * (and where a hard-linked file is copied before it is written: the part
 * file's index is the torrent's file count).
 */
export function adoptTempName(meta: Metainfo, fileIndex: number): string {
  return `.${meta.infoHashHex}.${fileIndex}.tt-adopt`;
}

/** Whether a path component is named like some torrent's adoption temporary (never written as a torrent's file). */
export function isAdoptTempName(name: string): boolean {
  return /^\.[0-9a-f]{40}\.\d+\.tt-adopt$/.test(name);
}

/** The part file, leased read-only while storage opens, to adopt bytes from. */
interface PartSource {
  readonly lease: Lease;
  readonly size: number;
}

/** A folder #startFiles creates files in: made by this open (`fresh`), and held open where names in it can be pinned to it. */
interface OpenedFolder {
  readonly fresh: boolean;
  readonly pinned: { readonly fh: FileHandle; readonly path: string } | undefined;
}

/** #startFiles' account of one folder: its files still to do, and its opening once started. */
interface StartFolder {
  readonly components: readonly string[];
  left: number;
  /** Its files (indices), in order. */
  readonly files: number[];
  ready: Promise<OpenedFolder> | undefined;
  /** Its files the small-file worker created (a folder made just now), once asked: index -> what it answered. */
  created: Promise<Map<number, CreateResult>> | undefined;
}

/** fdatasync calls in flight in sync(). */
const SYNC_PARALLEL = 16;
/** lstat calls in flight in assertFilesInPlace(). */
const STAT_PARALLEL = 32;
/** How long after a write its file's stamp is taken (#stampSoon): writes in between share one fstat. */
const STAMP_DELAY_MS = 20;

/**
 * A leftover adoption temporary is deleted only once it has not been written
 * for this long: a live adoption writes, then syncs at most two pieces, so one
 * this old belongs to a run that died (or stalled past saving anyway).
 */
export const ADOPT_TEMP_MIN_AGE_MS = 60_000;

/** Bytes copied at a time when adopting or breaking a hard link (an edge range may be a whole piece of up to 512 MiB). */
const ADOPT_CHUNK = 1024 * 1024;

/** Thrown inside reads to say "this piece is not (fully) on disk". */
class MissingData extends Error {
  /** The file does not exist at all (not merely short). */
  readonly absent: boolean;
  constructor(message: string, absent = false) {
    super(message);
    this.absent = absent;
  }
}

export class TorrentStorage {
  readonly #meta: Metainfo;
  readonly #geometry: PieceGeometry;
  readonly #paths: readonly string[];
  readonly #writable: boolean;
  readonly #openFile: FileOpener;
  /** Whether each handle is checked to be inside realpath(root) (the default opener). */
  readonly #confine: boolean;
  readonly #root: string;
  /** realpath(root), fixed at open() (or at the first open, when root did not exist yet). */
  #rootReal: string | undefined;
  /** Open handles, keyed fileIndex * KINDS + kind (#key). */
  readonly #cache: HandleCache<number>;
  /** Opens of a file wait for each other (writable storage): a hard link being broken is never opened half-way. */
  readonly #opening = new Map<number, Promise<void>>();
  /** Hard links broken one at a time: each holds one descriptor beyond the cache's bound while it copies. */
  #breaking: Promise<void> = Promise.resolve();
  /** Each file's device and inode since open() created or found it (or tt replaced it), for the files that must stay. */
  readonly #identity = new Map<number, Identity>();
  /** Set once a file that must stay was found deleted: every later write fails with it. */
  #lost: DiskError | undefined;
  /** Files (and the part file) written since open or the last sync(). */
  readonly #written = new Set<number>();
  /** Each file's stamp after tt created or last wrote it (the part file at index files.length): what resume.ts expects. */
  readonly #stamps = new Map<number, Stamp>();
  /** Files written since their last stamp, each with the timer that will take it (see #stampSoon). */
  readonly #stampTimers = new Map<number, NodeJS.Timeout>();
  /** The small-file worker (small-files.ts, shared by the process): storage with the default opener where /proc is there. */
  readonly #small: SmallFileWorker | undefined;
  /** Requests of this storage on the worker not answered yet: close() waits for them (the worker outlives it). */
  readonly #onWorker = new Set<Promise<unknown>>();
  /** Deferred stamps under way (awaited by flushStamps). */
  readonly #stamping = new Set<Promise<void>>();
  /** Present when direct writes were asked for and the platform has O_DIRECT. */
  readonly #direct: DirectWriteMonitor | undefined;
  readonly #selection: FileSelection | undefined;
  /** The part file's index in #paths (one past the torrent's files). */
  readonly #part: number;
  readonly #onNotice: ((message: string) => void) | undefined;
  #closed = false;

  private constructor(root: string, meta: Metainfo, paths: string[], opts: StorageOptions) {
    this.#root = root;
    this.#meta = meta;
    this.#geometry = new PieceGeometry(meta.pieceLength, meta.totalLength);
    this.#paths = paths;
    this.#writable = opts.mode === 'readwrite';
    this.#cache = new HandleCache(handleBudget(opts.maxOpenFiles ?? DEFAULT_MAX_OPEN_FILES), {
      closedError: () => new DiskError('storage is closed'),
      beforeClose: (key, fh) => this.#stampBeforeClose(key, fh),
    });
    this.#openFile = opts.openFile ?? ((file, flags) => open(file, flags, 0o644));
    this.#confine = opts.openFile === undefined;
    this.#small = this.#confine && HAS_PROC_FD ? smallFiles() : undefined;
    this.#direct = opts.directWrites && this.#writable && O_DIRECT !== undefined ? (opts.directMonitor ?? new DirectWriteMonitor()) : undefined;
    this.#selection = opts.selection;
    this.#part = meta.files.length;
    this.#onNotice = opts.onNotice;
  }

  /**
   * Resolve every file safely under `root`. In readwrite mode, create folders
   * and missing files (zero-length ones too) without truncating existing data
   * (only what lies past a file's length in the torrent is cut: #cutToLength);
   * files are sparse, not pre-filled. Existing files are opened read-only
   * (for writing only when a write needs them). Handles stay open (up to the
   * cache's bound) so later operations need not reopen by path. In read mode
   * nothing is created. Every handle is checked to lie inside realpath(root).
   */
  static async open(root: string, meta: Metainfo, opts: StorageOptions): Promise<TorrentStorage> {
    // a torrent named like another torrent's part file in the same folder would be written into by it
    if (opts.mode === 'readwrite' && isPartFileName(meta.files[0]?.path[0] ?? '')) {
      throw new DiskError(`refusing to write ${JSON.stringify(meta.files[0]!.path[0])}: tt keeps a torrent's shared pieces under that name`);
    }
    // ...or like a resume record, which a download replaces when it stops, or a download's lock
    if (opts.mode === 'readwrite' && isLockFileName(meta.files[0]?.path[0] ?? '')) {
      throw new DiskError(`refusing to write ${JSON.stringify(meta.files[0]!.path[0])}: tt keeps a download's lock under that name`);
    }
    if (opts.mode === 'readwrite' && isResumeFileName(meta.files[0]?.path[0] ?? '')) {
      throw new DiskError(`refusing to write ${JSON.stringify(meta.files[0]!.path[0])}: tt keeps a download's resume record under that name`);
    }
    // ...and one with a file named like another torrent's adoption temporary would be truncated and renamed by it
    const tempLike = opts.mode === 'readwrite' ? meta.files.find((f) => f.path.some(isAdoptTempName)) : undefined;
    if (tempLike) {
      throw new DiskError(`refusing to write ${JSON.stringify(tempLike.path.join('/'))}: tt builds newly selected files under that name`);
    }

    const paths = await resolveAllInside(root, meta.files.map((f) => f.path));
    if (opts.selection) paths.push(await resolveInside(root, [opts.selection.partFileName]));
    const storage = new TorrentStorage(path.resolve(root), meta, paths, opts);
    if (!storage.#writable) {
      storage.#rootReal = await realRoot(root).catch(() => undefined); // missing root: files read as missing
      return storage;
    }
    // not the part file (created on its first write), nor BEP 47 padding (zeros, never created, as
    // libtorrent does), nor a file not asked for
    const toCreate: number[] = [];
    for (const [fileIndex, file] of meta.files.entries()) {
      if (!file.padding && (!opts.selection || opts.selection.isSelected(fileIndex))) toCreate.push(fileIndex);
    }
    try {
      // the output folder (a failure is left for the files' creation to report, naming them)
      storage.#madeFolders(path.resolve(root), await mkdirp(root).catch(() => undefined));
      let part: PartSource | undefined;
      try {
        // a file selected now that was not before: its bytes in shared pieces may be in the part file
        if (opts.selection && toCreate.length > 0) part = await storage.#openPartSource();
        await storage.#startFiles(toCreate, part, opts.signal);
      } finally {
        part?.lease.release();
      }
      // with files left unselected, the part file holds their share of wanted pieces: it must stay too
      if (opts.selection && meta.files.some((f, i) => !f.padding && !opts.selection!.isSelected(i))) await storage.#notePartFile();
      // adoption done: any temporary of ours left is a dead run's
      if (opts.selection) await storage.#sweepAdoptTemps();
    } catch (err) {
      await storage.close();
      throw err;
    }
    return storage;
  }

  /**
   * Creates or finds every file of `files` (indices) at open(), CREATE_PARALLEL at a time,
   * folder by folder: each folder is made (mkdirp) and, with the default opener where /proc
   * is there, opened once (openFolderInside: confined, no symlink), its files created or
   * looked up through that handle (/proc/self/fd/N/name, so a folder swapped for a symlink
   * meanwhile is not followed), and its place checked again once its last file is done
   * (the per-file check after each open did the same, 20,000 times for 20,000 files). A
   * file found is lstat'ed there (no open); one created is opened once (O_EXCL), fstat'ed
   * and closed: what a download writes is opened when it writes. Elsewhere, and with a
   * custom opener, each file goes through #openAtStart. Throws DiskError (TtError
   * INTERRUPTED on `signal`); every folder handle is closed by then.
   */
  async #startFiles(files: readonly number[], part: PartSource | undefined, signal: AbortSignal | undefined): Promise<void> {
    // a folder's files one after another, so few folders are open at once whatever the torrent's order
    const dirs = new Map(files.map((i) => [i, path.dirname(this.#paths[i]!)]));
    const dirOf = (i: number): string => dirs.get(i)!;
    const order = [...files].sort((a, b) => (dirOf(a) < dirOf(b) ? -1 : dirOf(a) > dirOf(b) ? 1 : a - b));
    const folders = new Map<string, StartFolder>();
    for (const i of order) {
      const dir = dirOf(i);
      const known = folders.get(dir);
      if (known) {
        known.left++;
        known.files.push(i);
      } else folders.set(dir, { components: this.#meta.files[i]!.path.slice(0, -1), left: 1, files: [i], ready: undefined, created: undefined });
    }
    try {
      await forEachLimit(order, this.#startParallel(), async (fileIndex) => {
        if (signal?.aborted) throw new TtError('INTERRUPTED', 'creating files stopped', { cause: signal.reason });
        const dir = dirOf(fileIndex);
        const folder = folders.get(dir)!;
        folder.ready ??= this.#startFolder(dir, folder.components);
        const opened = await folder.ready;
        if (!(await this.#createdOnWorker(fileIndex, part, opened, folder))) await this.#startFile(fileIndex, part, opened);
        if (--folder.left === 0 && opened.pinned) {
          // done here: the folder must still be where its files belong (as each file's own check said before)
          try {
            await assertOpenedInside(opened.pinned.fh, this.#rootReal!, folder.components);
          } finally {
            await opened.pinned.fh.close().catch(() => undefined);
          }
        }
      });
    } finally {
      for (const folder of folders.values()) {
        const opened = await folder.ready?.catch(() => undefined);
        if (opened?.pinned && folder.left > 0) await opened.pinned.fh.close().catch(() => undefined);
      }
    }
  }

  /**
   * Whether file `fileIndex` was created by the small-file worker (small-files.ts): in a torrent
   * of more files than the handle cache holds, in a folder made just now and pinned (so every
   * file in it is new), with no bytes in the part file, all
   * the folder's such files in one message (open O_EXCL through the pinned folder, fstat, close:
   * three pool calls per file on the main thread otherwise). Any other answer: false, and
   * #startFile does it the usual way (which finds what is there, or reports what went wrong).
   */
  async #createdOnWorker(fileIndex: number, part: PartSource | undefined, opened: OpenedFolder, folder: StartFolder): Promise<boolean> {
    const pinned = opened.pinned;
    // with few files, #createAt keeps each handle it opens (the cache has room): writes then go to the very file
    // created, even if its path is swapped or deleted meanwhile; the worker keeps none, so it does only what
    // would not have been kept anyway
    if (this.#small === undefined || !opened.fresh || pinned === undefined || this.#meta.files.length <= this.#cache.capacity) return false;
    const noPartBytes = (i: number): boolean => this.#partRanges(i, part).length === 0;
    if (!noPartBytes(fileIndex)) return false;
    folder.created ??= (async () => {
      const eligible = folder.files.filter(noPartBytes);
      const results = await this.#tracked(this.#small!.create(eligible.map((i) => path.join(pinned.path, path.basename(this.#paths[i]!)))));
      return new Map(eligible.map((i, k) => [i, results[k]]));
    })();
    const made = (await folder.created).get(fileIndex);
    if (made === undefined) return false;
    const [dev, size, mtimeNs, ctimeNs, ino] = made;
    this.#created.add(fileIndex);
    this.#identity.set(fileIndex, { dev: BigInt(dev), ino: BigInt(ino) }); // what must still be there when the download completes
    this.#keepStamp(fileIndex, [size, mtimeNs, ctimeNs, ino]); // created: as tt left it
    return true;
  }

  /** File `fileIndex`'s edge ranges (its first and last piece's shares) that start inside the part file `part`, if any. */
  #partRanges(fileIndex: number, part: PartSource | undefined): [number, number][] {
    return part ? edgeRanges(this.#meta.files[fileIndex]!, this.#meta.pieceLength).filter(([from]) => from < part.size) : [];
  }

  /** Files #startFiles does at once: each may hold a file and a folder open beside the cache's handles, all within its bound. */
  #startParallel(): number {
    return Math.max(1, Math.min(CREATE_PARALLEL, Math.floor(this.#cache.capacity / 4)));
  }

  /** Whether a handle open() made may stay in the cache: room for it beside those of the files and folders under way. */
  #roomToKeep(): boolean {
    return this.#cache.held + 2 * this.#startParallel() + 1 < this.#cache.capacity;
  }

  /** Makes folder `dir` (`components` under root) and, where it can be, opens it for #startFile. */
  async #startFolder(dir: string, components: readonly string[]): Promise<OpenedFolder> {
    let first: string | undefined;
    try {
      first = await mkdirp(dir);
    } catch (err) {
      throw toDiskError('create', dir, err);
    }
    this.#madeFolders(dir, first);
    const fresh = first !== undefined; // made just now: its files are all new
    if (!this.#confine) return { fresh, pinned: undefined };
    this.#rootReal ??= await realRoot(this.#root);
    let folder;
    try {
      folder = await openFolderInside(this.#rootReal, components);
    } catch (err) {
      throw err instanceof DiskError ? err : toDiskError('open', dir, err);
    }
    if (folder.path.startsWith('/proc/self/fd/')) return { fresh, pinned: folder };
    await folder.fh.close().catch(() => undefined); // no /proc: names in it are not pinned to it, each file is checked on its own
    return { fresh, pinned: undefined };
  }

  /**
   * File `fileIndex` at open(): found as it is, or created (sparse; or adopted from the part
   * file, see #adopt), its identity and stamp taken, cut to its length when longer. Throws DiskError.
   */
  async #startFile(fileIndex: number, part: PartSource | undefined, folder: OpenedFolder): Promise<void> {
    const file = this.#paths[fileIndex]!;
    let ranges = this.#partRanges(fileIndex, part);
    const at = folder.pinned ? path.join(folder.pinned.path, path.basename(file)) : undefined;
    let st = at !== undefined && (!folder.fresh || ranges.length > 0) ? await this.#foundAt(fileIndex, at) : undefined;
    if (!st) {
      // the part file holds nothing but zeros for it (holes, mostly: pieces no run wrote): no bytes to move,
      // so it is created as any file, as long as they reached (zeros), with no temporary, sync nor rename
      let extend = 0;
      if (ranges.length > 0 && (await onlyZeros(part!, this.#paths[this.#part]!, ranges))) {
        extend = Math.max(...ranges.map(([, to]) => Math.min(to, part!.size))) - this.#meta.files[fileIndex]!.offset;
        ranges = [];
      }
      if (at !== undefined && ranges.length === 0) st = await this.#createAt(fileIndex, at, extend);
      if (!st) {
        const lease = await this.#openAtStart(fileIndex, part, ranges, extend);
        try {
          st = await lease.fh.stat({ bigint: true });
        } catch (err) {
          throw toDiskError('read', file, err);
        } finally {
          lease.release();
        }
      }
    }
    this.#identity.set(fileIndex, identityOf(st)); // what must still be there when the download completes
    if (st.size > BigInt(this.#meta.files[fileIndex]!.length)) st = await this.#cutToLength(fileIndex, st.size);
    this.#takeStamp(fileIndex, st); // created, found (cut to its length), or adopted and renamed: as tt left it
  }

  /**
   * File `fileIndex`'s stat when it is at `at` (in its pinned folder), undefined when missing;
   * DiskError for anything but a regular file. While the cache has room its handle is kept
   * (read-only), as #openAtStart keeps it: a write then finds the very file open() found.
   */
  async #foundAt(fileIndex: number, at: string): Promise<BigIntStats | undefined> {
    const file = this.#paths[fileIndex]!;
    let st: BigIntStats;
    try {
      st = await lstat(at, { bigint: true });
    } catch (err) {
      if (errnoOf(err) === 'ENOENT') return undefined;
      throw toDiskError('read', file, err);
    }
    if (st.isSymbolicLink()) throw new DiskError(`refusing ${JSON.stringify(file)}: is a symbolic link`);
    if (!st.isFile()) throw new DiskError(`refusing ${JSON.stringify(file)}: not a regular file`);
    if (!this.#roomToKeep()) return st;
    try {
      return await this.#keep(fileIndex, READ, await open(at, READ_FLAGS));
    } catch (err) {
      throw toDiskError('read', file, err);
    }
  }

  /** Creates file `fileIndex` at `at` (in its pinned folder; O_EXCL), `extend` bytes long (sparse); its stat, or undefined when something is there already. */
  async #createAt(fileIndex: number, at: string, extend: number): Promise<BigIntStats | undefined> {
    const file = this.#paths[fileIndex]!;
    let fh: FileHandle;
    try {
      fh = await open(at, CREATE_NEW_FLAGS, 0o644);
    } catch (err) {
      if (errnoOf(err) === 'EEXIST') return undefined;
      throw toDiskError('create', file, err);
    }
    this.#created.add(fileIndex);
    try {
      if (extend > 0) await fh.truncate(extend).catch(async (err: unknown) => {
        await fh.close().catch(() => undefined);
        throw err;
      });
      return await this.#keep(fileIndex, WRITE, fh);
    } catch (err) {
      throw toDiskError('create', file, err);
    }
  }

  /**
   * `fh`'s stat; `fh` (file `fileIndex` as `kind`) is then kept in the cache while it has room
   * (handles stay open for the next operation, as #openAtStart's do), else closed.
   */
  async #keep(fileIndex: number, kind: Kind, fh: FileHandle): Promise<BigIntStats> {
    if (!this.#roomToKeep()) {
      try {
        return await fh.stat({ bigint: true });
      } finally {
        await fh.close().catch(() => undefined);
      }
    }
    const lease = await this.#cache.acquire(this.#key(fileIndex, kind), () => Promise.resolve(fh));
    if (lease.fh !== fh) await fh.close().catch(() => undefined); // one was there already (never at open)
    try {
      return await lease.fh.stat({ bigint: true });
    } finally {
      lease.release();
    }
  }

  /**
   * File `fileIndex` at open(), leased: created when missing (sparse, `extend`
   * bytes long; or adopted from the part file's `ranges`, see #adopt), else
   * opened read-only as found. Throws DiskError.
   */
  async #openAtStart(fileIndex: number, part: PartSource | undefined, ranges: readonly [number, number][], extend: number): Promise<Lease> {
    const file = this.#paths[fileIndex]!;
    if (ranges.length === 0) {
      try {
        const lease = await this.#cache.acquire(this.#key(fileIndex, WRITE), () => this.#serialized(fileIndex, () => this.#openConfined(fileIndex, CREATE_NEW_FLAGS)));
        this.#created.add(fileIndex);
        if (extend > 0) await lease.fh.truncate(extend).catch((err: unknown) => {
          lease.release();
          throw toDiskError('create', file, err);
        });
        return lease;
      } catch (err) {
        if (errnoOf(err) !== 'EEXIST') throw toDiskError('create', file, err);
      }
    }
    // there already (one with bytes in the part file holds its own: see #adopt)
    try {
      return await this.#cache.acquire(this.#key(fileIndex, READ), () => this.#serialized(fileIndex, () => this.#openRead(fileIndex)));
    } catch (err) {
      if (ranges.length === 0 || errnoOf(err) !== 'ENOENT') throw toDiskError('read', file, err);
    }
    try {
      return await this.#cache.acquire(this.#key(fileIndex, WRITE), () => this.#serialized(fileIndex, () => this.#adopt(fileIndex, ranges, part!)));
    } catch (err) {
      throw toDiskError('create', file, err);
    }
  }

  /**
   * File `fileIndex`, found `size` bytes long, is longer than the torrent
   * says (appended to, or another file under its name): no piece covers the
   * bytes past its length, so no check sees them, and a download that left
   * them would not hold the torrent's bytes. Cuts it to its length, through
   * a handle for writing like a piece's (a file with other hard links is
   * copied first, so the other names keep every byte; a file that cannot be
   * written fails naming it), says so (onNotice), and returns its stat after.
   */
  async #cutToLength(fileIndex: number, size: bigint): Promise<BigIntStats> {
    const file = this.#paths[fileIndex]!;
    const length = this.#meta.files[fileIndex]!.length;
    let st: BigIntStats;
    try {
      st = await this.#withFile(fileIndex, 'write', async (fh) => {
        await fh.truncate(length);
        return fh.stat({ bigint: true });
      });
    } catch (err) {
      const why = toDiskError('write', file, err).message.replace(/^cannot write "[^"]*": /, '');
      throw new DiskError(`cannot write ${JSON.stringify(file)}: it is ${size} bytes, longer than the torrent's ${length}, and cutting it to that failed: ${why}`, err);
    }
    this.#onNotice?.(`${JSON.stringify(file)} was ${size} bytes, longer than the torrent's ${length}: cut the ${size - BigInt(length)} bytes past its end`);
    return st;
  }

  /** The part file leased read-only, or undefined when there is none. */
  async #openPartSource(): Promise<PartSource | undefined> {
    let lease: Lease;
    try {
      lease = await this.#cache.acquire(this.#key(this.#part, READ), () => this.#serialized(this.#part, () => this.#openRead(this.#part)));
    } catch (err) {
      if (errnoOf(err) === 'ENOENT') return undefined;
      throw toDiskError('read', this.#paths[this.#part]!, err);
    }
    try {
      return { lease, size: (await lease.fh.stat()).size };
    } catch (err) {
      lease.release();
      throw toDiskError('read', this.#paths[this.#part]!, err);
    }
  }

  /** Remembers the part file's identity when it exists (it then holds bytes of wanted pieces). */
  async #notePartFile(): Promise<void> {
    try {
      const st = await lstat(this.#paths[this.#part]!, { bigint: true });
      if (st.isFile()) this.#identity.set(this.#part, identityOf(st));
    } catch {
      // none yet: its first write creates it and is remembered then
    }
  }

  /**
   * Builds a newly selected file out of the part file: an earlier run that
   * did not select it kept there its share of the pieces it has in common
   * with selected files (`ranges`, within its first and last piece), which
   * check.ts counted as present. Written under adoptTempName() in the file's
   * folder, synced, then renamed into place, so that the file never exists
   * without those bytes (see the module header). Returns the file's handle.
   */
  async #adopt(fileIndex: number, ranges: readonly [number, number][], part: PartSource): Promise<FileHandle> {
    const file = this.#meta.files[fileIndex]!;
    const fh = await this.#buildBeside(fileIndex, async (into) => {
      for (const [from, to] of ranges) await copyRange(part.lease.fh, this.#paths[this.#part]!, into, from, to, -file.offset);
    });
    return fh;
  }

  /**
   * Makes file `fileIndex` anew under its temporary name (adoptTempName, in
   * its folder; a leftover is reused unless something else links to it), has
   * `fill` write it, syncs it, and renames it into place, checked to be
   * inside the root. Returns its handle (read-write). Throws; the temporary's
   * handle is closed on failure.
   */
  async #buildBeside(fileIndex: number, fill: (fh: FileHandle) => Promise<void>): Promise<FileHandle> {
    const components = this.#components(fileIndex);
    const target = this.#paths[fileIndex]!;
    const name = adoptTempName(this.#meta, fileIndex);
    const temp = path.join(path.dirname(target), name);
    const fh = await this.#openConfinedPath(temp, [...components.slice(0, -1), name], CREATE_FLAGS);
    try {
      // a leftover of a run that died here is ours to reuse, unless something else links to it
      const { nlink } = await fh.stat();
      if (nlink > 1) throw new DiskError(`refusing ${JSON.stringify(temp)}: it has ${nlink - 1} other hard link(s)`);
      await fh.truncate(0);
      await fill(fh);
      await fh.datasync(); // the bytes before the name: after a power cut the file is whole or absent
      await rename(temp, target);
      if (this.#confine) await assertOpenedInside(fh, this.#rootReal!, components);
    } catch (err) {
      await fh.close().catch(() => undefined);
      throw err;
    }
    return fh;
  }

  /**
   * Deletes this torrent's adoption temporaries left by runs that died while
   * adopting (see the module header); returns how many. Never throws: a
   * folder or temporary that cannot be handled is left for the next open.
   */
  async #sweepAdoptTemps(): Promise<number> {
    // file i's temporary lives in file i's folder (the part file's in root): the names to look for, per folder
    const folders = new Map<string, { components: readonly string[]; names: Set<string> }>();
    const add = (components: readonly string[], name: string): void => {
      const key = components.join('/'); // components hold no separator (parseTorrent, resolveAllInside)
      let folder = folders.get(key);
      if (!folder) folders.set(key, (folder = { components, names: new Set() }));
      folder.names.add(name);
    };
    for (const [i, file] of this.#meta.files.entries()) {
      if (!file.padding) add(file.path.slice(0, -1), adoptTempName(this.#meta, i)); // padding is never created, so never adopted
    }
    add([], adoptTempName(this.#meta, this.#part));
    let removed = 0;
    const now = Date.now();
    try {
      const rootReal = (this.#rootReal ??= await realRoot(this.#root));
      // each holds a folder open while it looks: within the descriptor budget too
      await forEachLimit([...folders.values()], handleBudget(SWEEP_PARALLEL), async ({ components, names }) => {
        let folder;
        try {
          folder = await openFolderInside(rootReal, components);
        } catch {
          return; // no such folder (its files are not selected), or not one we may touch
        }
        try {
          for (const name of await readdir(folder.path)) {
            if (names.has(name) && (await removeLeftover(path.join(folder.path, name), now))) removed++;
          }
        } catch {
          // unreadable: the next open tries again
        } finally {
          await folder.fh.close().catch(() => undefined);
        }
      });
    } catch {
      // no root: nothing to sweep
    }
    return removed;
  }

  /** Write one whole, verified-or-not piece; spans across files are written in parallel. */
  async writePiece(index: number, data: Buffer): Promise<void> {
    this.#assertOpen();
    if (!this.#writable) throw new DiskError('storage was opened read-only');
    if (this.#lost) throw this.#lost;
    if (!this.#geometry.isValidIndex(index)) throw new RangeError(`piece ${index} out of range`);
    if (data.length !== this.#geometry.pieceSize(index)) {
      throw new RangeError(`piece ${index} is ${this.#geometry.pieceSize(index)} bytes, got ${data.length}`);
    }
    const spans = spansFor(this.#meta.files, this.#geometry.pieceOffset(index), data.length);
    let at = 0;
    const writes: Promise<void>[] = [];
    const small: { span: FileSpan; chunk: Buffer }[] = [];
    for (const span of spans) {
      const chunk = data.subarray(at, at + span.length);
      at += span.length;
      if (this.#meta.files[span.fileIndex]!.padding) continue;
      if (this.#inPartFile(span.fileIndex)) writes.push(this.#writeUnselected(span, chunk));
      else if (this.#writesSmall(span.fileIndex)) small.push({ span, chunk });
      else writes.push(this.#writeSpan(span.fileIndex, chunk, span.fileOffset));
    }
    if (small.length > 0) writes.push(this.#writeSmallFiles(small));
    await settleAll(writes);
  }

  /** Bytes written with O_DIRECT so far, and why direct writes stopped if they did (undefined: not asked for or no O_DIRECT). */
  get directWrites(): { bytes: number; offReason: string | undefined } | undefined {
    return this.#direct ? { bytes: this.#direct.directBytes, offReason: this.#direct.offReason } : undefined;
  }

  async #writeSpan(fileIndex: number, chunk: Buffer, position: number): Promise<void> {
    const split = this.#direct?.enabled && inAlignedStore(chunk) ? splitForDirect(chunk.byteOffset, position, chunk.length) : undefined;
    if (!split) return this.#writeBuffered(fileIndex, chunk, position);
    const { head, middle } = split;
    const parts: Promise<void>[] = [];
    if (head > 0) parts.push(this.#writeBuffered(fileIndex, chunk.subarray(0, head), position));
    parts.push(this.#writeDirect(fileIndex, chunk.subarray(head, head + middle), position + head));
    const tail = head + middle;
    if (tail < chunk.length) parts.push(this.#writeBuffered(fileIndex, chunk.subarray(tail), position + tail));
    await settleAll(parts);
  }

  /**
   * Whether file `fileIndex`'s writes go to the small-file worker (small-files.ts): a file of at
   * most SMALL_FILE_BYTES that storage created or found (its identity known), with the default
   * opener on Linux (/proc/self/fd), once realpath(root) is known.
   */
  #writesSmall(fileIndex: number): boolean {
    return this.#small !== undefined && this.#rootReal !== undefined && this.#meta.files[fileIndex]!.length <= SMALL_FILE_BYTES && this.#identity.has(fileIndex);
  }

  /** A small-file worker job per span, their bytes one after another in the message's buffer; the caller adds the identity. */
  #smallJobs(spans: readonly FileSpan[]): SmallRead[] {
    let offset = 0;
    return spans.map((span) => {
      const job = { path: this.#paths[span.fileIndex]!, expected: path.join(this.#rootReal!, ...this.#meta.files[span.fileIndex]!.path), position: span.fileOffset, offset, length: span.length };
      offset += span.length;
      return job;
    });
  }

  /** `request` (one of this storage's on the worker), remembered until answered: close() waits for it. */
  #tracked<T>(request: Promise<T>): Promise<T> {
    this.#onWorker.add(request);
    void request.finally(() => this.#onWorker.delete(request));
    return request;
  }

  /** Writes these shares of a piece on the small-file worker, in one message; a share it answers "again" is written the usual way. */
  async #writeSmallFiles(items: readonly { span: FileSpan; chunk: Buffer }[]): Promise<void> {
    const buffer = new ArrayBuffer(items.reduce((n, { chunk }) => n + chunk.length, 0));
    const view = new Uint8Array(buffer);
    const jobs: SmallWrite[] = this.#smallJobs(items.map(({ span }) => span)).map((job, k) => {
      view.set(items[k]!.chunk, job.offset);
      const { dev, ino } = this.#identity.get(items[k]!.span.fileIndex)!;
      return { ...job, dev: String(dev), ino: String(ino) };
    });
    const results = await this.#tracked(this.#small!.write(jobs, buffer));
    const again: Promise<void>[] = [];
    items.forEach(({ span, chunk }, k) => {
      const stamp = results[k];
      if (stamp === undefined || this.#closed) {
        again.push(this.#writeSpan(span.fileIndex, chunk, span.fileOffset));
        return;
      }
      this.#written.add(span.fileIndex);
      this.#everWritten.add(span.fileIndex);
      this.#keepStamp(span.fileIndex, stamp);
    });
    await settleAll(again);
  }

  /** A positioned write through the page cache. */
  async #writeBuffered(fileIndex: number, bytes: Buffer, position: number): Promise<void> {
    // stamped while still leased: a handle given back to a waiting file is closed at once, and takes the stamp then
    await this.#withFile(fileIndex, 'write', async (fh) => {
      await writeFully(fh, bytes, position);
      this.#stampSoon(fileIndex);
    });
  }

  /** An aligned write with O_DIRECT; through the page cache instead when the filesystem refuses it (EINVAL). */
  async #writeDirect(fileIndex: number, bytes: Buffer, position: number): Promise<void> {
    const monitor = this.#direct!;
    monitor.begin();
    let written = 0;
    try {
      await this.#withFile(
        fileIndex,
        'write',
        async (fh) => {
          await writeFully(fh, bytes, position);
          this.#stampSoon(fileIndex); // while leased, as #writeBuffered
        },
        true,
      );
      written = bytes.length;
    } catch (err) {
      if (!(err instanceof DiskError && err.syscallCode === 'EINVAL')) throw err;
      monitor.disable('the file system refuses O_DIRECT (EINVAL)');
    } finally {
      monitor.end(written);
    }
    if (written === 0) await this.#writeBuffered(fileIndex, bytes, position);
  }

  /** Bytes for a peer's request. DiskError when a file is missing or short. */
  async readBlock(index: number, begin: number, length: number): Promise<Buffer> {
    this.#assertOpen();
    if (!this.#geometry.isValidIndex(index) || begin < 0 || length < 0 || begin + length > this.#geometry.pieceSize(index)) {
      throw new RangeError(`block ${index}:${begin}+${length} out of range`);
    }
    try {
      return await this.#readRange(this.#geometry.pieceOffset(index) + begin, Buffer.allocUnsafe(length));
    } catch (err) {
      if (err instanceof MissingData) throw new DiskError(err.message);
      throw err;
    }
  }

  /**
   * The whole piece, or undefined when any covering file is missing or short.
   * Reads into `into` when it is given and exactly the piece's size.
   */
  async readPiece(index: number, into?: Buffer): Promise<Buffer | undefined> {
    this.#assertOpen();
    if (!this.#geometry.isValidIndex(index)) throw new RangeError(`piece ${index} out of range`);
    const size = this.#geometry.pieceSize(index);
    try {
      return await this.#readRange(this.#geometry.pieceOffset(index), into?.length === size ? into : Buffer.allocUnsafe(size));
    } catch (err) {
      if (err instanceof MissingData) return undefined;
      throw err;
    }
  }

  /**
   * Deletes the part file when every file is selected (so each byte it holds
   * is also in its own file, adopted at open) and the caller knows every
   * piece is verified. Returns whether there was one to delete. With files
   * left unselected it stays: it is the only copy of their shared bytes.
   */
  async removeSpentPartFile(): Promise<boolean> {
    this.#assertOpen();
    const selection = this.#selection;
    if (!this.#writable || !selection || this.#meta.files.some((f, i) => !f.padding && !selection.isSelected(i))) return false;
    await this.#forget(this.#part);
    this.#identity.delete(this.#part);
    const file = this.#paths[this.#part]!;
    try {
      await rm(await resolveInside(this.#root, [selection.partFileName]));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw toDiskError('write', file, err);
    }
    return true;
  }

  /**
   * Before a download is called complete (every wanted piece written): that
   * every file it needs is still at its path as the very file tt created or
   * found (same device and inode, so not deleted, even with writes still
   * landing in its open handle, nor replaced), at least as long as the
   * torrent says, and, with files left unselected, that the part file is
   * too. Takes the pending stamps first (a write into a deleted file shows
   * there). Throws DiskError naming the first file that is not; read mode:
   * nothing to check. `sizes: false` (mid-download, files still growing as
   * their pieces come): identity only.
   */
  async assertFilesInPlace(opts: { sizes?: boolean } = {}): Promise<void> {
    const sizes = opts.sizes !== false;
    this.#assertOpen();
    await this.flushStamps();
    if (this.#lost) throw this.#lost;
    const problems = new Map<number, DiskError>();
    const files = [...this.#identity.keys()];
    // many files: lstat'ed on a worker in one message; what it could not (missing, say), one by one here
    const batch = await statMany(files.map((i) => this.#paths[i]!));
    await forEachLimit(files, STAT_PARALLEL, async (i, k) => {
      const file = this.#paths[i]!;
      let st: Identity & { isFile: boolean; size: bigint } | undefined = batch.at(k);
      if (st === undefined) {
        try {
          const found = await lstat(file, { bigint: true });
          st = { isFile: found.isFile(), dev: found.dev, ino: found.ino, size: found.size };
        } catch (err) {
          const code = errnoOf(err);
          problems.set(i, code === 'ENOENT' || code === 'ENOTDIR' ? this.#deleted(i, err) : toDiskError('read', file, err));
          return;
        }
      }
      if (!st.isFile || !sameFile(st, this.#identity.get(i)!)) problems.set(i, this.#replaced(i, 'read'));
      else if (sizes && i < this.#part && st.size < BigInt(this.#meta.files[i]!.length)) {
        problems.set(i, new DiskError(`cannot read ${JSON.stringify(file)}: ${st.size} of ${this.#meta.files[i]!.length} bytes, cut short while downloading (the pieces past its end are gone)`));
      }
    });
    if (problems.size > 0) throw problems.get(Math.min(...problems.keys()))!;
  }

  /**
   * fdatasync every file written since open or the last sync, and the
   * existing ones among `also` (file indices: data found on disk, which a
   * killed run may have left in the page cache), so it survives a power cut
   * before a resume record vouches for it. Throws DiskError.
   */
  async sync(also: Iterable<number> = []): Promise<void> {
    const written = [...this.#written];
    this.#written.clear();
    const found = [...also].filter((i) => !written.includes(i) && this.#paths[i] !== undefined && !this.#meta.files[i]?.padding);
    try {
      await forEachLimit(written, SYNC_PARALLEL, (fileIndex) => this.#withFile(fileIndex, 'write', (fh) => fh.datasync()));
      await forEachLimit(found, SYNC_PARALLEL, (fileIndex) =>
        this.#withFile(fileIndex, 'read', (fh) => fh.datasync()).catch((err: unknown) => {
          if (!(err instanceof MissingData)) throw err; // gone: nothing to vouch for there
        }),
      );
    } catch (err) {
      for (const i of written) this.#written.add(i); // not known to be on disk
      throw err;
    }
  }

  /**
   * Each file's stamp after tt created or last wrote it (the part file at index files.length).
   * Call flushStamps() first: a write's stamp is taken up to STAMP_DELAY_MS after it.
   */
  stamps(): ReadonlyMap<number, Stamp> {
    return this.#stamps;
  }

  /**
   * Stamp file `fileIndex` STAMP_DELAY_MS after a write, once for all the writes in between.
   * One fstat per write cost 8% of a 1 GiB download's wall time (4,096 fstats through the libuv
   * pool, each a promise and a BigInt Stats); one per file every 20 ms costs nothing measurable.
   * The price: another program's write landing within 20 ms after tt's is taken as tt's own (one
   * fstat per write had the same window, only microseconds wide). The same fstat tells a file
   * deleted while tt writes to it (nlink 0: see #lose).
   */
  #stampSoon(fileIndex: number): void {
    if (this.#stampTimers.has(fileIndex) || this.#closed) return;
    const timer = setTimeout(() => this.#stampNow(fileIndex), STAMP_DELAY_MS);
    timer.unref();
    this.#stampTimers.set(fileIndex, timer);
  }

  /** Take file `fileIndex`'s deferred stamp now (its timer fired, or flushStamps). */
  #stampNow(fileIndex: number): void {
    const timer = this.#stampTimers.get(fileIndex);
    if (timer === undefined) return;
    clearTimeout(timer);
    this.#stampTimers.delete(fileIndex); // a write finishing from here on schedules its own
    if (this.#closed) return;
    const done = this.#withFile(fileIndex, 'read', (fh) => this.#stamp(fileIndex, fh))
      // no stamp: the old one stays, and resume.ts drops the file's pieces (the safe side)
      .catch((err: unknown) => {
        // its name is gone, or leads to another file
        if (err instanceof MissingData && err.absent) this.#lose(fileIndex, this.#deleted(fileIndex, err));
        else if (err instanceof NotOurFile) this.#lose(fileIndex, err);
      })
      .finally(() => this.#stamping.delete(done));
    this.#stamping.add(done);
  }

  /**
   * A written file's handle is about to close (the cache needs its descriptor, or storage
   * closes): its deferred stamp is taken now, through it, after every write it made. Waiting
   * for the timer meant opening the file again (open, /proc check, fstat, fstat, close) for
   * each file a piece crossed: for a torrent of 20,000 small files, 80,000 more trips through
   * the file-system pool. A write through another handle of the file still under way stamps
   * again when it completes (#stampSoon). Through the handle, a file deleted meanwhile says
   * so (nlink 0); one replaced at its path keeps the stamp of the file tt wrote, which is not
   * what the path holds: the safe side, resume.ts then vouches for none of its pieces.
   */
  #stampBeforeClose(key: number, fh: FileHandle): Promise<void> {
    const kind = key % KINDS;
    if (kind === READ || this.#closed) return Promise.resolve();
    const fileIndex = (key - kind) / KINDS;
    const timer = this.#stampTimers.get(fileIndex);
    if (timer === undefined) return Promise.resolve();
    clearTimeout(timer);
    this.#stampTimers.delete(fileIndex);
    const done: Promise<void> = this.#stamp(fileIndex, fh)
      .catch(() => undefined) // no stamp: the old one stays, and resume.ts drops the file's pieces
      .finally(() => this.#stamping.delete(done));
    this.#stamping.add(done);
    return done;
  }

  /** Take every deferred stamp now and wait for them: stamps() is then current. */
  async flushStamps(): Promise<void> {
    for (const fileIndex of [...this.#stampTimers.keys()]) this.#stampNow(fileIndex);
    await Promise.all([...this.#stamping]);
  }

  /** Remember `fh`'s stamp for `fileIndex` (see #takeStamp); a file with no name left is lost. */
  async #stamp(fileIndex: number, fh: FileHandle): Promise<void> {
    const st = await fh.stat({ bigint: true });
    if (st.nlink === 0n) this.#lose(fileIndex, this.#deleted(fileIndex));
    this.#takeStamp(fileIndex, st);
  }

  /** Remember `st` as file `fileIndex`'s stamp, unless a newer one is known (fstats after concurrent writes return in any order). */
  #takeStamp(fileIndex: number, st: BigIntStats): void {
    this.#keepStamp(fileIndex, stampOf(st));
  }

  /** #takeStamp of a stamp already made (the small-file worker's). */
  #keepStamp(fileIndex: number, stamp: Stamp): void {
    const known = this.#stamps.get(fileIndex);
    if (known === undefined || notOlder(known, stamp)) this.#stamps.set(fileIndex, stamp);
  }

  /**
   * File `fileIndex` is not at its path any more (deleted, or its folder, while
   * tt held it open; or replaced): when it is one that must stay (#identity),
   * every later write fails with `why`, and its handles are let go.
   */
  #lose(fileIndex: number, why: DiskError): void {
    if (!this.#identity.has(fileIndex)) return; // an unselected file's bytes are in the part file too
    this.#lost ??= why;
    void this.#forget(fileIndex);
  }

  /** The error for file `fileIndex` deleted while tt wrote it. */
  #deleted(fileIndex: number, cause?: unknown): DiskError {
    return new DiskError(`cannot write ${JSON.stringify(this.#paths[fileIndex])}: deleted or moved while downloading (the pieces verified in it are not at this path any more)`, cause);
  }

  /** The error for another file found at file `fileIndex`'s path. */
  #replaced(fileIndex: number, op: 'read' | 'write'): DiskError {
    return new NotOurFile(`cannot ${op} ${JSON.stringify(this.#paths[fileIndex])}: replaced while downloading (not the file tt wrote)`);
  }

  /** Close every handle. Later calls fail with DiskError. */
  /**
   * `discardUntouched`: a download that ends with nothing verified (no peer,
   * a dead tracker, Ctrl-C at once) takes away what it made: the files it
   * created and never wrote (still the same, still empty) and then the
   * folders it created, when empty. Other clients create files on their
   * first write; tt creates them at start, and so cleans up after itself.
   */
  async close(opts: { discardUntouched?: boolean } = {}): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const timer of this.#stampTimers.values()) clearTimeout(timer);
    this.#stampTimers.clear();
    await Promise.all([...this.#stamping]);
    await Promise.all([...this.#onWorker]);
    await this.#cache.close();
    if (opts.discardUntouched) await this.#discardUntouched();
  }

  async #discardUntouched(): Promise<void> {
    for (const i of this.#created) {
      if (this.#everWritten.has(i)) continue;
      const file = this.#paths[i]!;
      const made = this.#identity.get(i);
      const st = await lstat(file, { bigint: true }).catch(() => undefined);
      if (!st || !made || !st.isFile() || !sameFile(st, made) || st.size !== 0n) continue; // not ours as we left it
      await unlink(file).catch(() => undefined);
    }
    // deepest first; a folder holding anything else stays
    for (const dir of [...this.#createdFolders].sort((a, b) => b.length - a.length)) await rmdir(dir).catch(() => undefined);
  }

  /** `first` (mkdirp's answer for `dir`) and every folder below it down to `dir` were created by this open. */
  #madeFolders(dir: string, first: string | undefined): void {
    for (const d of foldersMade(dir, first)) this.#createdFolders.add(d);
  }

  /** Files this open created (O_EXCL), folders it created, files it ever wrote: what a discarded download removes. */
  readonly #created = new Set<number>();
  readonly #createdFolders = new Set<string>();
  readonly #everWritten = new Set<number>();



  /** Number of file descriptors currently held (for tests and diagnostics). */
  get openFiles(): number {
    return this.#cache.held;
  }

  async #readRange(offset: number, out: Buffer): Promise<Buffer> {
    const length = out.length;
    const spans = spansFor(this.#meta.files, offset, length);
    let at = 0;
    const small: { span: FileSpan; target: Buffer }[] = [];
    const reads = spans.map((span: FileSpan) => {
      const target = out.subarray(at, at + span.length);
      at += span.length;
      if (this.#meta.files[span.fileIndex]!.padding) {
        target.fill(0); // BEP 47 padding reads as zeros
        return Promise.resolve();
      }
      if (this.#inPartFile(span.fileIndex)) return this.#readUnselected(span, target);
      if (this.#readsSmall(span.fileIndex)) {
        small.push({ span, target });
        return Promise.resolve();
      }
      return this.#readSpan(span, target);
    });
    if (small.length > 0) reads.push(this.#readSmallFiles(small));
    await settleAll(reads);
    return out;
  }

  /** A span of a selected file (or of a torrent without selection) into `target`, through the handle cache. */
  #readSpan(span: FileSpan, target: Buffer): Promise<void> {
    const fromFile = this.#withFile(span.fileIndex, 'read', async (fh) => {
      const got = await readFully(fh, target, span.fileOffset);
      if (got < span.length) throw new MissingData(`cannot read ${JSON.stringify(this.#paths[span.fileIndex])}: shorter than expected (data missing)`);
    });
    if (!this.#selection) return fromFile;
    // a file an earlier selective run did not create: its share of shared pieces is in the part file
    // (check.ts verified it there; a download adopts it when it creates the file, a seed reads it in place)
    return fromFile.catch(async (err: unknown) => {
      if (!(err instanceof MissingData && err.absent)) throw err;
      const got = await this.#withFile(this.#part, 'read', (fh) => readFully(fh, target, this.#partOffset(span)));
      if (got < span.length) throw err;
    });
  }

  /**
   * Whether a read of file `fileIndex` goes to the small-file worker (small-files.ts): a file of
   * at most SMALL_FILE_BYTES with no handle open in the cache (one that is open reads for one pool
   * call), once realpath(root) is known.
   */
  #readsSmall(fileIndex: number): boolean {
    return (
      this.#small !== undefined &&
      this.#rootReal !== undefined &&
      this.#meta.files[fileIndex]!.length <= SMALL_FILE_BYTES &&
      !this.#cache.has(this.#key(fileIndex, READ)) &&
      !this.#cache.has(this.#key(fileIndex, WRITE))
    );
  }

  /** Reads these spans on the small-file worker, in one message; a span it answers "again" is read the usual way. */
  async #readSmallFiles(items: readonly { span: FileSpan; target: Buffer }[]): Promise<void> {
    const jobs: SmallRead[] = this.#smallJobs(items.map(({ span }) => span)).map((job, k) => {
      const known = this.#writable ? this.#identity.get(items[k]!.span.fileIndex) : undefined; // as #openRead checks
      return known ? { ...job, dev: String(known.dev), ino: String(known.ino) } : job;
    });
    const size = items.reduce((n, { span }) => n + span.length, 0);
    const { buffer, got } = await this.#tracked(this.#small!.read(jobs, new ArrayBuffer(size)));
    const bytes = Buffer.from(buffer);
    const again: Promise<void>[] = [];
    items.forEach(({ span, target }, k) => {
      if (got[k] === span.length && !this.#closed) bytes.copy(target, 0, jobs[k]!.offset, jobs[k]!.offset + span.length);
      else again.push(this.#readSpan(span, target));
    });
    await settleAll(again);
  }

  /**
   * A span of an unselected file: from the file itself when an earlier run
   * created it (writes keep it current, see writePiece), else from the part
   * file. check.ts reads the same way.
   */
  async #readUnselected(span: FileSpan, target: Buffer): Promise<void> {
    const fromFile = await this.#withFile(span.fileIndex, 'read', (fh) => readFully(fh, target, span.fileOffset)).catch((err: unknown) => {
      if (err instanceof MissingData && err.absent) return undefined; // no such file: the part file has its bytes
      throw err;
    });
    const [got, file] = fromFile !== undefined ? [fromFile, span.fileIndex] : [await this.#withFile(this.#part, 'read', (fh) => readFully(fh, target, this.#partOffset(span))), this.#part];
    if (got < span.length) throw new MissingData(`cannot read ${JSON.stringify(this.#paths[file])}: shorter than expected (data missing)`);
  }

  /** An unselected file's span goes to the part file, and into the file itself when an earlier run created it. */
  async #writeUnselected(span: FileSpan, chunk: Buffer): Promise<void> {
    await this.#writeBuffered(this.#part, chunk, this.#partOffset(span));
    await this.#writeBuffered(span.fileIndex, chunk, span.fileOffset).catch((err: unknown) => {
      if (!(err instanceof DiskError && err.syscallCode === 'ENOENT')) throw err;
    });
  }

  /** Whether a span of this file is kept in the part file (an unselected file). */
  #inPartFile(fileIndex: number): boolean {
    return this.#selection !== undefined && !this.#selection.isSelected(fileIndex);
  }

  /** Where a span of an unselected file lives in the part file: its offset in the torrent. */
  #partOffset(span: FileSpan): number {
    return this.#meta.files[span.fileIndex]!.offset + span.fileOffset;
  }

  /**
   * Runs `fn` with a handle of file `fileIndex` leased from the cache: for a
   * write its read-write handle (`direct`: its O_DIRECT one), for a read the
   * read-write one when it is open, else a read-only one. Throws DiskError, or
   * MissingData for a read of a file that is not there.
   */
  async #withFile<T>(fileIndex: number, op: 'read' | 'write', fn: (fh: FileHandle) => Promise<T>, direct = false): Promise<T> {
    const file = this.#paths[fileIndex]!;
    const kind: Kind = direct ? DIRECT : op === 'write' || this.#cache.has(this.#key(fileIndex, WRITE)) ? WRITE : READ;
    let lease: Lease;
    try {
      lease = await this.#cache.acquire(this.#key(fileIndex, kind), () => this.#serialized(fileIndex, () => this.#openKind(fileIndex, kind)));
    } catch (err) {
      if (errnoOf(err) === 'ENOENT') {
        if (op === 'read') throw new MissingData(`cannot read ${JSON.stringify(file)}: missing`, true);
        if (this.#identity.has(fileIndex)) throw this.#deleted(fileIndex, err); // it was there when the download began
      }
      throw toDiskError(op, file, err);
    }
    try {
      const result = await fn(lease.fh);
      if (op === 'write') {
        this.#written.add(fileIndex);
        this.#everWritten.add(fileIndex);
      }
      return result;
    } catch (err) {
      if (err instanceof MissingData) throw err;
      throw toDiskError(op, file, err);
    } finally {
      lease.release();
    }
  }

  #key(fileIndex: number, kind: Kind): number {
    return fileIndex * KINDS + kind;
  }

  /** Stop using file `fileIndex`'s open handles (they are closed once idle); resolves when they are. */
  async #forget(fileIndex: number, keep?: Kind): Promise<void> {
    await Promise.all(([READ, WRITE, DIRECT] as const).filter((k) => k !== keep).map((k) => this.#cache.discard(this.#key(fileIndex, k))));
  }

  /** Runs `open` for file `fileIndex` after the opens of it already under way (writable storage; read mode runs it at once). */
  #serialized<T>(fileIndex: number, open: () => Promise<T>): Promise<T> {
    if (!this.#writable) return open();
    const run = (this.#opening.get(fileIndex) ?? Promise.resolve()).then(open);
    const tail = run.then(
      () => undefined,
      () => undefined,
    );
    this.#opening.set(fileIndex, tail);
    void tail.then(() => {
      if (this.#opening.get(fileIndex) === tail) this.#opening.delete(fileIndex);
    });
    return run;
  }

  /**
   * Opens file `fileIndex` for `kind`. Writable storage checks what it opened:
   * it must be the file open() created or found (else "replaced"), and one
   * with other hard links is copied to a file of its own first (#breakLink),
   * for writing (a read of it is fine as it is). The part file is created by
   * its first write, never by a read.
   */
  async #openKind(fileIndex: number, kind: Kind): Promise<FileHandle> {
    if (kind === READ) return this.#openRead(fileIndex);
    // the part file is created by its first write; once it exists it must stay (a new one would have lost its bytes)
    const create = fileIndex === this.#part && !this.#identity.has(fileIndex);
    const flags = kind === DIRECT ? WRITE_FLAGS | O_DIRECT! : create ? CREATE_FLAGS : WRITE_FLAGS;
    for (let copied = false; ; copied = true) {
      const fh = await this.#openConfined(fileIndex, flags);
      let st: BigIntStats;
      try {
        st = await fh.stat({ bigint: true });
        this.#assertSame(fileIndex, st, 'write');
        if (st.nlink > 1n && copied) throw new DiskError(`refusing to write ${JSON.stringify(this.#paths[fileIndex])}: it has ${st.nlink - 1n} other hard link(s) again`);
      } catch (err) {
        await fh.close().catch(() => undefined);
        throw err;
      }
      if (st.nlink <= 1n) {
        if (create) this.#identity.set(fileIndex, identityOf(st)); // created now: it must stay
        return fh;
      }
      if (kind === WRITE) return this.#breakLink(fileIndex, fh, st.nlink - 1n, WRITE);
      // an O_DIRECT handle cannot read the copy's source: copy through a plain one, then open the copy
      await fh.close().catch(() => undefined);
      await (await this.#breakLink(fileIndex, await this.#openConfined(fileIndex, READ_FLAGS), st.nlink - 1n, DIRECT)).close();
    }
  }

  /** Opens file `fileIndex` read-only; writable storage checks it is the file open() created or found. */
  async #openRead(fileIndex: number): Promise<FileHandle> {
    const fh = await this.#openConfined(fileIndex, READ_FLAGS);
    if (!this.#writable || !this.#identity.has(fileIndex)) return fh;
    try {
      this.#assertSame(fileIndex, await fh.stat({ bigint: true }), 'read');
    } catch (err) {
      await fh.close().catch(() => undefined);
      throw err;
    }
    return fh;
  }

  /**
   * Throws "replaced" when `st` is not the file open() created or found at
   * file `fileIndex`'s path (with the default opener: a custom one's handles
   * are trusted, as they are not confined either).
   */
  #assertSame(fileIndex: number, st: BigIntStats, op: 'read' | 'write'): void {
    const known = this.#identity.get(fileIndex);
    if (known && this.#confine && !sameFile(known, st)) throw this.#replaced(fileIndex, op);
  }

  /**
   * File `fileIndex` (open as `source`) has `others` other hard links: copies
   * it, every byte, to a new file beside it (#buildBeside: synced, renamed
   * into place), so writes from now on change this folder only. Its other
   * handles (to the old inode) are closed first, once their operations end;
   * `own` is the kind being opened. Returns the new file's read-write handle;
   * `source` is closed either way. One at a time: each holds one descriptor
   * beyond the cache's bound.
   */
  #breakLink(fileIndex: number, source: FileHandle, others: bigint, own: Kind): Promise<FileHandle> {
    const file = this.#paths[fileIndex]!;
    const run = this.#breaking.then(async () => {
      try {
        await this.#forget(fileIndex, own);
        const { size } = await source.stat();
        const fh = await this.#buildBeside(fileIndex, (into) => copyRange(source, file, into, 0, size, 0));
        const st = await fh.stat({ bigint: true }).catch(async (err: unknown) => {
          await fh.close().catch(() => undefined);
          throw err;
        });
        if (this.#identity.has(fileIndex)) this.#identity.set(fileIndex, identityOf(st)); // the file that must stay now
        this.#takeStamp(fileIndex, st);
        this.#onNotice?.(`${JSON.stringify(file)} had ${others} other hard link(s): copied it to a file of its own before writing, so the other names keep their bytes`);
        return fh;
      } catch (err) {
        const why = toDiskError('write', file, err).message.replace(/^cannot write "[^"]*": /, '');
        throw new DiskError(`cannot write ${JSON.stringify(file)}: it has ${others} other hard link(s), and copying it to a file of its own failed: ${why}`, err);
      } finally {
        await source.close().catch(() => undefined);
      }
    });
    this.#breaking = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  /** Open file `fileIndex`; with the default opener, refuse (and close) a handle outside realpath(root). */
  #openConfined(fileIndex: number, flags: number): Promise<FileHandle> {
    return this.#openConfinedPath(this.#paths[fileIndex]!, this.#components(fileIndex), flags);
  }

  /** File `fileIndex`'s path components under root (the part file's: its name). */
  #components(fileIndex: number): readonly string[] {
    return this.#meta.files[fileIndex]?.path ?? [this.#selection!.partFileName];
  }

  /** Open `file`, which is `components` under root; with the default opener, refuse (and close) a handle outside realpath(root). */
  async #openConfinedPath(file: string, components: readonly string[], flags: number): Promise<FileHandle> {
    const fh = await this.#openFile(file, flags);
    if (!this.#confine) return fh;
    try {
      this.#rootReal ??= await realRoot(this.#root);
      await assertOpenedInside(fh, this.#rootReal, components);
    } catch (err) {
      await fh.close().catch(() => undefined);
      throw err;
    }
    return fh;
  }

  #assertOpen(): void {
    if (this.#closed) throw new DiskError('storage is closed');
  }
}

/** The errno code of a failed fs call (also inside a DiskError). */
function errnoOf(err: unknown): string | undefined {
  if (err instanceof DiskError) return err.syscallCode;
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

/**
 * Reads bytes [from, to) of `source` (named `sourceName` in errors) ADOPT_CHUNK at a time,
 * stopping where the source ends, and hands each chunk read to `each` with its position;
 * stops early, returning false, when `each` says false.
 */
async function eachChunk(source: FileHandle, sourceName: string, from: number, to: number, each: (bytes: Buffer, at: number) => Promise<boolean>): Promise<boolean> {
  if (to <= from) return true;
  const chunk = Buffer.allocUnsafe(Math.min(ADOPT_CHUNK, to - from));
  for (let at = from; at < to; at += chunk.length) {
    const buf = chunk.subarray(0, Math.min(chunk.length, to - at));
    let got: number;
    try {
      got = await readFully(source, buf, at);
    } catch (err) {
      throw toDiskError('read', sourceName, err);
    }
    if (got > 0 && !(await each(buf.subarray(0, got), at))) return false;
    if (got < buf.length) break; // the source ends here
  }
  return true;
}

/** Copies bytes [from, to) of `source` into `into` at their position plus `shift`, stopping where the source ends. */
async function copyRange(source: FileHandle, sourceName: string, into: FileHandle, from: number, to: number, shift: number): Promise<void> {
  await eachChunk(source, sourceName, from, to, async (bytes, at) => {
    await writeFully(into, bytes, at + shift);
    return true;
  });
}

let zeros: Buffer | undefined;

/**
 * Whether the part file (`part`, named `partName` in errors) holds only zeros in `ranges`
 * (torrent offsets; a hole reads as zeros, as do bytes past its end): then a file adopting
 * them has nothing to take from it. Stops at the first byte that is not zero.
 */
async function onlyZeros(part: PartSource, partName: string, ranges: readonly [number, number][]): Promise<boolean> {
  zeros ??= Buffer.alloc(ADOPT_CHUNK);
  const zero = zeros;
  for (const [from, to] of ranges) {
    if (!(await eachChunk(part.lease.fh, partName, from, Math.min(to, part.size), async (bytes) => bytes.equals(zero.subarray(0, bytes.length))))) return false;
  }
  return true;
}

async function writeFully(fh: FileHandle, data: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < data.length) {
    const { bytesWritten } = await fh.write(data, done, data.length - done, position + done);
    if (bytesWritten <= 0) throw Object.assign(new Error('write made no progress'), { code: 'EIO' });
    done += bytesWritten;
  }
}

/** Reads until `target` is full or EOF; returns the bytes read. */
async function readFully(fh: FileHandle, target: Buffer, position: number): Promise<number> {
  let done = 0;
  while (done < target.length) {
    const { bytesRead } = await fh.read(target, done, target.length - done, position + done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  return done;
}

/**
 * Unlinks an adoption temporary when it is a regular file with no other hard
 * link (a symlink, a folder or a shared inode is not one tt made) not written
 * for ADOPT_TEMP_MIN_AGE_MS before `now`; false when it is not, or cannot be
 * removed now.
 */
async function removeLeftover(temp: string, now: number): Promise<boolean> {
  try {
    const stats = await lstat(temp);
    if (!stats.isFile() || stats.nlink !== 1 || now - stats.mtimeMs < ADOPT_TEMP_MIN_AGE_MS) return false;
    await unlink(temp); // never follows a symlink, should one be swapped in meanwhile
    return true;
  } catch {
    return false;
  }
}

/** Files created at once when storage opens. */
const CREATE_PARALLEL = 16;

/** Folders looked into at once for leftover adoption temporaries. */
const SWEEP_PARALLEL = 16;

/** Like Promise.all, but waits for every operation before rethrowing the first error. */
async function settleAll(ops: Promise<unknown>[]): Promise<void> {
  const results = await Promise.allSettled(ops);
  for (const r of results) if (r.status === 'rejected') throw r.reason;
}
