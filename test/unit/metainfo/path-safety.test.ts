/**
 * path-safety.ts per platform: a colon is an ordinary character on POSIX
 * (`A: Movie.mkv`, `x:y`, even `C:`), refused on Windows (drive, NTFS stream)
 * with its reserved device names; what is refused everywhere stays refused;
 * collisionKey says which names are one file: identical ones on Linux, case
 * and normalization folded on macOS, case and trailing dots on Windows.
 */
import { describe, expect, it } from 'vitest';
import { collisionKey, diskComponent, isSafePath, unsafeComponentReason } from '../../../src/metainfo/path-safety.js';

describe('unsafeComponentReason', () => {
  it('refuses on every platform: empty, . and .., separators, NUL', () => {
    for (const platform of ['linux', 'darwin', 'freebsd', 'win32'] as const) {
      for (const bad of ['', '.', '..', 'a/b', '/etc', 'a\\b', '..\\x', 'a\0b']) {
        expect(unsafeComponentReason(bad, platform), `${platform} ${JSON.stringify(bad)}`).toBeDefined();
      }
    }
  });

  it('a colon is an ordinary character on POSIX, as libtorrent keeps it', () => {
    for (const platform of ['linux', 'darwin', 'freebsd'] as const) {
      for (const ok of ['x:y', 'A: Movie.mkv', 'C:', 'c:\u00e9', 'a.txt:stream', '12:30 meeting.txt', 'NUL', 'con.txt']) {
        expect(unsafeComponentReason(ok, platform), `${platform} ${ok}`).toBeUndefined();
      }
    }
    expect(isSafePath(['A: Movie.mkv', 'x:y'], 'linux')).toBe(true);
  });

  it('Windows refuses drive letters, NTFS streams and reserved device names', () => {
    expect(unsafeComponentReason('C:', 'win32')).toMatch(/drive letter/);
    expect(unsafeComponentReason('A: Movie.mkv', 'win32')).toMatch(/drive letter/);
    expect(unsafeComponentReason('a.txt:stream', 'win32')).toMatch(/':'/);
    for (const reserved of ['NUL', 'con', 'con.txt', 'Com1.log', 'lpt9', 'aux.', 'PRN ']) {
      expect(unsafeComponentReason(reserved, 'win32'), reserved).toMatch(/reserved device name/);
    }
    for (const ok of ['console', 'nul2', 'com10', 'a.con']) expect(unsafeComponentReason(ok, 'win32'), ok).toBeUndefined();
    expect(isSafePath(['ok', 'x:y'], 'win32')).toBe(false);
  });

  it('defaults to the platform tt runs on', () => {
    expect(unsafeComponentReason('x:y')).toBe(unsafeComponentReason('x:y', process.platform));
    expect(collisionKey('A')).toBe(collisionKey('A', process.platform));
  });
});

describe('collisionKey', () => {
  const nfc = 'caf\u00e9';
  const nfd = 'cafe\u0301';

  it('Linux: only identical names collide (NFC and NFD, A and a are two files)', () => {
    expect(collisionKey(nfc, 'linux')).not.toBe(collisionKey(nfd, 'linux'));
    expect(collisionKey('A', 'linux')).not.toBe(collisionKey('a', 'linux'));
    expect(collisionKey('a.', 'linux')).not.toBe(collisionKey('a', 'linux'));
    expect(collisionKey(nfc, 'linux')).toBe(nfc);
  });

  it('macOS: normalization and case are folded', () => {
    expect(collisionKey(nfc, 'darwin')).toBe(collisionKey(nfd, 'darwin'));
    expect(collisionKey('A', 'darwin')).toBe(collisionKey('a', 'darwin'));
    expect(collisionKey('CAFE\u0301', 'darwin')).toBe(collisionKey(nfc, 'darwin'));
    expect(collisionKey('a', 'darwin')).not.toBe(collisionKey('b', 'darwin'));
  });

  it('Windows: case is folded, trailing dots and spaces dropped; normalization is not folded', () => {
    expect(collisionKey('A', 'win32')).toBe(collisionKey('a', 'win32'));
    expect(collisionKey('a. .', 'win32')).toBe(collisionKey('a', 'win32'));
    expect(collisionKey(nfc, 'win32')).not.toBe(collisionKey(nfd, 'win32'));
  });
});

/**
 * diskComponent: the name a torrent's path component is written under, as
 * libtorrent 2.0.8 (python3-libtorrent here) maps it. Each expected value is
 * what libtorrent's torrent_info gave for the same bytes (file_path(), checked
 * live by test/interop/names.test.ts).
 */
describe('diskComponent: names as libtorrent writes them', () => {
  const map = (raw: string | Buffer, platform: 'linux' | 'win32' = 'linux'): string => diskComponent(typeof raw === 'string' ? Buffer.from(raw) : raw, platform);
  const bytes = (s: string): number => Buffer.byteLength(s);

  it('an ordinary name is kept byte for byte (colon, DEL, isolates, emoji, 240 bytes exactly)', () => {
    for (const ok of ['hello.txt', 'A: Movie.mkv', 'caf\u00e9', 'cafe\u0301', 'a\x7fb', 'x\u2066y\u2069', '\u{1f600}.png', 'a'.repeat(240), '..a', 'a.']) {
      expect(map(ok), JSON.stringify(ok)).toBe(ok);
    }
  });

  it('99 CJK characters + .mp3 (301 bytes): 80 characters + .mp3 (244 bytes), never cut inside a character', () => {
    const name = '日本語の長いファイル名'.repeat(9);
    const out = map(`${name}.mp3`);
    expect(out).toBe(`${name.slice(0, 80)}.mp3`);
    expect(bytes(out)).toBe(244);
    // 2-byte characters after one ASCII byte reach 241, not 240: the whole character stays
    const mixed = map(`a${'\u00e9'.repeat(150)}.flac`);
    expect(mixed).toBe(`a${'\u00e9'.repeat(120)}.flac`);
    expect(bytes(mixed)).toBe(246);
    // four-byte characters: 60 of them are 240 bytes
    expect(map('\u{1f600}'.repeat(70))).toBe('\u{1f600}'.repeat(60));
  });

  it('the extension is kept when its dot is in the last 9 bytes; a longer one, or an early dot, is cut with the rest', () => {
    const a = 'a'.repeat(250);
    expect(map(`${a}.abcdefgh`)).toBe(`${'a'.repeat(240)}.abcdefgh`);
    expect(map(`${a}.abcdefghijk`)).toBe('a'.repeat(240));
    expect(map('a'.repeat(300))).toBe('a'.repeat(240));
    expect(map(`${'a'.repeat(100)}.b${'c'.repeat(200)}`)).toBe(`${'a'.repeat(100)}.b${'c'.repeat(138)}`);
    expect(map(`${'a'.repeat(245)}.`)).toBe(`${'a'.repeat(240)}.`);
    expect(map(`${'a'.repeat(239)}.b.c${'d'.repeat(20)}.e`)).toBe(`${'a'.repeat(239)}..e`);
  });

  it('C0 controls become _ (tab, CR, LF, ESC), bidi overrides are dropped, isolates and DEL stay', () => {
    expect(map('a\x01b\nc\rd\x1fe\x7ff\tg\x1b[31m')).toBe('a_b_c_d_e\x7ff_g_[31m');
    expect(map('x\u202ey\u2066z\u200e.txt')).toBe('xy\u2066z.txt');
    expect(map('\u202egnp.exe')).toBe('gnp.exe');
    expect(map('\u202a\u202b\u202c\u202d\u200f')).toBe('');
  });

  it('each invalid UTF-8 sequence becomes one _, consuming the bytes libtorrent consumes', () => {
    expect(map(Buffer.from('61ff62e6976 3c328 64f09f9865'.replace(/ /g, ''), 'hex'))).toBe('a_b__d_');
    expect(map(Buffer.from('61eda08062', 'hex'))).toBe('a_b'); // a surrogate
    expect(map(Buffer.from('61c0af62', 'hex'))).toBe('a_b'); // overlong '/'
    expect(map(Buffer.from('61f490808062', 'hex'))).toBe('a_b'); // past U+10FFFF
    expect(map(Buffer.from('61e697', 'hex'))).toBe('a_'); // cut short at the end
  });

  it('Windows counts characters, not bytes, and replaces its reserved characters', () => {
    const name = '日本語の長いファイル名'.repeat(30);
    expect(map(`${name}.mp3`, 'win32')).toBe(`${name.slice(0, 240)}.mp3`);
    expect(map('a?b*c<d>e|f"g', 'win32')).toBe('a_b_c_d_e_f_g');
    expect(map('a?b', 'linux')).toBe('a?b');
  });
});
