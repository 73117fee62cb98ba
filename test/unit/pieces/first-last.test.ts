/**
 * pieces/first-last.ts: the first and last piece of each wanted file, with
 * BEP 47 padding files and empty files left out, and a selection respected.
 */
import { describe, expect, it } from 'vitest';
import type { Metainfo, TorrentFile } from '../../../src/metainfo/metainfo.js';
import { FileSelection } from '../../../src/metainfo/selection.js';
import { firstLastPieces } from '../../../src/pieces/first-last.js';

/** Files end to end from [length, 'pad'?] pairs: what firstLastPieces and FileSelection read. */
function torrentOf(pieceLength: number, files: readonly (readonly [number, 'pad'?])[]): Metainfo {
  const list: TorrentFile[] = [];
  let at = 0;
  for (const [length, pad] of files) {
    list.push({ path: ['t', `f${list.length}`], length, offset: at, padding: pad === 'pad' });
    at += length;
  }
  const pieceCount = Math.ceil(at / pieceLength);
  return { name: 't', infoHashHex: '00'.repeat(20), pieceLength, totalLength: at, pieceCount, files: list } as unknown as Metainfo;
}

describe('firstLastPieces', () => {
  it('one file: its first and last piece; a one-piece file counts once', () => {
    expect(firstLastPieces(torrentOf(100, [[1000]]))).toEqual([0, 9]);
    expect(firstLastPieces(torrentOf(100, [[100]]))).toEqual([0]);
    expect(firstLastPieces(torrentOf(100, [[101]]))).toEqual([0, 1]);
  });

  it('files that share pieces: each piece once, ascending', () => {
    // f0 0..249 (pieces 0-2), f1 250..549 (2-5), f2 550..559 (5)
    expect(firstLastPieces(torrentOf(100, [[250], [300], [10]]))).toEqual([0, 2, 5]);
  });

  it('empty files and BEP 47 padding files do not count', () => {
    // f0 0..149 (0-1), padding 150..199 (1), empty f2 at 200, f3 200..499 (2-4), padding 500..599 (5), f5 600..699 (6)
    const meta = torrentOf(100, [[150], [50, 'pad'], [0], [300], [100, 'pad'], [100]]);
    expect(firstLastPieces(meta)).toEqual([0, 1, 2, 4, 6]); // never 5: only padding lies there
    // a torrent that ends in an empty file: nothing past the last piece
    expect(firstLastPieces(torrentOf(100, [[250], [0]]))).toEqual([0, 2]);
  });

  it('with a selection, only the selected files', () => {
    const meta = torrentOf(100, [[250], [300], [10], [400]]);
    const only = (...files: number[]): FileSelection => new FileSelection(meta, meta.files.map((_, i) => files.includes(i)));
    expect(firstLastPieces(meta, only(1))).toEqual([2, 5]);
    expect(firstLastPieces(meta, only(0, 3))).toEqual([0, 2, 5, 9]);
    expect(firstLastPieces(meta, only())).toEqual([]);
  });
});
