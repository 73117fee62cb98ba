/**
 * Review of fast resume at the session (torrent-session.ts start/stop with
 * storage/resume.ts): whatever happened to the folder while a download ran
 * (another writer, a second tt, a run killed before it), the record a stop
 * leaves must vouch only for pieces that hash on disk, and only for bytes
 * that were made durable before it was written. All traffic is 127.0.0.1.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { open, writeFile, mkdir, type FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';
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

/** Where piece `index` starts: its file (path under `out`) and the offset in it. */
function locate(fx: Fixture, out: string, index: number): { file: string; at: number } {
  const offset = index * PIECE;
  const f = fx.meta.files.find((g) => g.offset <= offset && offset < g.offset + g.length)!;
  return { file: join(out, ...f.path), at: offset - f.offset };
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

  it('pieces found on disk at start (left by a killed run, still only in the page cache) are made durable before the record vouches for them', async () => {
    const fx = await fixture();
    const out = join(fx.work, 'out');
    // a run killed by -9 wrote a.bin whole and never synced it; the kernel still holds it dirty
    const a = join(out, fx.meta.name, 'a.bin');
    await mkdir(dirname(a), { recursive: true });
    await writeFile(a, fx.files[0]!.data);
    const synced = new Set<string>();
    const openFile = async (file: string, flags: number): Promise<FileHandle> => {
      const fh = await open(file, flags, 0o644);
      const datasync = fh.datasync.bind(fh);
      const sync = fh.sync.bind(fh);
      fh.datasync = async () => (synced.add(file), datasync());
      fh.sync = async () => (synced.add(file), sync());
      return fh;
    };
    // the restart: nobody to download from, stopped at once (have = a.bin's pieces, from hashing)
    const run = await leech(fx, out, 1, { openFile });
    expect(run.session.have.count).toBeGreaterThan(0);
    await run.session.stop();
    const known = await loadResume(out, fx.meta, partFileName(fx.meta));
    expect(known?.count).toBe(run.session.have.count);
    expect([...synced]).toContain(a); // now: never synced, yet the record vouches for its pieces
  }, 30_000);
});
