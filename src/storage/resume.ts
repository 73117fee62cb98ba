/**
 * Fast resume: an interrupted download's verified pieces, kept in
 * `<out>/.<info-hash>.tt-resume` with each file's identity after its last
 * write (size, mtime and ctime in nanoseconds, inode), so the next run takes
 * those pieces without hashing them again. Like aria2's `.aria2` control
 * file it exists only while the download is incomplete: the session writes
 * it when it stops short of complete and deletes it once every piece is
 * verified.
 *
 * Trust is per file, and only ever narrows, on both ends:
 * - Loading: a piece is taken from the record when it was verified then and
 *   every file it touches is exactly as recorded (a file absent then and now
 *   means its bytes come from the part file, which must then be unchanged
 *   too). Any write since, by tt or anyone (a crashed run, an editor, a
 *   truncate), changes mtime or ctime, and that file's pieces are hashed
 *   again; ctime cannot be set back by `touch`.
 * - Saving: the session says what each file should look like (its stamp at
 *   start, or after tt's own last write or creation: storage.ts keeps those).
 *   A file that differs (written by someone else during the run, deleted,
 *   replaced) has its pieces left out of the record, so they are hashed next
 *   time. What tt did not write can only be vouched for as it was found.
 * The session syncs the files the record vouches for before writing it, so
 * after a power cut the record never claims bytes the disk lost. A record
 * that does not parse, is for another torrent, is larger than it can be,
 * belongs to another user or can be written by others is ignored: checking
 * then hashes everything, as without one. Nor does a record vouch for bytes
 * past the end of a file (or of the part file) as it is now. The one
 * window left: another program writing a file within 20 ms after tt's
 * write (Storage stamps a file once, 20 ms after its writes) is taken as
 * tt's own.
 *
 * Reads and writes stay inside the folder like every other file: paths are
 * resolved without symlinks, and the record is opened with O_NOFOLLOW and
 * replaced by rename.
 */
import { constants } from 'node:fs';
import { lstat, open, rename, rm } from 'node:fs/promises';
import { Bitfield } from '../core/bitfield.js';
import { fileAt, type Metainfo } from '../metainfo/metainfo.js';
import { toDiskError } from './disk-error.js';
import { forEachLimit } from './for-each-limit.js';
import { lookupAllInside, resolveInside } from './safe-path.js';
import { statMany } from './small-files.js';

const FORMAT = 'tt-resume';
const VERSION = 1;
/** lstat calls in flight while stamping a many-file torrent. */
const STAT_PARALLEL = 32;

/** `.<info-hash hex>.tt-resume`, beside the part file in the output folder. */
export function resumeFileName(meta: Metainfo): string {
  return `.${meta.infoHashHex}.tt-resume`;
}

/** Whether a top-level name is some torrent's resume record or its temporary (never written as a torrent's file). */
export function isResumeFileName(name: string): boolean {
  return /^\.[0-9a-f]{40}\.tt-resume(\.tmp)?$/.test(name);
}

/** A file's identity after its last write: size, mtime ns, ctime ns, inode (decimal strings); null when absent. */
export type Stamp = readonly [string, string, string, string] | null;

/** Every file's stamp (padding and empty files null) and the part file's. */
export interface FolderStamps {
  readonly files: readonly Stamp[];
  readonly part: Stamp;
}

/** The stamp of a file from its (bigint) stats. */
export function stampOf(st: { size: bigint; mtimeNs: bigint; ctimeNs: bigint; ino: bigint }): Stamp {
  return [String(st.size), String(st.mtimeNs), String(st.ctimeNs), String(st.ino)];
}

/** Whether stamp `b` is as new as `a` or newer (ctime, then mtime, then size): concurrent writes' fstats may return out of order. */
export function notOlder(a: Stamp, b: Stamp): boolean {
  if (a === null || b === null) return true;
  for (const k of [2, 1, 0] as const) {
    const x = BigInt(a[k]);
    const y = BigInt(b[k]);
    if (y !== x) return y > x;
  }
  return true;
}

/** The folder as it stands: every file's stamp, and the part file's. */
export async function stampFolder(root: string, meta: Metainfo, partFileName: string): Promise<FolderStamps> {
  return { files: await stampFiles(root, meta), part: await stampPath(await resolveInside(root, [partFileName])) };
}

/**
 * What the folder should look like now: `before` (at start), with the
 * stamps tt's storage took after its own writes and creations (`ours`, by
 * file index; the part file at index files.length) in their place.
 */
export function expectedStamps(before: FolderStamps, ours: ReadonlyMap<number, Stamp>, fileCount: number): FolderStamps {
  return {
    files: before.files.map((stamp, i) => (ours.has(i) ? ours.get(i)! : stamp)),
    part: ours.has(fileCount) ? ours.get(fileCount)! : before.part,
  };
}

/**
 * The pieces of `have` whose bytes are where they were: every file they
 * touch has the same stamp in `was` and `now`, and a file absent in both
 * has its share in the part file, which must be there and unchanged.
 */
function vouched(meta: Metainfo, have: Bitfield, was: FolderStamps, now: FolderStamps): Bitfield {
  const partIntact = was.part !== null && sameStamp(was.part, now.part);
  const intact = meta.files.map((f, i) => {
    if (f.padding || f.length === 0) return true; // zeros, or nothing: never read from disk
    if (!sameStamp(was.files[i] ?? null, now.files[i] ?? null)) return false;
    return now.files[i] !== null || partIntact; // absent: storage reads its share from the part file
  });
  const sizeOf = (stamp: Stamp | undefined): number => (stamp ? Number(stamp[0]) : 0);
  const partSize = sizeOf(now.part);
  const out = new Bitfield(meta.pieceCount);
  const { files, pieceLength } = meta;
  let f = 0;
  for (const index of have.indices()) {
    const start = index * pieceLength;
    const end = Math.min(start + pieceLength, meta.totalLength);
    while (f < files.length && files[f]!.offset + files[f]!.length <= start) f++;
    let ok = true;
    for (let g = f; g < files.length && files[g]!.offset < end && ok; g++) {
      const file = files[g]!;
      if (file.length === 0 || file.padding) continue;
      // the piece's bytes must be there at all: a record (even one whose stamps match) cannot
      // vouch for bytes past the end of a file, or of the part file holding its share
      const stamp = now.files[g];
      const needed = Math.min(end, file.offset + file.length);
      ok = intact[g]! && (stamp ? sizeOf(stamp) >= needed - file.offset : partSize >= needed);
    }
    if (ok) out.set(index);
  }
  return out;
}

/** The files (indices) the given pieces touch, padding and empty files left out. */
export function filesTouched(meta: Metainfo, pieces: Iterable<number>): Set<number> {
  const out = new Set<number>();
  const { files, pieceLength } = meta;
  for (const index of pieces) {
    const start = index * pieceLength;
    const end = Math.min(start + pieceLength, meta.totalLength);
    for (let g = fileAt(files, start); g < files.length && files[g]!.offset < end; g++) {
      if (files[g]!.length > 0 && !files[g]!.padding) out.add(g);
    }
  }
  return out;
}

interface ResumeRecord {
  format: typeof FORMAT;
  version: typeof VERSION;
  infoHash: string;
  pieceCount: number;
  /** The verified pieces, BEP 3 bitfield order, base64. */
  have: string;
  /** One per file of the torrent, in order (padding and empty files null). */
  files: Stamp[];
  /** The part file (`--select`), null when absent. */
  part: Stamp;
}

/**
 * Write the record for the pieces of `have` (verified and written) whose
 * files look as `expected` says (see the module header), replacing any
 * earlier one (without `expected`: every file as it stands). The caller has
 * synced those files. Throws DiskError.
 */
export async function saveResume(root: string, meta: Metainfo, have: Bitfield, partFileName: string, expected?: FolderStamps): Promise<void> {
  const now = await stampFolder(root, meta, partFileName);
  expected ??= now; // the caller vouches that nothing changed behind its back
  const record: ResumeRecord = {
    format: FORMAT,
    version: VERSION,
    infoHash: meta.infoHashHex,
    pieceCount: meta.pieceCount,
    have: Buffer.from(vouched(meta, have, expected, now).bytes).toString('base64'),
    files: now.files as Stamp[],
    part: now.part,
  };
  const target = await resolveInside(root, [resumeFileName(meta)]);
  const temp = await resolveInside(root, [`${resumeFileName(meta)}.tmp`]);
  try {
    // a fresh inode: a leftover temporary may be a hard link to a file elsewhere, which O_TRUNC would empty
    await rm(temp, { force: true });
    const fh = await open(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o644);
    try {
      await fh.writeFile(JSON.stringify(record));
      await fh.datasync();
    } finally {
      await fh.close();
    }
    await rename(temp, target);
  } catch (err) {
    await rm(temp, { force: true }).catch(() => undefined);
    throw toDiskError('write', target, err);
  }
}

/** Delete the record (the download completed). Throws DiskError; a missing record is fine. */
export async function removeResume(root: string, meta: Metainfo): Promise<void> {
  const target = await resolveInside(root, [resumeFileName(meta)]);
  try {
    await rm(target, { force: true });
  } catch (err) {
    throw toDiskError('write', target, err);
  }
}

/**
 * The pieces the record vouches for, given the folder `now` (stampFolder, or
 * the part file's name to take it here):
 * verified when it was written, and every file they touch unchanged since.
 * Undefined when there is no usable record (also one another user owns,
 * one others may write, or anything but a regular file under its name).
 * Never throws for a bad record.
 */
export async function loadResume(root: string, meta: Metainfo, now: FolderStamps | string): Promise<Bitfield | undefined> {
  const record = await readRecord(root, meta);
  if (!record) return undefined;
  const folder = typeof now === 'string' ? await stampFolder(root, meta, now) : now;
  return vouched(meta, new Bitfield(meta.pieceCount, Buffer.from(record.have, 'base64')), record, folder);
}

async function stampFiles(root: string, meta: Metainfo): Promise<Stamp[]> {
  const found = await lookupAllInside(root, meta.files.map((file) => file.path));
  const out = new Array<Stamp>(found.length).fill(null);
  const wanted = [...found.keys()].filter((i) => !found[i]!.missing && !meta.files[i]!.padding && meta.files[i]!.length > 0);
  // many files: lstat'ed on a worker in one message; what it could not, one by one here
  const batch = await statMany(wanted.map((i) => found[i]!.path));
  const again: number[] = [];
  wanted.forEach((i, k) => {
    const st = batch.at(k);
    if (st === undefined) again.push(i);
    else out[i] = st.isFile ? stampOf(st) : null;
  });
  await forEachLimit(again, STAT_PARALLEL, async (i) => {
    out[i] = await stampPath(found[i]!.path);
  });
  return out;
}

async function stampPath(path: string): Promise<Stamp> {
  try {
    const st = await lstat(path, { bigint: true });
    return st.isFile() ? stampOf(st) : null;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return null;
    throw toDiskError('read', path, err);
  }
}

/** Whether two stamps name the same file as it was (both absent counts). */
export function sameStamp(a: Stamp, b: Stamp): boolean {
  if (a === null || b === null) return a === b;
  return a[0] === b[0] && a[1] === b[1] && a[2] === b[2] && a[3] === b[3];
}

/** The record, if there is one and it is well-formed and for this torrent. */
async function readRecord(root: string, meta: Metainfo): Promise<ResumeRecord | undefined> {
  // a folder, FIFO or symlink under the record's name: no record (saving it later says why it cannot)
  const path = await resolveInside(root, [resumeFileName(meta)]).catch(() => undefined);
  if (path === undefined) return undefined;
  // a generous bound: ~100 bytes per file, the bitfield in base64, and room for the rest
  const maxBytes = 4096 + meta.files.length * 128 + Math.ceil(meta.pieceCount / 6) * 2;
  let text: string;
  try {
    const fh = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
    try {
      const st = await fh.stat();
      if (!st.isFile() || st.size > maxBytes) return undefined;
      // only a record this user wrote, that nobody else can change: in a folder others can write to
      // (a shared /tmp), another user could plant one vouching for files of their own making
      if ((process.getuid !== undefined && st.uid !== process.getuid()) || (st.mode & 0o022) !== 0) return undefined;
      text = (await fh.readFile()).toString('utf8');
    } finally {
      await fh.close();
    }
  } catch {
    return undefined; // absent, a symlink, unreadable: no record
  }
  if (text.length > maxBytes) return undefined; // grew while being read
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  return isRecordFor(value, meta) ? value : undefined;
}

function isRecordFor(v: unknown, meta: Metainfo): v is ResumeRecord {
  if (typeof v !== 'object' || v === null) return false;
  const r = v as Record<string, unknown>;
  if (r['format'] !== FORMAT || r['version'] !== VERSION || r['infoHash'] !== meta.infoHashHex || r['pieceCount'] !== meta.pieceCount) return false;
  if (!isStamp(r['part']) || !Array.isArray(r['files']) || r['files'].length !== meta.files.length || !r['files'].every(isStamp)) return false;
  const have = r['have'];
  if (typeof have !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(have)) return false;
  const bytes = Buffer.from(have, 'base64');
  const byteLength = Math.ceil(meta.pieceCount / 8);
  if (bytes.length !== byteLength) return false;
  const spare = byteLength * 8 - meta.pieceCount;
  return spare === 0 || (bytes[byteLength - 1]! & ((1 << spare) - 1)) === 0;
}

function isStamp(v: unknown): v is Stamp {
  return v === null || (Array.isArray(v) && v.length === 4 && v.every((x) => typeof x === 'string' && /^\d{1,24}$/.test(x)));
}
