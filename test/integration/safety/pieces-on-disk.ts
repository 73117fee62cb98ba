/**
 * Independent check of what is really on disk: reads a torrent's files under
 * a folder and hashes every piece with node:crypto against the torrent's own
 * piece hashes (BEP 3), without any tt storage code. For small test torrents.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Metainfo } from '../../../src/metainfo/metainfo.js';
import { pieceHash } from '../../../src/metainfo/metainfo.js';

/** Indices of the pieces whose bytes under `root` hash correctly (missing/short files count as absent bytes). */
export async function piecesOnDisk(meta: Metainfo, root: string): Promise<number[]> {
  const whole = Buffer.alloc(meta.totalLength);
  const present = Buffer.alloc(meta.totalLength); // 1 where the file had a byte
  let offset = 0;
  for (const f of meta.files) {
    const bytes = await readFile(join(root, ...f.path)).catch(() => Buffer.alloc(0));
    const n = Math.min(bytes.length, f.length);
    bytes.copy(whole, offset, 0, n);
    present.fill(1, offset, offset + n);
    offset += f.length;
  }
  const good: number[] = [];
  for (let i = 0; i < meta.pieceCount; i++) {
    const start = i * meta.pieceLength;
    const end = Math.min(start + meta.pieceLength, meta.totalLength);
    if (present.subarray(start, end).includes(0)) continue;
    if (createHash('sha1').update(whole.subarray(start, end)).digest().equals(pieceHash(meta, i))) good.push(i);
  }
  return good;
}
