/**
 * parseTorrent maps every name to the one written on disk (path-safety.ts
 * diskComponent, libtorrent's mapping) for the torrent's name and each path
 * component, single- and multi-file: files[].path is what download, seed,
 * verify, resume and --select use; `name` and `torrentPath` keep the torrent's
 * spelling (shown to people, web seed URLs); the info hash stays that of the
 * raw bytes. Names that map onto one another are refused, naming both.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { encode } from '../../../src/metainfo/bencode.js';
import { parseTorrent } from '../../../src/metainfo/parse-torrent.js';
import { fileUrl } from '../../../src/webseed/url.js';

const LONG = '日本語の長いファイル名'.repeat(9); // 99 characters, 297 bytes
const SHORT = LONG.slice(0, 80); // 240 bytes: what libtorrent keeps
const sha1 = (b: Buffer): Buffer => createHash('sha1').update(b).digest();

function multi(name: string | Buffer, paths: (string | Buffer)[][], extra: Record<string, string> = {}): Buffer {
  const data = Buffer.alloc(paths.length, 7);
  const info = { name, 'piece length': 16384, pieces: sha1(data), files: paths.map((path) => ({ length: 1, path })) };
  return encode({ announce: 'http://127.0.0.1:1/announce', info, ...extra });
}

function single(name: string | Buffer): Buffer {
  const data = Buffer.alloc(10, 7);
  return encode({ info: { length: 10, name, 'piece length': 16384, pieces: sha1(data) } });
}

describe('parseTorrent: names as written on disk', () => {
  it('a 297-byte file name in a folder: files[].path is the 244-byte name libtorrent writes; torrentPath and the info hash are the torrent\'s', () => {
    const bytes = multi('album', [[`${LONG}.mp3`], ['short.txt']]);
    const m = parseTorrent(bytes, { platform: 'linux' });
    expect(m.name).toBe('album');
    expect(m.files[0]!.path).toEqual(['album', `${SHORT}.mp3`]);
    expect(Buffer.byteLength(m.files[0]!.path[1]!)).toBe(244);
    expect(m.files[0]!.torrentPath).toEqual(['album', `${LONG}.mp3`]);
    expect(m.files[1]).toEqual({ path: ['album', 'short.txt'], length: 1, offset: 1, padding: false });
    const infoStart = bytes.indexOf('4:infod') + 6;
    expect(m.infoHash).toEqual(sha1(bytes.subarray(infoStart, bytes.length - 1)));
  });

  it('the torrent\'s own name too: single-file, and the folder of a multi-file torrent', () => {
    const s = parseTorrent(single(`${LONG}.flac`), { platform: 'linux' });
    expect(s.name).toBe(`${LONG}.flac`);
    expect(s.files[0]!.path).toEqual([`${SHORT}.flac`]);
    const m = parseTorrent(multi(LONG, [['a'], ['b']]), { platform: 'linux' });
    expect(m.files.map((f) => f.path)).toEqual([[SHORT, 'a'], [SHORT, 'b']]);
    expect(m.files[1]!.torrentPath).toEqual([LONG, 'b']);
  });

  it('control characters become _ and bidi overrides are dropped on disk; the name shown keeps them', () => {
    const m = parseTorrent(multi('evil\x1b[31m\nname', [['\u202egnp.exe'], ['tab\there', 'x\ry']]), { platform: 'linux' });
    expect(m.name).toBe('evil\x1b[31m\nname');
    expect(m.files.map((f) => f.path)).toEqual([
      ['evil_[31m_name', 'gnp.exe'],
      ['evil_[31m_name', 'tab_here', 'x_y'],
    ]);
  });

  it('invalid UTF-8 on disk is _ per bad sequence, as libtorrent writes it (shown as U+FFFD)', () => {
    const m = parseTorrent(multi('n', [[Buffer.from('61ff62', 'hex')]]), { platform: 'linux' });
    expect(m.files[0]!.path).toEqual(['n', 'a_b']);
    expect(m.files[0]!.torrentPath).toEqual(['n', 'a\ufffdb']);
  });

  it('ordinary names carry no torrentPath (the common case is unchanged)', () => {
    const m = parseTorrent(multi('n', [['A: Movie.mkv'], ['d', 'caf\u00e9']]), { platform: 'linux' });
    expect(m.files.map((f) => 'torrentPath' in f)).toEqual([false, false]);
  });

  it('two names that map to one are refused, naming both and what they are written as', () => {
    const pair = multi('album', [[`${LONG}.mp3`], [`${LONG}x.mp3`]]);
    expect(() => parseTorrent(pair, { platform: 'linux' })).toThrow(
      `info.files[1].path: duplicate path "${LONG}x.mp3": written as "${SHORT}.mp3" on disk (as libtorrent maps names), the same file as "${LONG}.mp3" (files[0])`,
    );
    expect(() => parseTorrent(multi('n', [['a\x01'], ['a\x02']]), { platform: 'linux' })).toThrow(/files\[1\]\.path: duplicate path "a\\u0002": written as "a_"/);
    // a file that maps onto a folder's name
    expect(() => parseTorrent(multi('n', [['d\x01', 'x'], ['d\x02']]), { platform: 'linux' })).toThrow(/files\[1\]\.path: file .* is also a folder/);
  });

  it('a name that maps to nothing, or to . or .., is refused naming the field', () => {
    expect(() => parseTorrent(multi('n', [['\u202e\u202c']]), { platform: 'linux' })).toThrow(/^invalid torrent: info\.files\[0\]\.path: "\u202e\u202c" is written as "" on disk \(as libtorrent maps names\): empty path component$/);
    expect(() => parseTorrent(multi('n', [['.\u200e.']]), { platform: 'linux' })).toThrow(/info\.files\[0\]\.path: .* is written as "\.\." on disk .*: path component '\.\.'/);
    expect(() => parseTorrent(single('\u200f'), { platform: 'linux' })).toThrow(/^invalid torrent: info\.name: /);
  });

  it('web seed URLs name the files as the torrent spells them, not as written on disk', () => {
    const m = parseTorrent(multi('album', [[`${LONG}.mp3`], ['b']]), { platform: 'linux' });
    const url = fileUrl(new URL('http://127.0.0.1:1/files/'), m, 0);
    expect(decodeURIComponent(url)).toBe(`http://127.0.0.1:1/files/album/${LONG}.mp3`);
  });
});
