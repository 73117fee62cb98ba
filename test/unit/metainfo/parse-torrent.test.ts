import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BencodeError, MetainfoError } from '../../../src/core/errors.js';
import { decode, encode } from '../../../src/metainfo/bencode.js';
import { pieceHash } from '../../../src/metainfo/metainfo.js';
import { parseTorrent } from '../../../src/metainfo/parse-torrent.js';
import {
  FIXTURE_ANNOUNCE,
  MULTI_DATA,
  MULTI_FILES,
  SINGLE_DATA,
  badFixtures,
  multiFileList,
  pieceHashes,
  rdict,
  sha1,
  singleInfo,
  torrent,
  withEntry,
} from '../../helpers/torrent-factory.js';

const DIR = join(import.meta.dirname, '../../../fixtures/torrents');
const fixture = (name: string): Buffer => readFileSync(join(DIR, name));

describe('parseTorrent: good fixtures', () => {
  it('single-file: exact values', () => {
    const bytes = fixture('good-single.torrent');
    const m = parseTorrent(bytes);
    expect(m.name).toBe('hello.txt');
    expect(m.multiFile).toBe(false);
    expect(m.totalLength).toBe(100_000);
    expect(m.pieceLength).toBe(32_768);
    expect(m.pieceCount).toBe(4);
    expect(m.files).toEqual([{ path: ['hello.txt'], length: 100_000, offset: 0, padding: false }]);
    expect(m.announce).toBe(FIXTURE_ANNOUNCE);
    expect(m.announceList).toEqual([[FIXTURE_ANNOUNCE]]);
    expect(m.private).toBe(false);
    expect(m.comment).toBe('a single-file fixture');
    expect(m.createdBy).toBe('tt fixtures');
    expect(m.creationDate).toBe(1_700_000_000);
    expect(m.urlList).toEqual([]);
    for (let i = 0; i < m.pieceCount; i++) {
      expect(pieceHash(m, i)).toEqual(sha1(SINGLE_DATA.subarray(i * 32_768, (i + 1) * 32_768)));
    }
    // sorted keys, so here re-encoding agrees with the raw span
    expect(m.infoHash).toEqual(sha1(encode(decode(m.rawInfo))));
    expect(m.infoHashHex).toBe(m.infoHash.toString('hex'));
  });

  it('multi-file: offsets, zero-length file, nested folders, tiers, web seeds, private', () => {
    const m = parseTorrent(fixture('good-multi.torrent'));
    expect(m.multiFile).toBe(true);
    expect(m.name).toBe('album');
    expect(m.totalLength).toBe(MULTI_DATA.length);
    expect(m.pieceCount).toBe(Math.ceil(MULTI_DATA.length / 16_384));
    let offset = 0;
    expect(m.files.length).toBe(MULTI_FILES.length);
    MULTI_FILES.forEach((f, i) => {
      expect(m.files[i]).toEqual({ path: ['album', ...f.path], length: f.data.length, offset, padding: false });
      offset += f.data.length;
    });
    expect(m.files[1]!.length).toBe(0);
    expect(m.private).toBe(true);
    // the empty tier and the integer entry are dropped, not fatal
    expect(m.announceList).toEqual([[FIXTURE_ANNOUNCE, 'udp://127.0.0.1:6969'], ['http://127.0.0.1:7070/announce']]);
    expect(m.urlList).toEqual(['http://127.0.0.1:8080/files/']);
    expect(m.pieces).toEqual(pieceHashes(MULTI_DATA, 16_384));
  });

  it('unordered keys: the info hash is the SHA-1 of the raw span, found by hand', () => {
    const bytes = fixture('good-unordered-keys.torrent');
    const marker = Buffer.from('4:infod');
    const start = bytes.lastIndexOf(marker) + marker.length - 1; // at the 'd'
    expect(start).toBeGreaterThan(marker.length);
    const end = bytes.length - 1; // info is the last top-level value; drop the outer 'e'
    expect(String.fromCharCode(bytes[end - 1]!, bytes[end]!)).toBe('ee');
    const expected = sha1(bytes.subarray(start, end));
    const m = parseTorrent(bytes);
    expect(m.infoHash).toEqual(expected);
    expect(m.rawInfo).toEqual(bytes.subarray(start, end));
    // a re-encoding sorts the keys and would give a different (wrong) hash
    expect(sha1(encode(decode(m.rawInfo))).equals(expected)).toBe(false);
    expect(m.name).toBe('hello.txt');
    expect(m.comment).toBe('keys out of order');
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
  });

  it('BEP 47 padding files are marked, and identical libtorrent-style pad paths may repeat', () => {
    const m = parseTorrent(fixture('good-bep47-padding.torrent'));
    expect(m.files.map((f) => f.padding)).toEqual([false, true, false, true, false]);
    expect(m.files.map((f) => f.offset)).toEqual([0, 10_000, 16_384, 26_384, 32_768]);
  });

  it('keeps a hostile-looking but path-safe name verbatim (the CLI sanitizes for display)', () => {
    const m = parseTorrent(fixture('good-escape-name.torrent'));
    expect(m.name).toContain('\x1b[31m');
  });
});

describe('parseTorrent: every bad fixture is refused naming the field', () => {
  it.each(badFixtures().map((f) => [f.file, f.field] as const))('%s -> %s', (file, field) => {
    let caught: unknown;
    try {
      parseTorrent(fixture(file));
    } catch (err) {
      caught = err;
    }
    if (field === 'bencode') {
      expect(caught).toBeInstanceOf(BencodeError);
    } else {
      expect(caught).toBeInstanceOf(MetainfoError);
      expect((caught as MetainfoError).field).toBe(field);
      expect((caught as MetainfoError).message).toContain(field);
    }
  });
});

describe('parseTorrent: names as the file system sees them', () => {
  const multi = (paths: string[][]): Buffer => {
    const data = Buffer.alloc(paths.length, 7);
    return torrent(
      rdict([
        ['files', multiFileList(paths.map((path) => ({ path, length: 1 })))],
        ['name', 'n'],
        ['piece length', 16384],
        ['pieces', pieceHashes(data, 16384)],
      ]),
    );
  };

  it('a name or path with a letter and a colon at its start parses on POSIX, and is refused for Windows naming the field', () => {
    const named = torrent(rdict(withEntry(singleInfo(), 'name', 'A: Movie.mkv')));
    expect(parseTorrent(named, { platform: 'linux' }).name).toBe('A: Movie.mkv');
    expect(parseTorrent(named, { platform: 'darwin' }).name).toBe('A: Movie.mkv');
    expect(() => parseTorrent(named, { platform: 'win32' })).toThrow(/info\.name: path component is a drive letter/);
    const paths = multi([['x:y'], ['C:', 'Windows']]);
    expect(parseTorrent(paths, { platform: 'linux' }).files.map((f) => f.path)).toEqual([['n', 'x:y'], ['n', 'C:', 'Windows']]);
    expect(() => parseTorrent(paths, { platform: 'win32' })).toThrow(/info\.files\[0\]\.path/);
  });

  it('duplicates are what collides on the file system: NFC/NFD and A/a are two files on Linux, one on macOS', () => {
    const nfcPair = multi([['d', 'caf\u00e9'], ['d', 'cafe\u0301']]);
    expect(parseTorrent(nfcPair, { platform: 'linux' }).files.map((f) => f.path[2])).toEqual(['caf\u00e9', 'cafe\u0301']);
    expect(() => parseTorrent(nfcPair, { platform: 'darwin' })).toThrow(/info\.files\[1\]\.path: duplicate path .*the same file as "d\/caf\u00e9" \(files\[0\]\)/);
    expect(parseTorrent(nfcPair, { platform: 'win32' }).files).toHaveLength(2);
    const casePair = multi([['A'], ['a']]);
    expect(parseTorrent(casePair, { platform: 'linux' }).files).toHaveLength(2);
    expect(() => parseTorrent(casePair, { platform: 'darwin' })).toThrow(/duplicate path/);
    expect(() => parseTorrent(casePair, { platform: 'win32' })).toThrow(/duplicate path/);
    // a folder that is also a file counts the same way
    const folderCase = multi([['Dir', 'x'], ['dir']]);
    expect(parseTorrent(folderCase, { platform: 'linux' }).files).toHaveLength(2);
    expect(() => parseTorrent(folderCase, { platform: 'darwin' })).toThrow(/files\[1\]\.path: file "dir" is also a folder/);
    // identical names collide everywhere
    for (const platform of ['linux', 'darwin', 'win32'] as const) {
      expect(() => parseTorrent(multi([['a'], ['a']]), { platform })).toThrow(/files\[1\]\.path: duplicate path "a"$/);
    }
  });
});

describe('parseTorrent: bytes after the top-level dictionary', () => {
  const good = fixture('good-multi.torrent');
  const trailing = Buffer.concat([good, Buffer.from('\n\x00junk that is not bencode d3:fooe')]);

  it('refused by default (a torrent tt assembles itself must be one value)', () => {
    expect(() => parseTorrent(trailing)).toThrow(BencodeError);
    expect(() => parseTorrent(trailing)).toThrow(/trailing bytes after value/);
  });

  it('accepted for a .torrent file (allowTrailingBytes), with the same info hash and content', () => {
    const m = parseTorrent(trailing, { allowTrailingBytes: true });
    const plain = parseTorrent(good);
    expect(m.infoHashHex).toBe(plain.infoHashHex);
    expect(m.rawInfo).toEqual(plain.rawInfo);
    expect(m.files).toEqual(plain.files);
    // what comes before the end still has to be right
    expect(() => parseTorrent(good.subarray(0, good.length - 1), { allowTrailingBytes: true })).toThrow(BencodeError);
  });
});

describe('parseTorrent: other rules', () => {
  const withInfo = (info: [string, Parameters<typeof rdict>[0][number][1]][], top?: Parameters<typeof torrent>[1]) =>
    torrent(rdict(info), top);

  it('a v2-only torrent (BEP 52: file tree, no v1 pieces) is refused saying what it is; a hybrid parses as v1', () => {
    const fileTree = rdict([['a.bin', rdict([['', rdict([['length', 5], ['pieces root', Buffer.alloc(32, 1)]])]])]]);
    const v2only = withInfo([['file tree', fileTree], ['meta version', 2], ['name', 'x'], ['piece length', 16384]]);
    expect(() => parseTorrent(v2only)).toThrow(MetainfoError);
    expect(() => parseTorrent(v2only)).toThrow(/v2-only/);
    const hybrid = withInfo([...singleInfo(), ['file tree', fileTree], ['meta version', 2]].sort(([a], [b]) => (a < b ? -1 : 1)) as Parameters<typeof withInfo>[0]);
    expect(parseTorrent(hybrid).pieceCount).toBe(parseTorrent(withInfo(singleInfo())).pieceCount);
  });

  it('refuses a file over 10 MiB before decoding', () => {
    const big = Buffer.alloc(10 * 1024 * 1024 + 1, 0x65);
    expect(() => parseTorrent(big)).toThrow(MetainfoError);
    expect(() => parseTorrent(big)).toThrow(/file/);
  });

  it('refuses truncation at every byte of a good torrent with a typed error', () => {
    const bytes = fixture('good-multi.torrent');
    for (let cut = 0; cut < bytes.length; cut++) {
      expect(() => parseTorrent(bytes.subarray(0, cut))).toThrow(BencodeError);
    }
  });

  it('prefers name.utf-8 when valid, replaces invalid UTF-8 with U+FFFD otherwise', () => {
    const latin1Name = Buffer.from([0x63, 0x61, 0x66, 0xe9]); // "café" in latin1: invalid UTF-8
    const m1 = parseTorrent(withInfo([...withEntry(singleInfo(), 'name', latin1Name), ['name.utf-8', 'café']]));
    expect(m1.name).toBe('café');
    const m2 = parseTorrent(withInfo(withEntry(singleInfo(), 'name', latin1Name)));
    expect(m2.name).toBe('caf\ufffd');
    const m3 = parseTorrent(withInfo([...singleInfo(), ['name.utf-8', Buffer.from([0xff])]]));
    expect(m3.name).toBe('hello.txt');
  });

  it('prefers path.utf-8 when valid', () => {
    const files = [rdict([['length', 1], ['path', [Buffer.from([0xe9])]], ['path.utf-8', ['é']]])];
    const m = parseTorrent(withInfo([
      ['files', files],
      ['name', 'n'],
      ['piece length', 16384],
      ['pieces', pieceHashes(Buffer.alloc(1), 16384)],
    ]));
    expect(m.files[0]!.path).toEqual(['n', 'é']);
  });

  it('falls back to [[announce]], or [] with no trackers at all', () => {
    const none = parseTorrent(withInfo(singleInfo(), []));
    expect(none.announce).toBeUndefined();
    expect(none.announceList).toEqual([]);
    const junkList = parseTorrent(withInfo(singleInfo(), [['announce', FIXTURE_ANNOUNCE], ['announce-list', 'not a list']]));
    expect(junkList.announceList).toEqual([[FIXTURE_ANNOUNCE]]);
    const tiersOnly = parseTorrent(withInfo(singleInfo(), [['announce-list', [['udp://127.0.0.1:1'], ['udp://127.0.0.1:1', ''], 'x']]]));
    expect(tiersOnly.announce).toBeUndefined();
    expect(tiersOnly.announceList).toEqual([['udp://127.0.0.1:1'], ['udp://127.0.0.1:1']]);
  });

  it('url-list may be a single string; wrongly typed optional metadata is ignored', () => {
    const m = parseTorrent(withInfo(singleInfo(), [
      ['comment', 5],
      ['creation date', 'yesterday'],
      ['url-list', 'http://127.0.0.1:1/x'],
    ]));
    expect(m.urlList).toEqual(['http://127.0.0.1:1/x']);
    expect(m.comment).toBeUndefined();
    expect(m.creationDate).toBeUndefined();
  });

  it('private is on only for a non-zero integer (BEP 27)', () => {
    expect(parseTorrent(withInfo([...singleInfo(), ['private', 0]])).private).toBe(false);
    expect(parseTorrent(withInfo([...singleInfo(), ['private', '1']])).private).toBe(false);
    expect(parseTorrent(withInfo([...singleInfo(), ['private', 1]])).private).toBe(true);
  });

  it('a zero-length single file cannot have pieces, so it is refused by the piece count rule', () => {
    const info = withEntry(withEntry(singleInfo(), 'length', 0), 'pieces', Buffer.alloc(0));
    expect(() => parseTorrent(withInfo(info))).toThrow(/info\.pieces/);
  });

  it('a pad file colliding with a real file is still a duplicate', () => {
    const files = multiFileList([
      { path: ['a'], length: 1 },
      { path: ['a'], length: 1, attr: 'p' },
    ]);
    const bytes = withInfo([['files', files], ['name', 'n'], ['piece length', 16384], ['pieces', pieceHashes(Buffer.alloc(2), 16384)]]);
    expect(() => parseTorrent(bytes)).toThrow(/duplicate/);
  });

  it('a non-string path component of path.utf-8 falls back to path', () => {
    const files = [rdict([['length', 1], ['path', ['ok']], ['path.utf-8', [1]]])];
    const m = parseTorrent(withInfo([['files', files], ['name', 'n'], ['piece length', 16384], ['pieces', pieceHashes(Buffer.alloc(1), 16384)]]));
    expect(m.files[0]!.path).toEqual(['n', 'ok']);
  });
});
