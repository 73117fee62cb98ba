/**
 * Careless and hostile inputs to today's pure parts: `--select` text
 * (huge ranges, odd syntax, non-ASCII digits, a 64 KiB list of overlapping
 * ranges over 100,000 files) and the magnet link tt prints for a torrent with
 * a huge url-list (BEP 19 ws=).
 */
import { describe, expect, it } from 'vitest';
import { TtError } from '../../../src/core/errors.js';
import { createTorrent } from '../../../src/metainfo/create.js';
import { parseMagnet, toMagnet, MAX_MAGNET_WEB_SEEDS } from '../../../src/metainfo/magnet.js';
import { parseTorrent } from '../../../src/metainfo/parse-torrent.js';
import { MAX_SELECT_CHARS, parseFileNumbers, selectFiles } from '../../../src/metainfo/selection.js';

const three = parseTorrent(createTorrent('t', ['a', 'b', 'c'].map((n) => ({ path: [n], data: Buffer.from(n) })), { pieceLength: 16_384 }));

describe('--select text', () => {
  it.each(['1-999999999', '999999999', '3,4', '1-2,2-4'])('%j names a file the torrent lacks: a usage error naming the count', (text) => {
    let err: unknown;
    try {
      selectFiles(three, parseFileNumbers(text));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(TtError);
    expect((err as TtError).code).toBe('USAGE');
    expect((err as Error).message).toMatch(/there is no file \d+: t has 3 files/);
  });

  it.each(['', ',', '1,,2', '0', '-1', '1-', '3-2', '+1', '1e3', '0x1', '1.5', '１', '٣', '1-2-3', '1;2', '1234567890', '2 3'])('%j is a syntax error (RangeError), never a selection', (text) => {
    expect(() => parseFileNumbers(text)).toThrow(RangeError);
  });

  it('spaces around numbers and dashes, leading zeros and repeats are fine', () => {
    const s = selectFiles(three, parseFileNumbers(' 01 , 3 - 3,1,  2-2 '));
    expect(s.selectedCount).toBe(3);
  });

  it('one character over the limit is refused before any parsing', () => {
    expect(() => parseFileNumbers('1,'.repeat(MAX_SELECT_CHARS / 2) + '1')).toThrow(/longer than/);
  });

  it('the longest list of overlapping ranges over 100,000 files still selects right', () => {
    const many = parseTorrent(createTorrent('m', Array.from({ length: 100_000 }, (_, i) => ({ path: [`f${i}`], data: Buffer.from([i & 255]) })), { pieceLength: 16_384 }));
    const text = Array.from({ length: Math.floor(MAX_SELECT_CHARS / 9) }, (_, i) => (i % 2 ? '1-100000' : '50000-99999')).join(',').slice(0, MAX_SELECT_CHARS);
    const s = selectFiles(many, parseFileNumbers(text.replace(/,[^,]*$/, '')));
    expect(s.selectedCount).toBe(100_000);
    expect(s.wanted.count).toBe(many.pieceCount);
  });
});

describe('the magnet link of a torrent with a huge url-list', () => {
  // was a bug: every url-list entry became a ws= parameter, and a link over 64 KiB is one tt refuses;
  // toMagnet now writes at most MAX_MAGNET_WEB_SEEDS of them
  it('tt can read the magnet link it prints for it', () => {
    const urls = Array.from({ length: 1_000 }, (_, i) => `http://127.0.0.1:8080/mirrors/number-${i}/of/a/rather/long/web/seed/path/`);
    const meta = parseTorrent(createTorrent('big', Buffer.alloc(1_000), { pieceLength: 16_384, urlList: urls }));
    expect(meta.urlList).toHaveLength(1_000);
    const link = parseMagnet(toMagnet(meta));
    expect(link.webSeeds).toEqual(urls.slice(0, MAX_MAGNET_WEB_SEEDS));
  });

  it('a few web seeds round-trip', () => {
    const urls = ['http://127.0.0.1:1/a/', 'https://127.0.0.1:2/b'];
    const meta = parseTorrent(createTorrent('small', Buffer.alloc(10), { pieceLength: 16_384, urlList: urls }));
    expect(parseMagnet(toMagnet(meta)).webSeeds).toEqual(urls);
  });
});
