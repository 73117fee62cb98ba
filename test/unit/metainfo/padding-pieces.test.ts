/** metainfo/padding-pieces.ts: which pieces lie wholly in BEP 47 padding, and parseTorrent's rules for them. */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { MetainfoError } from '../../../src/core/errors.js';
import { parseTorrent } from '../../../src/metainfo/parse-torrent.js';
import { paddingRuns, piecesIn, sha1OfZeros, wholePaddingPieces } from '../../../src/metainfo/padding-pieces.js';
import { laid, paddedTorrent } from '../../helpers/padded-torrent.js';

const K = 1024;
const MiB = 1024 * K;
const GiB = 1024 * MiB;
const sha1 = (b: Buffer): Buffer => createHash('sha1').update(b).digest();

/** The MetainfoError parseTorrent throws for `bytes` (fails the test when it parses). */
function parseError(bytes: Buffer): MetainfoError {
  let caught: unknown = 'parsed';
  try {
    parseTorrent(bytes);
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(MetainfoError);
  return caught as MetainfoError;
}

describe('wholePaddingPieces', () => {
  it('a data file, padding covering pieces 1-3 whole and part of 0 and 4: pieces 1-3', () => {
    const files = laid([
      { path: ['a'], length: 100 },
      { path: ['.pad', '1'], length: 4 * 64 * K - 100 + 10, pad: true },
      { path: ['b'], length: 100 },
    ]);
    expect(wholePaddingPieces(files, 64 * K, 4 * 64 * K + 110)).toEqual([[1, 4]]);
  });

  it('consecutive padding files (and an empty file between them) make one run: a piece split between two pads is whole padding', () => {
    const files = laid([
      { path: ['a'], length: 64 * K },
      { path: ['.pad', '1'], length: 32 * K, pad: true },
      { path: ['empty'], length: 0 },
      { path: ['.pad', '2'], length: 32 * K, pad: true },
      { path: ['b'], length: 10 },
    ]);
    expect(wholePaddingPieces(files, 64 * K, 128 * K + 10)).toEqual([[1, 2]]);
    expect(paddingRuns(files)).toEqual([[64 * K, 128 * K]]);
  });

  it('padding to the end of the torrent: the short last piece counts', () => {
    const files = laid([
      { path: ['a'], length: 64 * K },
      { path: ['.pad', '1'], length: 64 * K + 5, pad: true },
    ]);
    expect(wholePaddingPieces(files, 64 * K, 128 * K + 5)).toEqual([[1, 3]]);
  });

  it('libtorrent-style pads (shorter than a piece, aligning the next file) and no padding: none', () => {
    const files = laid([
      { path: ['a'], length: 10_000 },
      { path: ['.pad', '6384'], length: 6384, pad: true },
      { path: ['b'], length: 10_000 },
    ]);
    expect(wholePaddingPieces(files, 16 * K, 26_384)).toEqual([]);
    expect(wholePaddingPieces([{ offset: 0, length: 5 * MiB }], 16 * K, 5 * MiB)).toEqual([]);
  });

  it('256 TiB of padding in 16 MiB pieces is one range, and piecesIn lists each piece', () => {
    const pad = 256 * 1024 * GiB;
    const files = laid([
      { path: ['a'], length: 16 * MiB },
      { path: ['.pad', 'x'], length: pad, pad: true },
      { path: ['b'], length: 10 },
    ]);
    const ranges = wholePaddingPieces(files, 16 * MiB, 16 * MiB + pad + 10);
    expect(ranges).toEqual([[1, 1 + pad / (16 * MiB)]]);
    expect([...piecesIn([[2, 5], [7, 8]])]).toEqual([2, 3, 4, 7]);
  });
});

describe('sha1OfZeros', () => {
  it('is the SHA-1 of that many zero bytes, for lengths under, at and over its chunk', () => {
    for (const n of [1, 16 * K + 3, MiB, 3 * MiB + 17]) expect(sha1OfZeros(n).toString('hex'), String(n)).toBe(sha1(Buffer.alloc(n)).toString('hex'));
  });
});

describe('parseTorrent: BEP 47 padding rules', () => {
  it('a torrent whose every file is padding is refused (it holds no data)', () => {
    const err = parseError(paddedTorrent([{ path: ['.pad', '100'], length: 100, pad: true }], 16 * K));
    expect(err.field).toBe('info.files');
    expect(err.message).toMatch(/every file is BEP 47 padding/);
    expect(err.code).toBe('METAINFO');
  });

  it('a piece wholly in padding whose hash is not that of zeros is refused, naming the piece', () => {
    const specs = [
      { path: ['a'], length: 10 },
      { path: ['.pad', 'x'], length: 2 * 16 * K - 10, pad: true },
      { path: ['b'], length: 10 },
    ];
    const err = parseError(paddedTorrent(specs, 16 * K, new Map([[1, Buffer.alloc(20, 0x11)]])));
    expect(err.field).toBe('info.pieces');
    expect(err.message).toMatch(/piece 1 lies wholly in BEP 47 padding .* not that of 16384 zero bytes/);
  });

  it('the short last piece wholly in padding is checked against zeros of its own length', () => {
    const specs = [
      { path: ['a'], length: 16 * K },
      { path: ['.pad', 'tail'], length: 100, pad: true },
    ];
    expect(parseTorrent(paddedTorrent(specs, 16 * K)).pieceCount).toBe(2);
    // the hash of a whole piece of zeros is not that of 100 zeros
    const err = parseError(paddedTorrent(specs, 16 * K, new Map([[1, sha1(Buffer.alloc(16 * K))]])));
    expect(err.message).toMatch(/piece 1 .* 100 zero bytes/);
  });

  it('4 GiB of padding in 16 MiB pieces, hashes right: parses (256 pieces of padding, described, never written)', () => {
    const specs = [
      { path: ['a'], length: 10 },
      { path: ['.pad', '1'], length: 16 * MiB - 10, pad: true },
      { path: ['.pad', '2'], length: 4 * GiB, pad: true },
      { path: ['b'], length: 10 },
    ];
    const meta = parseTorrent(paddedTorrent(specs, 16 * MiB));
    expect(meta.pieceCount).toBe(258);
    expect(wholePaddingPieces(meta.files, meta.pieceLength, meta.totalLength)).toEqual([[1, 257]]);
  });

  it('a data file with padding that holds no whole piece, and an ordinary torrent, parse as before', () => {
    const specs = [
      { path: ['a'], length: 10_000 },
      { path: ['.pad', '6384'], length: 6384, pad: true },
      { path: ['b'], length: 1 },
    ];
    expect(parseTorrent(paddedTorrent(specs, 16 * K)).files).toHaveLength(3);
  });
});
