/**
 * Torrent creation (BEP 3 single- and multi-file; BEP 12/27/19 optional keys):
 * from a file or folder on disk (streaming SHA-1 in big reads, symlinks refused,
 * recursion bounded) or from memory for tests. Output is canonical bencode.
 * File names are read as bytes: one that is not valid UTF-8 (BEP 3 paths are
 * UTF-8) is refused naming it with its bad bytes as \xNN, rather than decoded
 * to U+FFFD, which names no file on disk. A layout whose .torrent would pass the
 * 10 MiB a torrent may have is refused after the listing, before any hashing.
 */
import { createHash } from 'node:crypto';
import type { Stats } from 'node:fs';
import { constants } from 'node:fs';
import { lstat, open, readdir } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { TtError, errnoReason } from '../core/errors.js';
import { type BEncodable, encode, utf8OrUndefined } from './bencode.js';
import { MAX_PIECE_LENGTH, MAX_TORRENT_BYTES } from './parse-torrent.js';
import { unsafeComponentReason } from './path-safety.js';

export interface CreateOptions {
  /** Bytes per piece; default: about total/1500, a power of two in 16 KiB..16 MiB. */
  pieceLength?: number;
  announce?: string;
  announceList?: string[][];
  private?: boolean;
  comment?: string;
  createdBy?: string;
  /** Unix seconds. Omitted unless given, so the same input gives the same bytes. */
  creationDate?: number;
  urlList?: string[];
}

export const MIN_AUTO_PIECE_LENGTH = 16 * 1024;
export const MAX_AUTO_PIECE_LENGTH = 16 * 1024 * 1024;
const TARGET_PIECE_COUNT = 1500;
/** Reads while hashing are at least this big (PERFORMANCE.md: big reads, not 16 KiB ones). */
const READ_CHUNK_BYTES = 4 * 1024 * 1024;
/** Deepest folder nesting createTorrentFromPath walks. */
export const MAX_FOLDER_DEPTH = 64;
/** Most files createTorrentFromPath accepts in one torrent. */
export const MAX_CREATE_FILES = 100_000;

interface FileEntry {
  /** Path components below the torrent's name. */
  readonly path: string[];
  readonly length: number;
}

/** Power of two near total/1500, clamped to 16 KiB..16 MiB. */
export function defaultPieceLength(totalLength: number): number {
  let pieceLength = MIN_AUTO_PIECE_LENGTH;
  while (pieceLength < MAX_AUTO_PIECE_LENGTH && pieceLength * TARGET_PIECE_COUNT < totalLength) pieceLength *= 2;
  return pieceLength;
}

function checkName(what: string, component: string): void {
  const reason = unsafeComponentReason(component);
  if (reason !== undefined) throw new TtError('INPUT', `cannot create torrent: ${what}: ${reason}: ${JSON.stringify(component)}`);
}

function choosePieceLength(totalLength: number, opts: CreateOptions): number {
  if (totalLength === 0) throw new TtError('INPUT', 'cannot create torrent: there is no data (total size 0)');
  const pieceLength = opts.pieceLength ?? defaultPieceLength(totalLength);
  if (!Number.isSafeInteger(pieceLength) || pieceLength <= 0) throw new TtError('USAGE', `piece length must be a positive integer, got ${pieceLength}`);
  return pieceLength;
}

/** The complete .torrent bytes for a hashed layout. `files` undefined means single-file. */
function assemble(name: string, totalLength: number, files: FileEntry[] | undefined, pieceLength: number, pieces: Buffer, opts: CreateOptions): Buffer {
  const info: Record<string, BEncodable | undefined> = {
    name,
    'piece length': pieceLength,
    pieces,
    private: opts.private ? 1 : undefined,
  };
  if (files === undefined) info['length'] = totalLength;
  else info['files'] = files.map((f) => ({ length: f.length, path: f.path }));
  return encode({
    announce: opts.announce ?? opts.announceList?.[0]?.[0],
    'announce-list': opts.announceList,
    comment: opts.comment,
    'created by': opts.createdBy,
    'creation date': opts.creationDate,
    info,
    'url-list': opts.urlList && opts.urlList.length > 0 ? opts.urlList : undefined,
  });
}

const mib = (n: number): string => `${(n / (1024 * 1024)).toFixed(1)} MiB`;

/** Bytes of a bencoded string of `length` bytes: its length prefix, the colon, the bytes. */
const stringBytes = (length: number): number => String(length).length + 1 + length;

/**
 * Refuses, before any hashing, a layout whose .torrent would be larger than
 * MAX_TORRENT_BYTES (which tt's reader, and other clients, refuse), naming what
 * makes it big: the pieces (a larger piece length helps: USAGE), the file list
 * (too many files or names for one torrent: INPUT) or the other keys. The size
 * is exact: the bencode with the piece hashes left empty, plus their 20 bytes each.
 */
function checkTorrentSize(name: string, totalLength: number, files: FileEntry[] | undefined, pieceLength: number, opts: CreateOptions): void {
  const piecesBytes = Math.ceil(totalLength / pieceLength) * 20;
  const withoutPieces = assemble(name, totalLength, files, pieceLength, Buffer.alloc(0), opts).length - stringBytes(0);
  const size = withoutPieces + stringBytes(piecesBytes);
  if (size <= MAX_TORRENT_BYTES) return;
  const listBytes = files === undefined ? 0 : encode(files.map((f) => ({ length: f.length, path: f.path }))).length;
  const limit = `a .torrent may have at most ${MAX_TORRENT_BYTES} bytes (${mib(MAX_TORRENT_BYTES)})`;
  if (listBytes >= piecesBytes && listBytes >= withoutPieces - listBytes) {
    throw new TtError(
      'INPUT',
      `cannot create torrent: too many files or names for one .torrent: the list of ${files!.length} files takes ${mib(listBytes)}, and ${limit} (pack them into an archive, or make several torrents)`,
    );
  }
  if (piecesBytes >= withoutPieces) {
    let larger = pieceLength * 2;
    while (larger <= MAX_PIECE_LENGTH && withoutPieces + stringBytes(Math.ceil(totalLength / larger) * 20) > MAX_TORRENT_BYTES) larger *= 2;
    const hint = larger <= MAX_PIECE_LENGTH ? `give a larger --piece-length (${larger >= 1024 * 1024 ? `${larger / (1024 * 1024)}MiB` : `${larger / 1024}KiB`} or more)` : 'no piece length is large enough: make several torrents';
    throw new TtError('USAGE', `cannot create torrent: its ${piecesBytes / 20} pieces of ${pieceLength} bytes take ${mib(piecesBytes)} of hashes, and ${limit}: ${hint}`);
  }
  throw new TtError('USAGE', `cannot create torrent: it would be ${mib(size)}, and ${limit}: the comment, trackers and web seeds take ${mib(withoutPieces - listBytes)}`);
}

/** Hashes a byte stream into pieces; feed it any chunk sizes. */
class PieceHasher {
  readonly #pieceLength: number;
  readonly #hashes: Buffer[] = [];
  #current = createHash('sha1');
  #inPiece = 0;

  constructor(pieceLength: number) {
    this.#pieceLength = pieceLength;
  }

  update(data: Uint8Array): void {
    let at = 0;
    while (at < data.length) {
      const take = Math.min(this.#pieceLength - this.#inPiece, data.length - at);
      this.#current.update(data.subarray(at, at + take));
      this.#inPiece += take;
      at += take;
      if (this.#inPiece === this.#pieceLength) this.#finishPiece();
    }
  }

  #finishPiece(): void {
    this.#hashes.push(this.#current.digest());
    this.#current = createHash('sha1');
    this.#inPiece = 0;
  }

  /** All piece hashes concatenated (the last piece may be short). */
  digest(): Buffer {
    if (this.#inPiece > 0) this.#finishPiece();
    return Buffer.concat(this.#hashes);
  }
}

/** In-memory creation, for tests and demos. An array of files makes a multi-file torrent (order kept). */
export function createTorrent(name: string, content: Buffer | { path: string[]; data: Buffer }[], opts: CreateOptions = {}): Buffer {
  checkName('name', name);
  const parts = Buffer.isBuffer(content) ? [content] : content.map((f) => f.data);
  const totalLength = parts.reduce((sum, p) => sum + p.length, 0);
  const pieceLength = choosePieceLength(totalLength, opts);
  const hasher = new PieceHasher(pieceLength);
  for (const p of parts) hasher.update(p);
  let files: FileEntry[] | undefined;
  if (!Buffer.isBuffer(content)) {
    files = content.map((f) => {
      if (f.path.length === 0) throw new TtError('INPUT', 'cannot create torrent: a file has an empty path');
      for (const c of f.path) checkName('path', c);
      return { path: f.path, length: f.data.length };
    });
  }
  return assemble(name, totalLength, files, pieceLength, hasher.digest(), opts);
}

function inputError(path: string, err: unknown): TtError {
  return new TtError('INPUT', `cannot read ${path}: ${errnoReason(err, 'error')}`, { cause: err });
}

async function lstatOrThrow(path: string): Promise<Stats> {
  try {
    return await lstat(path);
  } catch (err) {
    throw inputError(path, err);
  }
}

/**
 * `bytes` as text, each byte that is not part of a valid UTF-8 sequence written
 * as \xNN: `bad\xffname.bin`. For messages only.
 */
export function escapeInvalidUtf8(bytes: Uint8Array): string {
  let out = '';
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i]!;
    const len = b < 0x80 ? 1 : b >= 0xc2 && b <= 0xdf ? 2 : b >= 0xe0 && b <= 0xef ? 3 : b >= 0xf0 && b <= 0xf4 ? 4 : 0;
    const text = len > 0 && i + len <= bytes.length ? utf8OrUndefined(bytes.subarray(i, i + len)) : undefined;
    if (text !== undefined) {
      out += text;
      i += len;
    } else {
      out += `\\x${b.toString(16).padStart(2, '0')}`;
      i++;
    }
  }
  return out;
}

/** Every regular file below `root`, sorted by path; symlinks, special files and names that are not UTF-8 refused. */
async function listFolder(root: string): Promise<FileEntry[]> {
  const files: FileEntry[] = [];
  const pending: string[][] = [[]];
  while (pending.length > 0) {
    const rel = pending.pop()!;
    if (rel.length > MAX_FOLDER_DEPTH) throw new TtError('INPUT', `cannot create torrent: folders nested deeper than ${MAX_FOLDER_DEPTH}`);
    const dir = join(root, ...rel);
    let rawNames: Buffer[];
    try {
      // bytes, not strings: a name that is not UTF-8 would come back with U+FFFD and name nothing on disk
      rawNames = await readdir(dir, { encoding: 'buffer' });
    } catch (err) {
      throw inputError(dir, err);
    }
    for (const raw of rawNames) {
      const name = utf8OrUndefined(raw);
      if (name === undefined) {
        throw new TtError('INPUT', `cannot create torrent: file name is not valid UTF-8: ${join(dir, escapeInvalidUtf8(raw))} (rename it, or move it out of the folder)`);
      }
      const path = [...rel, name];
      const full = join(root, ...path);
      checkName('path', name);
      const st = await lstatOrThrow(full);
      if (st.isSymbolicLink()) throw new TtError('INPUT', `cannot create torrent: ${full} is a symbolic link`);
      if (st.isDirectory()) {
        pending.push(path);
      } else if (st.isFile()) {
        files.push({ path, length: st.size });
        if (files.length > MAX_CREATE_FILES) throw new TtError('INPUT', `cannot create torrent: more than ${MAX_CREATE_FILES} files`);
      } else {
        throw new TtError('INPUT', `cannot create torrent: ${full} is not a regular file`);
      }
    }
  }
  return files.sort((a, b) => comparePaths(a.path, b.path));
}

function comparePaths(a: readonly string[], b: readonly string[]): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const c = Buffer.compare(Buffer.from(a[i]!), Buffer.from(b[i]!));
    if (c !== 0) return c;
  }
  return a.length - b.length;
}

/** Stream one file into the hasher in big reads; its size must not change meanwhile. */
async function hashFile(path: string, length: number, hasher: PieceHasher, buf: Buffer): Promise<void> {
  let fh;
  try {
    // O_NONBLOCK: a file swapped for a FIFO after the listing must not block the open forever
    fh = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    throw inputError(path, err);
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new TtError('INPUT', `cannot create torrent: ${path} is no longer a regular file`);
    let position = 0;
    while (position < length) {
      const want = Math.min(buf.length, length - position);
      const { bytesRead } = await fh.read(buf, 0, want, position);
      if (bytesRead === 0) throw new TtError('INPUT', `cannot create torrent: ${path} shrank while it was read`);
      hasher.update(buf.subarray(0, bytesRead));
      position += bytesRead;
    }
  } catch (err) {
    throw err instanceof TtError ? err : inputError(path, err);
  } finally {
    await fh.close();
  }
}

/** A file makes a single-file torrent, a folder a multi-file one (paths sorted). */
export async function createTorrentFromPath(path: string, opts: CreateOptions = {}): Promise<Buffer> {
  const root = resolve(path);
  const st = await lstat(root).catch((err: unknown) => {
    const e = inputError(root, err);
    // an argument is decoded as UTF-8 before tt sees it: a name that is not UTF-8 arrives with U+FFFD and names nothing
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' && root.includes('\ufffd')) e.message += ' (if its name is not valid UTF-8, rename it: tt reads arguments as UTF-8)';
    throw e;
  });
  const name = basename(root);
  checkName('name', name);
  let files: FileEntry[] | undefined;
  let diskFiles: { full: string; length: number }[];
  if (st.isSymbolicLink()) throw new TtError('INPUT', `cannot create torrent: ${root} is a symbolic link`);
  if (st.isDirectory()) {
    files = await listFolder(root);
    if (files.length === 0) throw new TtError('INPUT', `cannot create torrent: ${root} holds no files`);
    diskFiles = files.map((f) => ({ full: join(root, ...f.path), length: f.length }));
  } else if (st.isFile()) {
    diskFiles = [{ full: root, length: st.size }];
  } else {
    throw new TtError('INPUT', `cannot create torrent: ${root} is not a regular file or folder`);
  }
  const totalLength = diskFiles.reduce((sum, f) => sum + f.length, 0);
  const pieceLength = choosePieceLength(totalLength, opts);
  checkTorrentSize(name, totalLength, files, pieceLength, opts);
  const hasher = new PieceHasher(pieceLength);
  const buf = Buffer.allocUnsafe(Math.min(READ_CHUNK_BYTES, Math.max(totalLength, 1)));
  for (const f of diskFiles) await hashFile(f.full, f.length, hasher, buf);
  return assemble(name, totalLength, files, pieceLength, hasher.digest(), opts);
}
