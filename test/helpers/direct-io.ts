/** Whether a folder's file system takes O_DIRECT writes, for tests that assert either behaviour. */
import { constants } from 'node:fs';
import { open, rm } from 'node:fs/promises';
import path from 'node:path';
import { PieceBuffers } from '../../src/storage/piece-buffers.js';

/** True when an aligned O_DIRECT write works in `dir` (tmpfs before Linux 6.6 refuses it with EINVAL). */
export async function directSupported(dir: string): Promise<boolean> {
  const probe = path.join(dir, 'direct-probe');
  try {
    const fh = await open(probe, constants.O_WRONLY | constants.O_CREAT | constants.O_DIRECT, 0o644);
    try {
      await fh.write(new PieceBuffers(65536).take(65536), 0, 65536, 0);
    } finally {
      await fh.close();
    }
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EINVAL') return false;
    throw err;
  } finally {
    await rm(probe, { force: true });
  }
}
