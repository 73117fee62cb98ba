/**
 * webseed/url.ts: BEP 19 URL rules (single-file: the URL itself or folder +
 * name; multi-file: folder + name + path, percent-encoded), which URLs are
 * usable at all, and the range requests a run of torrent bytes becomes
 * (across files, skipping padding and empty files) against brute force.
 */
import { describe, expect, it } from 'vitest';
import type { Metainfo, TorrentFile } from '../../../src/metainfo/metainfo.js';
import { checkWebSeed, fileUrl, rangesFor, usableWebSeed } from '../../../src/webseed/url.js';
import { displayUrl } from '../../../src/core/display-url.js';
import { mulberry32 } from '../../helpers/prng.js';

function meta(name: string, files: { path: string[]; length: number; padding?: boolean }[], multiFile = true): Metainfo {
  let offset = 0;
  const list: TorrentFile[] = files.map((f) => {
    const file = { path: multiFile ? [name, ...f.path] : [name], length: f.length, offset, padding: f.padding ?? false };
    offset += f.length;
    return file;
  });
  return { name, multiFile, files: list, totalLength: offset, pieceLength: 16 } as unknown as Metainfo;
}

describe('usableWebSeed', () => {
  it('takes http and https URLs with a host, without credentials or fragment', () => {
    expect(usableWebSeed('http://example.com/files/')?.href).toBe('http://example.com/files/');
    expect(usableWebSeed('https://example.com/a.iso#frag')?.href).toBe('https://example.com/a.iso');
    for (const bad of ['ftp://example.com/x', 'file:///etc/passwd', 'http://user:pw@example.com/', 'not a url', '', 'javascript:alert(1)']) {
      expect(usableWebSeed(bad), bad).toBeUndefined();
    }
  });
});

describe('checkWebSeed', () => {
  it('says why a URL is not used, in words, never repeating credentials', () => {
    const problem = (u: string): string | undefined => {
      const c = checkWebSeed(u);
      return 'problem' in c ? c.problem : undefined;
    };
    expect(problem('http://example.com/')).toBeUndefined();
    expect(problem('not a url')).toBe('not a URL');
    expect(problem('ftp://example.com/x')).toBe('ftp: is not http or https');
    expect(problem('file:///etc/passwd')).toBe('file: is not http or https');
    expect(problem('http://user:pw@example.com/')).toBe('it carries a user name or password, which tt never sends');
    expect(problem('http://user@example.com/')).toMatch(/user name or password/);
  });

  it('displayUrl drops credentials and shortens what is long', () => {
    expect(displayUrl('http://alice:s3cret@example.com/x')).toBe('http://example.com/x');
    expect(displayUrl(`http://example.com/${'a'.repeat(300)}`)).toHaveLength(120);
    expect(displayUrl('not a url')).toBe('not a url');
  });
});

describe('fileUrl (BEP 19)', () => {
  const base = (u: string): URL => usableWebSeed(u)!;

  it('single-file: a URL to the file is used as is; a folder URL gets the name', () => {
    const m = meta('linux.iso', [{ path: [], length: 10 }], false);
    expect(fileUrl(base('http://h/pub/linux.iso'), m, 0)).toBe('http://h/pub/linux.iso');
    expect(fileUrl(base('http://h/pub/'), m, 0)).toBe('http://h/pub/linux.iso');
  });

  it('multi-file: folder + name + path, a missing slash added, every component percent-encoded', () => {
    const m = meta('My Album', [{ path: ['CD 1', 'a#b?.flac'], length: 1 }, { path: ['100%', 'é.txt'], length: 1 }]);
    expect(fileUrl(base('http://h/music/'), m, 0)).toBe('http://h/music/My%20Album/CD%201/a%23b%3F.flac');
    expect(fileUrl(base('http://h/music'), m, 1)).toBe('http://h/music/My%20Album/100%25/%C3%A9.txt');
  });

  it('keeps the query string of the web seed URL', () => {
    const m = meta('t', [{ path: ['f'], length: 1 }]);
    expect(fileUrl(base('https://h/dl/?token=abc'), m, 0)).toBe('https://h/dl/t/f?token=abc');
  });
});

describe('rangesFor', () => {
  it('one request per file crossed, padding and empty files left out', () => {
    const m = meta('t', [{ path: ['a'], length: 10 }, { path: ['pad'], length: 6, padding: true }, { path: ['e'], length: 0 }, { path: ['b'], length: 20 }]);
    expect(rangesFor(usableWebSeed('http://h/')!, m, 5, 20)).toEqual([
      { url: 'http://h/t/a', fileIndex: 0, start: 5, end: 9, torrentOffset: 5 },
      { url: 'http://h/t/b', fileIndex: 3, start: 0, end: 8, torrentOffset: 16 },
    ]);
  });

  it('covers exactly the non-padding bytes of any run (brute force on random layouts)', () => {
    const random = mulberry32(5);
    for (let round = 0; round < 300; round++) {
      const files = Array.from({ length: 1 + Math.floor(random() * 8) }, (_, i) => ({
        path: [`f${i}`],
        length: random() < 0.2 ? 0 : 1 + Math.floor(random() * 40),
        padding: random() < 0.15,
      }));
      const m = meta('t', files);
      if (m.totalLength === 0) continue;
      const offset = Math.floor(random() * m.totalLength);
      const length = 1 + Math.floor(random() * (m.totalLength - offset));
      const covered = new Array<number>(m.totalLength).fill(0);
      for (const r of rangesFor(usableWebSeed('http://h/')!, m, offset, length)) {
        const f = m.files[r.fileIndex]!;
        expect(r.torrentOffset).toBe(f.offset + r.start);
        expect(r.end).toBeLessThan(f.length);
        for (let b = r.start; b <= r.end; b++) covered[f.offset + b]!++;
      }
      for (let b = 0; b < m.totalLength; b++) {
        const file = m.files.find((f) => b >= f.offset && b < f.offset + f.length)!;
        const want = b >= offset && b < offset + length && !file.padding ? 1 : 0;
        expect(covered[b], `round ${round} byte ${b}`).toBe(want);
      }
    }
  });
});
