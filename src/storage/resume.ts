/**
 * Fast resume: an interrupted download's verified pieces, kept in
 * `<out>/.<info-hash>.tt-resume` with each file's identity after its last
 * write (size, mtime and ctime in nanoseconds, inode), so the next run takes
 * those pieces without hashing them again. Like aria2's `.aria2` control
 * file it exists only while the download is incomplete: the session writes
 * it when it stops short of complete and deletes it once every piece is
 * verified.
 *
 * Trust is per file, and only ever narrows: a piece is taken from the
 * record when it was verified then and every file it touches is exactly as
 * recorded (a file absent then and now means its bytes come from the part
 * file, which must then be unchanged too). Any write since, by tt or anyone
 * (a crashed run, an editor, a truncate), changes mtime or ctime, and that
 * file's pieces are hashed again; ctime cannot be set back by `touch`. The
 * session syncs the files it wrote before it writes the record, so after a
 * power cut the record never claims bytes the disk lost. A record that does
 * not parse, is for another torrent, or is larger than it can be is
 * ignored: checking then hashes everything, as without one.
 *
 * Reads and writes stay inside the folder like every other file: paths are
 * resolved without symlinks, and the record is opened with O_NOFOLLOW and
 * replaced by rename.
 */
import { constants } from 'node:fs';
import { lstat, open, rename, rm } from 'node:fs/promises';
import { Bitfield } from '../core/bitfield.js';
import type { Metainfo } from '../metainfo/metainfo.js';
import { toDiskError } from './disk-error.js';
import { forEachLimit } from './for-each-limit.js';
import { resolveAllInside, resolveInside } from './safe-path.js';

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
type Stamp = readonly [string, string, string, string] | null;

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
 * Write the record for `have` (pieces verified and written), replacing any
 * earlier one. The caller has synced every file it wrote. Throws DiskError.
 */
export async function saveResume(root: string, meta: Metainfo, have: Bitfield, partFileName: string): Promise<void> {
  const record: ResumeRecord = {
    format: FORMAT,
    version: VERSION,
    infoHash: meta.infoHashHex,
    pieceCount: meta.pieceCount,
    have: Buffer.from(have.bytes).toString('base64'),
    files: await stampFiles(root, meta),
    part: await stampOf(await resolveInside(root, [partFileName])),
  };
  const target = await resolveInside(root, [resumeFileName(meta)]);
  const temp = await resolveInside(root, [`${resumeFileName(meta)}.tmp`]);
  try {
    const fh = await open(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW, 0o644);
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
 * The pieces the record vouches for now: verified when it was written, and
 * every file they touch unchanged since. Undefined when there is no usable
 * record. Never throws for a bad record; throws DiskError only for an unsafe
 * path (a symlink where the record or a file should be).
 */
export async function loadResume(root: string, meta: Metainfo, partFileName: string): Promise<Bitfield | undefined> {
  const record = await readRecord(root, meta);
  if (!record) return undefined;
  const have = new Bitfield(meta.pieceCount, Buffer.from(record.have, 'base64'));
  const now = await stampFiles(root, meta);
  const partNow = await stampOf(await resolveInside(root, [partFileName]));
  const partUnchanged = record.part !== null && sameStamp(record.part, partNow);
  /** Per file: its bytes are where they were, as they were. */
  const intact = meta.files.map((f, i) => {
    if (f.padding || f.length === 0) return true; // zeros, or nothing: never read from disk
    if (!sameStamp(record.files[i] ?? null, now[i] ?? null)) return false;
    return now[i] !== null || partUnchanged; // absent: storage reads its share from the part file
  });
  const trusted = new Bitfield(meta.pieceCount);
  const { files, pieceLength } = meta;
  let f = 0;
  for (const index of have.indices()) {
    const start = index * pieceLength;
    const end = Math.min(start + pieceLength, meta.totalLength);
    while (f < files.length && files[f]!.offset + files[f]!.length <= start) f++;
    let ok = true;
    for (let g = f; g < files.length && files[g]!.offset < end && ok; g++) {
      if (files[g]!.length > 0) ok = intact[g]!;
    }
    if (ok) trusted.set(index);
  }
  return trusted;
}

async function stampFiles(root: string, meta: Metainfo): Promise<Stamp[]> {
  const paths = await resolveAllInside(root, meta.files.map((file) => file.path));
  const out = new Array<Stamp>(paths.length).fill(null);
  await forEachLimit(paths, STAT_PARALLEL, async (path, i) => {
    const file = meta.files[i]!;
    if (!file.padding && file.length > 0) out[i] = await stampOf(path);
  });
  return out;
}

async function stampOf(path: string): Promise<Stamp> {
  try {
    const st = await lstat(path, { bigint: true });
    return st.isFile() ? [String(st.size), String(st.mtimeNs), String(st.ctimeNs), String(st.ino)] : null;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return null;
    throw toDiskError('read', path, err);
  }
}

function sameStamp(a: Stamp, b: Stamp): boolean {
  if (a === null || b === null) return a === b;
  return a[0] === b[0] && a[1] === b[1] && a[2] === b[2] && a[3] === b[3];
}

/** The record, if there is one and it is well-formed and for this torrent. */
async function readRecord(root: string, meta: Metainfo): Promise<ResumeRecord | undefined> {
  const path = await resolveInside(root, [resumeFileName(meta)]);
  // a generous bound: ~100 bytes per file, the bitfield in base64, and room for the rest
  const maxBytes = 4096 + meta.files.length * 128 + Math.ceil(meta.pieceCount / 6) * 2;
  let text: string;
  try {
    const fh = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
    try {
      const st = await fh.stat();
      if (!st.isFile() || st.size > maxBytes) return undefined;
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
