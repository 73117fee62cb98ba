/**
 * storage/check.ts and pieces wholly in BEP 47 padding: reported present
 * without being hashed (parseTorrent proved their hash is that of zeros). A
 * torrent of 20 bytes of data and 4 GiB of padding is checked by reading its
 * 20 bytes. To see that no padding piece is hashed, the parsed torrent's hashes
 * for those pieces are then replaced by garbage: hashing them would report them
 * missing.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Bitfield } from '../../../src/core/bitfield.js';
import type { Metainfo } from '../../../src/metainfo/metainfo.js';
import { piecesIn, wholePaddingPieces } from '../../../src/metainfo/padding-pieces.js';
import { parseTorrent } from '../../../src/metainfo/parse-torrent.js';
import { CHECK_RUN_BYTES, checkExisting, type CheckProgress } from '../../../src/storage/check.js';
import { dataOf, paddedTorrent, type Spec } from '../../helpers/padded-torrent.js';
import { bits, withTempDir } from './fixture.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

/** 10 B of data, padding to the next piece, `padding` more bytes of padding, 10 B of data. */
function specs(pieceLength: number, padding: number): Spec[] {
  return [
    { path: ['a'], length: 10 },
    { path: ['.pad', '1'], length: pieceLength - 10, pad: true },
    { path: ['.pad', '2'], length: padding, pad: true },
    { path: ['b'], length: 10 },
  ];
}

/** The torrent parsed (so its padding pieces are proved zeros), then those pieces' hashes garbled. */
function garbledPadding(files: Spec[], pieceLength: number): { meta: Metainfo; padding: number[] } {
  const meta = parseTorrent(paddedTorrent(files, pieceLength));
  const padding = [...piecesIn(wholePaddingPieces(meta.files, meta.pieceLength, meta.totalLength))];
  const pieces = Buffer.from(meta.pieces);
  for (const i of padding) pieces.fill(0x11, i * 20, i * 20 + 20);
  return { meta: { ...meta, pieces }, padding };
}

async function writeData(root: string, files: Spec[], skip: string[] = []): Promise<void> {
  await mkdir(path.join(root, 'm'), { recursive: true });
  for (const f of files) if (!f.pad && !skip.includes(f.path[0]!)) await writeFile(path.join(root, 'm', ...f.path), dataOf(f));
}

describe('checkExisting: pieces wholly in BEP 47 padding', () => {
  for (const [what, pieceLength, padding] of [
    ['4 GiB of padding in 16 MiB pieces (pieces over CHECK_RUN_BYTES, streamed one by one)', 16 * MiB, 4 * GiB],
    ['64 MiB of padding in 256 KiB pieces (pieces read in runs)', 256 * 1024, 64 * MiB],
  ] as const) {
    it(`${what}: present without being hashed, and the data pieces are hashed as ever`, async () => {
      expect(pieceLength > CHECK_RUN_BYTES).toBe(pieceLength === 16 * MiB);
      const files = specs(pieceLength, padding);
      const { meta, padding: pads } = garbledPadding(files, pieceLength);
      expect(pads).toEqual(Array.from({ length: padding / pieceLength }, (_, k) => k + 1));
      await withTempDir(async (root) => {
        await writeData(root, files);
        const progress: CheckProgress[] = [];
        const have = await checkExisting(root, meta, { workers: 0, onProgress: (p) => progress.push(p) });
        expect(bits(have)).toBe('1'.repeat(meta.pieceCount));
        // counted from the start, like pieces a resume record vouches for
        expect(progress[0]!.have).toBeGreaterThanOrEqual(pads.length);
        expect(progress.at(-1)).toMatchObject({ checked: meta.pieceCount, have: meta.pieceCount });

        // b missing: its piece is missing, a's present, the padding present (nothing of it on disk either way)
        const partial = await withTempDir(async (other) => {
          await writeData(other, files, ['b']);
          return checkExisting(other, meta, { workers: 0 });
        });
        expect(bits(partial)).toBe(`1${'1'.repeat(pads.length)}0`);
      });
    }, 60_000);
  }

  it('a wrong data piece next to padding is still found (the check trusts only the padding)', async () => {
    const files = specs(256 * 1024, 1 * MiB);
    const { meta } = garbledPadding(files, 256 * 1024);
    await withTempDir(async (root) => {
      await writeData(root, files);
      await writeFile(path.join(root, 'm', 'b'), Buffer.alloc(10, 0x62));
      const known = new Bitfield(meta.pieceCount);
      expect(bits(await checkExisting(root, meta, { workers: 0, known }))).toBe('111110');
    });
  });
});
