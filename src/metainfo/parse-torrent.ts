/**
 * .torrent bytes -> validated Metainfo (BEP 3; announce-list BEP 12, private BEP 27,
 * url-list BEP 19, pad files BEP 47). Every rule refuses with a MetainfoError naming
 * the field; the info hash is the SHA-1 of the raw `info` span as it stands in the file.
 * Names and paths: `.utf-8` variants preferred when valid. `files[].path` are the
 * names written on disk, mapped from the torrent's bytes as libtorrent maps them
 * (path-safety.ts diskComponent: control characters and invalid UTF-8 -> `_`, bidi
 * overrides dropped, a component over 240 bytes cut keeping its extension), so every
 * reader and writer of the data uses one set of names; `torrentPath` keeps the
 * torrent's own spelling where it differs (web seed URLs), and `name` is the torrent's
 * name as written in it (invalid UTF-8 shown as U+FFFD). Which names are safe, and which
 * two are one file, follow the platform's file system (path-safety.ts), checked on
 * the torrent's names and again on the mapped ones. Bytes after the top-level dictionary are refused
 * unless the caller reads a .torrent file (`allowTrailingBytes`): libtorrent and
 * other clients ignore them there, and the info hash (its raw span) cannot change.
 * Only the keys read here are built (torrentShape); any other key's value is checked
 * as strictly and dropped, so a torrent costs what tt keeps of it.
 */
import { createHash } from 'node:crypto';
import { MetainfoError } from '../core/errors.js';
import {
  type BDict,
  type BValue,
  DEFAULT_MAX_BYTES,
  DictShape,
  ListShape,
  decodeWithSpans,
  getBytes,
  getInt,
  getList,
  isBytes,
  isDict,
  isList,
  requireBytes,
  requireDict,
  requireInt,
  requireList,
  utf8OrUndefined,
} from './bencode.js';
import type { Metainfo, TorrentFile } from './metainfo.js';
import { checkPaddingPieces } from './padding-pieces.js';
import { MAX_COMPONENT_LENGTH, type PathPlatform, collisionKey, diskComponent, unsafeComponentReason } from './path-safety.js';

export const MAX_TORRENT_BYTES = DEFAULT_MAX_BYTES;
export const MAX_PIECE_LENGTH = 512 * 1024 * 1024;
export const MAX_PIECE_COUNT = 2 ** 21;
const SHA1_LENGTH = 20;

const FILE_SHAPE = new DictShape({ length: 'scalar', path: new ListShape('scalar'), 'path.utf-8': new ListShape('scalar'), attr: 'scalar' });

/**
 * Every key parseTorrent reads, at every level: the decoder builds only these (any other
 * key's value, however large, is checked and dropped: a torrent costs what tt keeps of it).
 * A key read here must be listed here, or the parser sees it absent. info.files' entries
 * go to `takeFile` one by one (FilesReader), never all kept at once.
 */
function torrentShape(takeFile: (entry: BValue, index: number) => void): DictShape {
  const info = new DictShape({
    'meta version': 'scalar',
    name: 'scalar',
    'name.utf-8': 'scalar',
    'piece length': 'scalar',
    pieces: 'scalar',
    length: 'scalar',
    files: new ListShape(FILE_SHAPE, takeFile),
    private: 'scalar',
  });
  return new DictShape({
    info,
    announce: 'scalar',
    'announce-list': new ListShape(new ListShape('scalar')),
    'url-list': new ListShape('scalar'),
    'creation date': 'scalar',
    comment: 'scalar',
    'comment.utf-8': 'scalar',
    'created by': 'scalar',
    'created by.utf-8': 'scalar',
  });
}

/** An ErrorFactory for the bencode accessors that prefixes the dict's field path. */
function failAt(prefix: string): (key: string, problem: string) => MetainfoError {
  return (key, problem) => new MetainfoError(prefix + key, problem);
}

/** Lenient text: invalid UTF-8 sequences become U+FFFD (shown, never used to escape a folder). */
function text(b: Buffer): string {
  return b.toString('utf8');
}

/** The bytes of the `<key>.utf-8` variant when present and valid UTF-8, else those of `<key>`. */
function preferUtf8Bytes(d: BDict, key: string, prefix: string): Buffer {
  const alt = getBytes(d, `${key}.utf-8`);
  if (alt !== undefined && utf8OrUndefined(alt) !== undefined) return alt;
  return requireBytes(d, key, failAt(prefix));
}

export interface ParseOptions {
  /** Whose file name rules apply (default: the platform tt runs on). */
  platform?: PathPlatform;
  /**
   * Accept bytes after the top-level dictionary (a .torrent file read from disk
   * or stdin, as libtorrent does). Off by default: a torrent tt assembles
   * itself (a magnet's verified metadata) must be exactly one value.
   */
  allowTrailingBytes?: boolean;
}

/** Printable ASCII: a name of these, short enough, is its own name on disk (a fast path for large torrents). */
const PLAIN_ASCII = /^[\x20-\x7e]*$/;

/**
 * The name `raw` (decoded: `shown`) is written under on disk (diskComponent),
 * refusing an unsafe name or an unsafe mapping of one.
 */
function diskName(field: string, raw: Buffer, shown: string, platform: PathPlatform): string {
  const reason = unsafeComponentReason(shown, platform);
  if (reason !== undefined) throw new MetainfoError(field, `${reason}: ${JSON.stringify(shown)}`);
  if (platform !== 'win32' && raw.length <= MAX_COMPONENT_LENGTH && PLAIN_ASCII.test(shown)) return shown;
  const mapped = diskComponent(raw, platform);
  if (mapped === shown) return shown;
  const mappedReason = unsafeComponentReason(mapped, platform);
  if (mappedReason !== undefined) {
    throw new MetainfoError(field, `${JSON.stringify(shown)} is written as ${JSON.stringify(mapped)} on disk (as libtorrent maps names): ${mappedReason}`);
  }
  return mapped;
}

function readPath(entry: BDict, field: string): Buffer[] {
  const alt = getList(entry, 'path.utf-8');
  if (alt && alt.length > 0 && alt.every((c): c is Buffer => isBytes(c) && utf8OrUndefined(c) !== undefined)) return alt;
  const raw = requireList(entry, 'path', failAt(`${field}.`));
  if (raw.length === 0) throw new MetainfoError(`${field}.path`, 'empty path');
  return raw.map((c, i) => {
    if (!isBytes(c)) throw new MetainfoError(`${field}.path[${i}]`, 'expected a byte string');
    return c;
  });
}

function readLength(d: BDict, field: string, key = 'length'): number {
  const n = requireInt(d, key, failAt(field));
  if (n < 0) throw new MetainfoError(field + key, `negative length ${n}`);
  return n;
}

/** A path without the torrent's name in front, joined by / (as errors quote it). */
function inTorrent(path: readonly string[]): string {
  return path.slice(1).join('/');
}

/** A file as its entry says, path[0] (and torrentPath[0]) left for the torrent's name: `files` sorts before `name`. */
interface FileRecord {
  /** ['', ...names on disk]. */
  readonly path: string[];
  /** ['', ...the torrent's names], only when one of them is written differently on disk. */
  readonly torrentPath?: string[];
  readonly length: number;
  readonly offset: number;
  readonly padding: boolean;
}

/**
 * info.files, read entry by entry as the decoder hands each over (ListShape take): what is
 * kept is the records, one string per distinct folder name, never a tree of every entry.
 * The first entry that fails stops the reading and is kept in `error`, thrown where the
 * files are read (after the checks that come before), so a torrent is refused as it
 * was when the whole tree was read first. `unsafeTotal`: the lengths' sum is not a safe
 * integer (refused once the paths are checked).
 */
class FilesReader {
  readonly records: FileRecord[] = [];
  error: unknown = undefined;
  total = 0;
  unsafeTotal = false;
  readonly #folders = new Map<string, string>();

  constructor(private readonly platform: PathPlatform) {}

  readonly take = (entry: BValue, index: number): void => {
    if (this.error !== undefined) return;
    try {
      this.records.push(this.#read(entry, index));
    } catch (err) {
      this.error = err;
    }
  };

  #read(entry: BValue, i: number): FileRecord {
    const field = `info.files[${i}]`;
    if (!isDict(entry)) throw new MetainfoError(field, 'expected a dictionary');
    const length = readLength(entry, `${field}.`);
    const raw = readPath(entry, field);
    const shown = raw.map(text);
    let mapped = false;
    const path = new Array<string>(raw.length + 1);
    path[0] = '';
    for (let k = 0; k < raw.length; k++) {
      let disk = diskName(`${field}.path`, raw[k]!, shown[k]!, this.platform);
      if (disk !== shown[k]) mapped = true;
      if (k < raw.length - 1) {
        const folder = this.#folders.get(disk);
        if (folder === undefined) this.#folders.set(disk, disk);
        else disk = folder;
      }
      path[k + 1] = disk;
    }
    const attr = getBytes(entry, 'attr');
    const padding = attr !== undefined && attr.includes(0x70 /* 'p' */);
    const offset = this.total;
    this.total += length;
    if (!Number.isSafeInteger(this.total)) this.unsafeTotal = true;
    return mapped ? { path, torrentPath: ['', ...shown], length, offset, padding } : { path, length, offset, padding };
  }

  /** The files as Metainfo keeps them: the torrent's name in front, as written on disk (path) and as it spells it (torrentPath). */
  files(name: string, nameOnDisk: string): TorrentFile[] {
    const files: TorrentFile[] = this.records;
    for (const [i, f] of this.records.entries()) {
      f.path[0] = nameOnDisk;
      if (f.torrentPath !== undefined) f.torrentPath[0] = name;
      else if (nameOnDisk !== name) files[i] = { path: f.path, torrentPath: [name, ...f.path.slice(1)], length: f.length, offset: f.offset, padding: f.padding };
    }
    return files;
  }
}

/** One path component in the tree of all file paths (keyed by collisionKey). */
interface PathNode {
  children: Map<string, PathNode> | undefined;
  /** Index of the file whose path ends here. */
  file: number | undefined;
}

/**
 * Refuse two paths that are one file on `platform`'s file system (identical
 * names on Linux; see path-safety.ts) and a file that is also a folder.
 * A tree of components keeps this linear in the number of components: joining every
 * folder prefix of a hostile 30,000-component path took seconds (quadratic).
 */
function checkCollisions(files: readonly TorrentFile[], platform: PathPlatform): void {
  const root: PathNode = { children: undefined, file: undefined };
  const leaves: PathNode[] = [];
  for (const [i, f] of files.entries()) {
    let node = root;
    for (let k = 1; k < f.path.length; k++) {
      const key = collisionKey(f.path[k]!, platform);
      node.children ??= new Map();
      let child = node.children.get(key);
      if (child === undefined) {
        child = { children: undefined, file: undefined };
        node.children.set(key, child);
      }
      node = child;
    }
    const prevIndex = node.file;
    const prev = prevIndex === undefined ? undefined : files[prevIndex]!;
    // libtorrent names BEP 47 pad files `.pad/<size>`: identical pad files may repeat
    const samePad = prev !== undefined && prev.padding && f.padding && prev.length === f.length;
    if (prev !== undefined && !samePad) {
      const path = inTorrent(f.torrentPath ?? f.path);
      const other = inTorrent(prev.torrentPath ?? prev.path);
      const onDisk = inTorrent(f.path);
      const mapped = onDisk !== path || inTorrent(prev.path) !== other;
      throw new MetainfoError(
        `info.files[${i}].path`,
        path === other
          ? `duplicate path ${JSON.stringify(path)}`
          : mapped
            ? `duplicate path ${JSON.stringify(path)}: written as ${JSON.stringify(onDisk)} on disk (as libtorrent maps names), the same file as ${JSON.stringify(other)} (files[${prevIndex}])`
            : `duplicate path ${JSON.stringify(path)}: the same file as ${JSON.stringify(other)} (files[${prevIndex}]) on this platform's file system`,
      );
    }
    node.file = i;
    leaves.push(node);
  }
  for (const [i, f] of files.entries()) {
    if (leaves[i]!.children !== undefined) throw new MetainfoError(`info.files[${i}].path`, `file ${JSON.stringify(inTorrent(f.path))} is also a folder`);
  }
}

function readPieceLength(info: BDict): number {
  const n = requireInt(info, 'piece length', failAt('info.'));
  if (n <= 0) throw new MetainfoError('info.piece length', `must be positive, got ${n}`);
  if (n > MAX_PIECE_LENGTH) throw new MetainfoError('info.piece length', `larger than 512 MiB (${n})`);
  return n;
}

function readPieces(info: BDict, pieceLength: number, totalLength: number): { pieces: Buffer; pieceCount: number } {
  const pieces = requireBytes(info, 'pieces', failAt('info.'));
  if (pieces.length % SHA1_LENGTH !== 0) throw new MetainfoError('info.pieces', `length ${pieces.length} is not a multiple of 20`);
  const pieceCount = pieces.length / SHA1_LENGTH;
  if (pieceCount === 0) throw new MetainfoError('info.pieces', 'no pieces');
  if (pieceCount > MAX_PIECE_COUNT) throw new MetainfoError('info.pieces', `more than ${MAX_PIECE_COUNT} pieces`);
  const expected = Math.ceil(totalLength / pieceLength);
  if (pieceCount !== expected) {
    throw new MetainfoError('info.pieces', `${pieceCount} hashes but ${totalLength} bytes need ${expected} pieces`);
  }
  return { pieces, pieceCount };
}

/** Optional text field: absent or of a wrong type -> undefined (metadata, not structure). */
function optionalText(d: BDict, key: string): string | undefined {
  const alt = getBytes(d, `${key}.utf-8`);
  const altText = alt && utf8OrUndefined(alt);
  if (altText !== undefined) return altText;
  const b = getBytes(d, key);
  return b === undefined ? undefined : text(b);
}

/**
 * Why `url` cannot stand as a URL (tracker, web seed) in a .torrent, or undefined
 * when it can: it is empty, or holds whitespace or a control character. A URL
 * parser strips a tab or line break without a word, so the URL it checked would not
 * be the string written. The reader drops such an entry (after trimming its ends);
 * `tt create` refuses it, so what it writes is what the reader keeps.
 */
export function urlTextProblem(url: string): string | undefined {
  if (url === '') return 'it is empty';
  // eslint-disable-next-line no-control-regex
  const bad = /[\s\x00-\x1f\x7f-\x9f]/u.exec(url)?.[0];
  if (bad === undefined) return undefined;
  const code = `U+${bad.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`;
  const what = bad === ' ' ? 'a space' : bad === '\t' ? 'a tab' : bad === '\n' || bad === '\r' ? 'a line break' : /\s/u.test(bad) ? 'whitespace' : 'a control character';
  return `it holds ${what} (${code}): a URL in a torrent has no whitespace or control characters`;
}

/** A URL-ish string: strict UTF-8, its ends trimmed, then non-empty without whitespace or control characters; else undefined. */
function urlString(v: BValue | undefined): string | undefined {
  if (!isBytes(v)) return undefined;
  const s = utf8OrUndefined(v)?.trim();
  if (s === undefined || urlTextProblem(s) !== undefined) return undefined;
  return s;
}

function readAnnounceList(root: BDict, announce: string | undefined): string[][] {
  const tiers: string[][] = [];
  const raw = getList(root, 'announce-list');
  for (const tier of raw ?? []) {
    if (!isList(tier)) continue;
    const urls = tier.map(urlString).filter((u): u is string => u !== undefined);
    if (urls.length > 0) tiers.push([...new Set(urls)]);
  }
  if (tiers.length > 0) return tiers;
  return announce === undefined ? [] : [[announce]];
}

function readUrlList(root: BDict): string[] {
  const raw = root.get('url-list');
  const list = isList(raw) ? raw : [raw];
  return list.map(urlString).filter((u): u is string => u !== undefined);
}

/** Parse and validate a .torrent file. Throws BencodeError or MetainfoError. */
export function parseTorrent(bytes: Uint8Array, opts: ParseOptions = {}): Metainfo {
  const platform = opts.platform ?? process.platform;
  if (bytes.length > MAX_TORRENT_BYTES) throw new MetainfoError('file', `larger than ${MAX_TORRENT_BYTES} bytes`);
  // byte strings in root are views into bytes: nothing below keeps one (pieces is re-pointed into rawInfo)
  const filesReader = new FilesReader(platform);
  const { value: root, spans } = decodeWithSpans(bytes, undefined, { allowTrailingBytes: opts.allowTrailingBytes === true, shape: torrentShape(filesReader.take) });
  if (!isDict(root)) throw new MetainfoError('torrent', 'not a dictionary');
  const info = requireDict(root, 'info', failAt(''));
  const span = spans.get('info')!;
  const rawInfo = Buffer.from(bytes.subarray(span.start, span.end));
  const infoHash = createHash('sha1').update(rawInfo).digest();

  // BEP 52: a v2-only torrent has a file tree and per-file merkle roots but no v1 piece hashes (a hybrid has both)
  if (getInt(info, 'meta version') === 2 && !info.has('pieces')) {
    throw new MetainfoError('info', "a BitTorrent v2-only torrent (no v1 'pieces'); tt speaks v1: use a v1 or hybrid torrent");
  }
  const rawName = preferUtf8Bytes(info, 'name', 'info.');
  const name = text(rawName);
  const nameOnDisk = diskName('info.name', rawName, name, platform);
  const pieceLength = readPieceLength(info);

  const hasFiles = info.has('files');
  if (hasFiles && info.has('length')) throw new MetainfoError('info.length', "both 'length' and 'files' present");
  let files: TorrentFile[];
  let totalLength: number;
  if (hasFiles) {
    requireList(info, 'files', failAt('info.')); // built empty: its entries went to filesReader
    if (filesReader.error !== undefined) throw filesReader.error;
    if (filesReader.records.length === 0) throw new MetainfoError('info.files', 'empty file list');
    files = filesReader.files(name, nameOnDisk);
    checkCollisions(files, platform);
    if (filesReader.unsafeTotal) throw new MetainfoError('info.files', 'total size is not a safe integer');
    totalLength = filesReader.total;
  } else {
    totalLength = readLength(info, 'info.');
    const path = [nameOnDisk];
    files = [nameOnDisk === name ? { path, length: totalLength, offset: 0, padding: false } : { path, torrentPath: [name], length: totalLength, offset: 0, padding: false }];
  }
  const { pieces: piecesView, pieceCount } = readPieces(info, pieceLength, totalLength);
  // the hashes lie inside the info dict: one copy of them (in rawInfo), none of the caller's bytes kept
  const piecesAt = piecesView.byteOffset - bytes.byteOffset - span.start;
  const pieces = rawInfo.subarray(piecesAt, piecesAt + piecesView.length);
  checkPaddingPieces(files, pieceLength, totalLength, pieces); // BEP 47: padding-only torrents, and padding pieces that are not zeros

  const announce = urlString(root.get('announce'));
  const privateFlag = getInt(info, 'private');
  return {
    infoHash,
    infoHashHex: infoHash.toString('hex'),
    rawInfo,
    name,
    pieceLength,
    pieceCount,
    pieces,
    totalLength,
    multiFile: hasFiles,
    files,
    announce,
    announceList: readAnnounceList(root, announce),
    private: privateFlag !== undefined && privateFlag !== 0,
    creationDate: getInt(root, 'creation date'),
    comment: optionalText(root, 'comment'),
    createdBy: optionalText(root, 'created by'),
    urlList: readUrlList(root),
  };
}
