/**
 * path-safety.ts per platform: a colon is an ordinary character on POSIX
 * (`A: Movie.mkv`, `x:y`, even `C:`), refused on Windows (drive, NTFS stream)
 * with its reserved device names; what is refused everywhere stays refused;
 * collisionKey says which names are one file: identical ones on Linux, case
 * and normalization folded on macOS, case and trailing dots on Windows.
 */
import { describe, expect, it } from 'vitest';
import { collisionKey, isSafePath, unsafeComponentReason } from '../../../src/metainfo/path-safety.js';

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
