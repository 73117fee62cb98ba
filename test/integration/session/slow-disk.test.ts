/**
 * Fast peers feeding a slow disk: bytes waiting for the disk stay bounded
 * (DISK_QUEUE_MAX_BYTES pauses every socket) and the download still completes
 * with the right bytes. Without the pause the whole torrent would pile up.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { DISK_QUEUE_MAX_BYTES } from '../../../src/session/torrent-session.js';
import { SHARED_READ_BYTES } from '../../../src/peer/connection.js';
import { expectSameData, makeFixture, startSession, stopAll, trackDir, whenComplete } from '../../helpers/swarm.js';
import { piecesOnDisk } from '../safety/pieces-on-disk.js';

afterEach(stopAll);

const PIECE = 256 * 1024;
const WRITE_DELAY_MS = 400;

/** Files whose writes each take WRITE_DELAY_MS (the session's openFile seam), counting writes started and in flight. */
function slowDisk() {
  const disk = {
    writes: 0,
    inFlight: 0,
    open: async (file: string, flags: number) => {
      const fh = await open(file, flags, 0o644);
      const write = fh.write.bind(fh) as (...args: unknown[]) => Promise<unknown>;
      Object.assign(fh, {
        write: async (...args: unknown[]) => {
          disk.writes++;
          disk.inFlight++;
          try {
            await new Promise((r) => setTimeout(r, WRITE_DELAY_MS));
            return await write(...args);
          } finally {
            disk.inFlight--;
          }
        },
      });
      return fh;
    },
  };
  return disk;
}

describe('slow disk', () => {
  it('keeps bytes waiting for the disk under the bound and completes', async () => {
    const size = 3 * DISK_QUEUE_MAX_BYTES + 12_345; // far more than the bound
    const fx = await makeFixture({ files: [{ path: ['big.bin'], size }], pieceLength: PIECE });
    trackDir(fx.work);
    const seed = await startSession({ meta: fx.meta, root: fx.seedRoot, mode: 'seed' });
    const disk = slowDisk();
    const out = join(fx.work, 'out');
    const leech = await startSession({ meta: fx.meta, root: out, mode: 'download', peers: [seed.address], openFile: disk.open });
    let maxPending = 0;
    const sampler = setInterval(() => {
      maxPending = Math.max(maxPending, leech.session.stats().pendingBytes);
    }, 2);
    try {
      await whenComplete(leech.session, 60_000);
    } finally {
      clearInterval(sampler);
    }
    await expectSameData(fx, out);
    expect(disk.writes).toBeGreaterThanOrEqual(fx.meta.pieceCount);
    // the disk really was the bottleneck: the queue filled up to the bound...
    expect(maxPending).toBeGreaterThan(DISK_QUEUE_MAX_BYTES / 2);
    // ...and no further: a socket paused mid-read still hands over what that read holds (up to
    // SHARED_READ_BYTES of blocks, which can complete one more piece begun before it)
    expect(maxPending).toBeLessThanOrEqual(DISK_QUEUE_MAX_BYTES + SHARED_READ_BYTES + PIECE);
  }, 90_000);

  it('stopping while writes are in flight: the pieces stop() waited for count as verified (the resume record and the stop message say so)', async () => {
    const fx = await makeFixture({ files: [{ path: ['big.bin'], size: 40 * PIECE + 77 }], pieceLength: PIECE });
    trackDir(fx.work);
    const seed = await startSession({ meta: fx.meta, root: fx.seedRoot, mode: 'seed' });
    const disk = slowDisk();
    const out = join(fx.work, 'out');
    const leech = await startSession({ meta: fx.meta, root: out, mode: 'download', peers: [seed.address], openFile: disk.open, directWrites: false });
    for (let i = 0; i < 500 && !(disk.inFlight > 0 && leech.session.have.count > 0); i++) await new Promise((r) => setTimeout(r, 10));
    expect(disk.inFlight).toBeGreaterThan(0);
    await leech.session.stop();
    const onDisk = await piecesOnDisk(fx.meta, out);
    expect(leech.session.have.count).toBeGreaterThan(0);
    expect([...leech.session.have.indices()]).toEqual(onDisk);
  }, 60_000);
});
