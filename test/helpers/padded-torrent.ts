/**
 * Torrents with BEP 47 padding for tests, without ever holding the padding:
 * data files filled with 'a', padding as zeros, pieces wholly in padding hashed
 * once per length by streaming zeros. `override` replaces chosen piece hashes
 * (an unsatisfiable padding piece).
 */
import { createHash } from 'node:crypto';
import { piecesIn, wholePaddingPieces } from '../../src/metainfo/padding-pieces.js';
import { multiFileList, rawEncode, rdict } from './torrent-factory.js';

const MiB = 1024 * 1024;

export interface Spec {
  path: string[];
  length: number;
  pad?: boolean;
}

/** Offsets for a file list (as parseTorrent lays them out). */
export function laid(specs: readonly Spec[]): { offset: number; length: number; padding: boolean }[] {
  let offset = 0;
  return specs.map((s) => {
    const f = { offset, length: s.length, padding: s.pad === true };
    offset += s.length;
    return f;
  });
}

const sha1 = (b: Buffer): Buffer => createHash('sha1').update(b).digest();

/**
 * A .torrent of `specs` (named `name`) whose data files are all 'a' (dataOf) and
 * padding zeros: each piece's right hash, except those `override` replaces.
 */
export function paddedTorrent(specs: readonly Spec[], pieceLength: number, override: ReadonlyMap<number, Buffer> = new Map(), name = 'm'): Buffer {
  const files = laid(specs);
  const total = files.reduce((n, f) => n + f.length, 0);
  const whole = new Set(piecesIn(wholePaddingPieces(files, pieceLength, total)));
  const hashes: Buffer[] = [];
  for (let i = 0; i * pieceLength < total; i++) {
    const start = i * pieceLength;
    const size = Math.min(pieceLength, total - start);
    if (override.has(i)) hashes.push(override.get(i)!);
    else if (whole.has(i)) hashes.push(sha1OfZerosByHand(size));
    else {
      const piece = Buffer.alloc(size);
      for (const f of files) {
        if (f.padding) continue;
        const a = Math.max(f.offset, start);
        const b = Math.min(f.offset + f.length, start + size);
        if (a < b) piece.fill(0x61, a - start, b - start);
      }
      hashes.push(sha1(piece));
    }
  }
  return rawEncode(
    rdict([
      [
        'info',
        rdict([
          ['files', multiFileList(specs.map((s) => ({ path: s.path, length: s.length, ...(s.pad ? { attr: 'p' } : {}) })))],
          ['name', name],
          ['piece length', pieceLength],
          ['pieces', Buffer.concat(hashes)],
        ]),
      ],
    ]),
  );
}

const zeroHashes = new Map<number, Buffer>();
/** SHA-1 of `size` zeros, streamed here independently of the module under test (once per size). */
function sha1OfZerosByHand(size: number): Buffer {
  const known = zeroHashes.get(size);
  if (known) return known;
  const h = createHash('sha1');
  const chunk = Buffer.alloc(Math.min(size, 4 * MiB));
  for (let left = size; left > 0; left -= chunk.length) h.update(left >= chunk.length ? chunk : chunk.subarray(0, left));
  zeroHashes.set(size, h.digest());
  return zeroHashes.get(size)!;
}

/** The bytes of data file `spec` in a paddedTorrent. */
export const dataOf = (spec: Spec): Buffer => Buffer.alloc(spec.length, 0x61);
