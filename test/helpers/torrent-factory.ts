/**
 * Test torrent builders: a raw bencode writer that keeps dict keys in the order
 * given (unsorted, duplicated, or verbatim bytes), deterministic content, and the
 * table of good and hostile fixtures under fixtures/torrents/ (regenerate with
 * `TT_WRITE_FIXTURES=1 npx vitest run test/unit/metainfo/fixtures.test.ts`).
 */
import { createHash } from 'node:crypto';

/** Bytes inserted verbatim (for non-canonical integers, truncation, ...). */
export class RawLiteral {
  constructor(readonly bytes: Buffer) {}
}
/** A dict written with its entries in exactly this order (duplicates allowed). */
export class RawDict {
  constructor(readonly entries: readonly (readonly [string, Raw])[]) {}
}
export type Raw = Buffer | string | number | readonly Raw[] | RawDict | RawLiteral;

export const rdict = (entries: readonly (readonly [string, Raw])[]): RawDict => new RawDict(entries);
export const literal = (s: string | Buffer): RawLiteral => new RawLiteral(Buffer.isBuffer(s) ? s : Buffer.from(s, 'latin1'));

/** Encode without sorting or checking anything: the test decides every byte. Strings are UTF-8. */
export function rawEncode(v: Raw): Buffer {
  if (v instanceof RawLiteral) return v.bytes;
  if (typeof v === 'number') return Buffer.from(`i${v}e`);
  if (typeof v === 'string') return rawEncode(Buffer.from(v, 'utf8'));
  if (Buffer.isBuffer(v)) return Buffer.concat([Buffer.from(`${v.length}:`), v]);
  if (v instanceof RawDict) {
    const parts: Buffer[] = [Buffer.from('d')];
    for (const [k, val] of v.entries) parts.push(rawEncode(k), rawEncode(val));
    parts.push(Buffer.from('e'));
    return Buffer.concat(parts);
  }
  return Buffer.concat([Buffer.from('l'), ...(v as readonly Raw[]).map(rawEncode), Buffer.from('e')]);
}

/** Deterministic content: n bytes of a simple pattern. */
export function patternBytes(n: number, seed = 1): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed * 7 + (i >>> 8)) & 0xff;
  return b;
}

export function sha1(data: Uint8Array): Buffer {
  return createHash('sha1').update(data).digest();
}

/** Concatenated SHA-1 of each piece of `data`. */
export function pieceHashes(data: Buffer, pieceLength: number): Buffer {
  const out: Buffer[] = [];
  for (let at = 0; at < data.length; at += pieceLength) out.push(sha1(data.subarray(at, at + pieceLength)));
  return Buffer.concat(out);
}

/** Entries with `key` replaced in place (or appended), or removed when value is undefined. */
export function withEntry(entries: readonly (readonly [string, Raw])[], key: string, value: Raw | undefined): [string, Raw][] {
  const out: [string, Raw][] = [];
  let found = false;
  for (const [k, v] of entries) {
    if (k !== key) out.push([k, v]);
    else if (!found) {
      found = true;
      if (value !== undefined) out.push([k, value]);
    }
  }
  if (!found && value !== undefined) out.push([key, value]);
  return out;
}

export const FIXTURE_ANNOUNCE = 'http://127.0.0.1:6969/announce';
export const SINGLE_PIECE_LENGTH = 32 * 1024;
export const SINGLE_DATA = patternBytes(100_000, 1);
export const MULTI_PIECE_LENGTH = 16 * 1024;
/** Odd sizes, files crossing piece boundaries, a zero-length file, a nested folder. */
export const MULTI_FILES: readonly { path: string[]; data: Buffer }[] = [
  { path: ['a.bin'], data: patternBytes(40_000, 2) },
  { path: ['empty.txt'], data: Buffer.alloc(0) },
  { path: ['sub', 'b.bin'], data: patternBytes(70_001, 3) },
  { path: ['sub', 'c.bin'], data: patternBytes(1, 4) },
  { path: ['z', 'deep', 'd.bin'], data: patternBytes(16_384, 5) },
];
export const MULTI_DATA = Buffer.concat(MULTI_FILES.map((f) => f.data));

export function singleInfo(): [string, Raw][] {
  return [
    ['length', SINGLE_DATA.length],
    ['name', 'hello.txt'],
    ['piece length', SINGLE_PIECE_LENGTH],
    ['pieces', pieceHashes(SINGLE_DATA, SINGLE_PIECE_LENGTH)],
  ];
}

export function multiFileList(files: readonly { path: readonly string[]; length: number; attr?: string }[]): RawDict[] {
  return files.map((f) =>
    rdict([...(f.attr === undefined ? [] : [['attr', f.attr] as const]), ['length', f.length], ['path', [...f.path]]]),
  );
}

export function multiInfo(): [string, Raw][] {
  return [
    ['files', multiFileList(MULTI_FILES.map((f) => ({ path: f.path, length: f.data.length })))],
    ['name', 'album'],
    ['piece length', MULTI_PIECE_LENGTH],
    ['pieces', pieceHashes(MULTI_DATA, MULTI_PIECE_LENGTH)],
    ['private', 1],
  ];
}

/** A whole torrent: top-level entries in the given order, `info` last unless placed. */
export function torrent(info: Raw, top: readonly (readonly [string, Raw])[] = [['announce', FIXTURE_ANNOUNCE]]): Buffer {
  return rawEncode(rdict([...top, ['info', info]]));
}

const single = (info: [string, Raw][]): Buffer => torrent(rdict(info));
const multi = (info: [string, Raw][]): Buffer => torrent(rdict(info));
const singleWith = (key: string, value: Raw | undefined): Buffer => single(withEntry(singleInfo(), key, value));
const multiWith = (key: string, value: Raw | undefined): Buffer => multi(withEntry(multiInfo(), key, value));
/** Multi-file torrent whose file list is `paths`, each 1 byte, pieces consistent. */
function multiPaths(paths: readonly (readonly string[])[]): Buffer {
  const data = Buffer.alloc(paths.length, 0x61);
  return multi([
    ['files', multiFileList(paths.map((path) => ({ path, length: 1 })))],
    ['name', 'album'],
    ['piece length', MULTI_PIECE_LENGTH],
    ['pieces', pieceHashes(data, MULTI_PIECE_LENGTH)],
  ]);
}

export interface GoodFixture {
  readonly file: string;
  readonly bytes: Buffer;
}
export interface BadFixture {
  readonly file: string;
  readonly bytes: Buffer;
  /** The MetainfoError field, or 'bencode' for a BencodeError. */
  readonly field: string;
}

export function goodFixtures(): GoodFixture[] {
  return [
    {
      file: 'good-single.torrent',
      bytes: torrent(rdict(singleInfo()), [
        ['announce', FIXTURE_ANNOUNCE],
        ['comment', 'a single-file fixture'],
        ['created by', 'tt fixtures'],
        ['creation date', 1_700_000_000],
      ]),
    },
    {
      file: 'good-multi.torrent',
      bytes: torrent(rdict(multiInfo()), [
        ['announce', FIXTURE_ANNOUNCE],
        ['announce-list', [[FIXTURE_ANNOUNCE, 'udp://127.0.0.1:6969'], [], [7], ['http://127.0.0.1:7070/announce']]],
        ['url-list', ['http://127.0.0.1:8080/files/']],
      ]),
    },
    {
      // keys out of order at both levels; `info` last so a test can find its span by hand
      file: 'good-unordered-keys.torrent',
      bytes: torrent(rdict([...singleInfo()].reverse()), [
        ['comment', 'keys out of order'],
        ['announce', FIXTURE_ANNOUNCE],
        ['__proto__', rdict([['polluted', 1]])],
      ]),
    },
    {
      file: 'good-bep47-padding.torrent',
      bytes: (() => {
        const files = [
          { path: ['x.bin'], length: 10_000 },
          { path: ['.pad', '6384'], length: 6384, attr: 'p' },
          { path: ['y.bin'], length: 10_000 },
          { path: ['.pad', '6384'], length: 6384, attr: 'p' },
          { path: ['w.bin'], length: 1 },
        ];
        const data = Buffer.alloc(files.reduce((s, f) => s + f.length, 0));
        return multi([
          ['files', multiFileList(files)],
          ['name', 'padded'],
          ['piece length', MULTI_PIECE_LENGTH],
          ['pieces', pieceHashes(data, MULTI_PIECE_LENGTH)],
        ]);
      })(),
    },
    {
      // a hostile but structurally valid name: escape sequences, C1 control, bidi override
      file: 'good-escape-name.torrent',
      bytes: singleWith('name', 'evil\x1b[31mRED\x1b]0;pwned\x07\u009b2J\u202eexe.txt'),
    },
  ];
}

export function badFixtures(): BadFixture[] {
  const info = rdict(singleInfo());
  return [
    { file: 'bad-not-a-dict.torrent', field: 'torrent', bytes: rawEncode([1, 2]) },
    { file: 'bad-bencode-truncated.torrent', field: 'bencode', bytes: torrent(info).subarray(0, 60) },
    { file: 'bad-bencode-duplicate-key.torrent', field: 'bencode', bytes: single([...singleInfo(), ['name', 'again.txt']]) },
    { file: 'bad-bencode-noncanonical-int.torrent', field: 'bencode', bytes: singleWith('piece length', literal('i032768e')) },
    { file: 'bad-bencode-unsafe-int.torrent', field: 'bencode', bytes: singleWith('length', literal('i9007199254740993e')) },
    { file: 'bad-bencode-deep-nesting.torrent', field: 'bencode', bytes: torrent(info, [['x', literal('l'.repeat(101) + 'e'.repeat(101))]]) },
    { file: 'bad-missing-info.torrent', field: 'info', bytes: rawEncode(rdict([['announce', FIXTURE_ANNOUNCE]])) },
    { file: 'bad-info-not-dict.torrent', field: 'info', bytes: torrent([1]) },
    { file: 'bad-missing-name.torrent', field: 'info.name', bytes: singleWith('name', undefined) },
    { file: 'bad-name-not-string.torrent', field: 'info.name', bytes: singleWith('name', 5) },
    { file: 'bad-name-dotdot.torrent', field: 'info.name', bytes: singleWith('name', '..') },
    { file: 'bad-name-slash.torrent', field: 'info.name', bytes: singleWith('name', 'a/b') },
    { file: 'bad-name-utf8-traversal.torrent', field: 'info.name', bytes: single([...singleInfo(), ['name.utf-8', '..']]) },
    { file: 'bad-missing-piece-length.torrent', field: 'info.piece length', bytes: singleWith('piece length', undefined) },
    { file: 'bad-piece-length-zero.torrent', field: 'info.piece length', bytes: singleWith('piece length', 0) },
    { file: 'bad-piece-length-negative.torrent', field: 'info.piece length', bytes: singleWith('piece length', -16384) },
    { file: 'bad-piece-length-too-big.torrent', field: 'info.piece length', bytes: singleWith('piece length', 1024 * 1024 * 1024) },
    { file: 'bad-piece-length-not-int.torrent', field: 'info.piece length', bytes: singleWith('piece length', '32768') },
    { file: 'bad-missing-pieces.torrent', field: 'info.pieces', bytes: singleWith('pieces', undefined) },
    { file: 'bad-pieces-not-multiple-of-20.torrent', field: 'info.pieces', bytes: singleWith('pieces', Buffer.alloc(20 * 4 - 1)) },
    { file: 'bad-pieces-empty.torrent', field: 'info.pieces', bytes: singleWith('pieces', Buffer.alloc(0)) },
    { file: 'bad-piece-count-mismatch.torrent', field: 'info.pieces', bytes: singleWith('pieces', Buffer.alloc(20 * 5)) },
    { file: 'bad-missing-length.torrent', field: 'info.length', bytes: singleWith('length', undefined) },
    { file: 'bad-length-not-int.torrent', field: 'info.length', bytes: singleWith('length', '100000') },
    { file: 'bad-negative-length.torrent', field: 'info.length', bytes: singleWith('length', -1) },
    { file: 'bad-both-length-and-files.torrent', field: 'info.length', bytes: multi([...multiInfo(), ['length', 5]]) },
    { file: 'bad-files-not-list.torrent', field: 'info.files', bytes: multiWith('files', 'a.bin') },
    { file: 'bad-empty-file-list.torrent', field: 'info.files', bytes: multiWith('files', []) },
    { file: 'bad-file-entry-not-dict.torrent', field: 'info.files[0]', bytes: multiWith('files', [5]) },
    {
      file: 'bad-negative-file-length.torrent',
      field: 'info.files[1].length',
      bytes: multiWith('files', multiFileList([{ path: ['a'], length: 5 }, { path: ['b'], length: -5 }])),
    },
    {
      file: 'bad-total-size-unsafe.torrent',
      field: 'info.files',
      bytes: multiWith('files', multiFileList([{ path: ['a'], length: 2 ** 52 }, { path: ['b'], length: 2 ** 52 }])),
    },
    { file: 'bad-path-missing.torrent', field: 'info.files[0].path', bytes: multiWith('files', [rdict([['length', 1]])]) },
    { file: 'bad-path-empty-list.torrent', field: 'info.files[0].path', bytes: multiPaths([[]]) },
    { file: 'bad-path-component-not-string.torrent', field: 'info.files[0].path[0]', bytes: multiWith('files', [rdict([['length', 1], ['path', [3]]])]) },
    { file: 'bad-traversal-dotdot.torrent', field: 'info.files[1].path', bytes: multiPaths([['ok'], ['..', '..', 'etc', 'passwd']]) },
    { file: 'bad-traversal-dot.torrent', field: 'info.files[0].path', bytes: multiPaths([['.', 'x']]) },
    { file: 'bad-traversal-empty-component.torrent', field: 'info.files[0].path', bytes: multiPaths([['a', '', 'b']]) },
    { file: 'bad-traversal-slash-in-component.torrent', field: 'info.files[0].path', bytes: multiPaths([['a/../../b']]) },
    { file: 'bad-traversal-absolute.torrent', field: 'info.files[0].path', bytes: multiPaths([['/etc/passwd']]) },
    { file: 'bad-traversal-backslash.torrent', field: 'info.files[0].path', bytes: multiPaths([['..\\..\\windows']]) },
    { file: 'bad-traversal-nul.torrent', field: 'info.files[0].path', bytes: multiPaths([['a\0.txt']]) },
    { file: 'bad-traversal-utf8-variant.torrent', field: 'info.files[0].path', bytes: multiWith('files', [rdict([['length', 1], ['path', ['ok']], ['path.utf-8', ['..']]])]) },
    { file: 'bad-duplicate-path.torrent', field: 'info.files[2].path', bytes: multiPaths([['a'], ['b'], ['a']]) },
    { file: 'bad-file-folder-collision.torrent', field: 'info.files[0].path', bytes: multiPaths([['a', 'b'], ['a', 'b', 'c']]) },
  ];
}
