/**
 * Review of fast resume at the session (torrent-session.ts start/stop with
 * storage/resume.ts): whatever happened to the folder while a download ran
 * (another writer, a second tt, a run killed before it), the record a stop
 * leaves must vouch only for pieces that hash on disk, and only for bytes
 * that were made durable before it was written. All traffic is 127.0.0.1.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { partFileName } from '../../../src/metainfo/selection.js';
import { loadResume } from '../../../src/storage/resume.js';
import type { TorrentSession } from '../../../src/session/torrent-session.js';
import { expectSameData, makeFixture, startSession, stopAll, trackDir, whenComplete, type Fixture, type Running } from '../../helpers/swarm.js';
import { until } from '../../helpers/until.js';
import { piecesOnDisk } from '../safety/pieces-on-disk.js';

afterEach(stopAll);

const PIECE = 32_768;

/** Three files in 32 KiB pieces (a.bin's last piece shared with b.bin). */
const fixture = async (): Promise<Fixture> => {
  const sizes = { 'a.bin': 700_000, 'b.bin': 500_001, 'c.bin': 300_000 };
  const fx = await makeFixture({ files: Object.entries(sizes).map(([name, size]) => ({ path: [name], size })), pieceLength: PIECE });
  trackDir(fx.work);
  return fx;
};

function leech(fx: Fixture, out: string, seedPort: number, extra: Record<string, unknown> = {}, before?: (s: TorrentSession) => void): Promise<Running> {
  return startSession({ meta: fx.meta, root: out, mode: 'download', useTrackers: false, peers: [{ host: '127.0.0.1', port: seedPort }], ...extra }, before);
}

/** The pieces a record in `out` vouches for now that do not hash on disk (should be none). */
async function vouchedButWrong(fx: Fixture, out: string): Promise<number[]> {
  const known = await loadResume(out, fx.meta, partFileName(fx.meta));
  const good = new Set(await piecesOnDisk(fx.meta, out));
  return known ? [...known.indices()].filter((i) => !good.has(i)) : [];
}

describe('a stop vouches only for what is on disk', () => {
  it('two tt sessions of one torrent in one folder, stopped at the same moment: the record left is sound and the next run completes', async () => {
    const fx = await fixture();
    const seed = await startSession({ meta: fx.meta, root: fx.seedRoot, mode: 'seed', uploadLimit: 1024 * 1024, maxPeersPerIp: 100 });
    const out = join(fx.work, 'out');
    const one = await leech(fx, out, seed.address.port);
    const two = await leech(fx, out, seed.address.port);
    await until(() => one.session.have.count >= 8 && two.session.have.count >= 8, 20_000, 'both to have pieces');
    await Promise.all([one.session.stop(), two.session.stop()]);
    expect(await vouchedButWrong(fx, out)).toEqual([]);
    const last = await leech(fx, out, seed.address.port);
    await whenComplete(last.session);
    await last.session.stop();
    await expectSameData(fx, out);
  }, 40_000);

});
