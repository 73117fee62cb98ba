/**
 * File names as Linux stores them, through the built `tt download`: NFC and
 * NFD spellings of one name, and names differing only in case, are separate
 * files on ext4 (identical bytes are what collide), so a torrent holding such
 * twins downloads every one of them byte for byte, as libtorrent does; and a
 * colon is an ordinary character there: 'A: Movie' and 'x:y' download too.
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { expectSameData, makeFixture, startSession, stopAll, trackDir } from '../../helpers/swarm.js';
import { LOOPBACK, killAllTt, runTt } from './tt-cli.js';

afterEach(async () => {
  await killAllTt();
  await stopAll();
});

describe.skipIf(process.platform !== 'linux')('tt download: names that are distinct on Linux', () => {
  it('café in NFC and in NFD, and A and a, are four files: all downloaded and verified', async () => {
    const names = ['caf\u00e9.txt', 'cafe\u0301.txt', 'A', 'a'];
    const fx = await makeFixture({ files: names.map((n, i) => ({ path: ['d', n], size: 20_000 + i })), pieceLength: 16_384 });
    trackDir(fx.work);
    expect((await readdir(join(fx.seedRoot, 'payload', 'd'))).sort()).toEqual([...names].sort()); // the file system keeps four
    const seed = await startSession({ meta: fx.meta, root: fx.seedRoot, mode: 'seed' });
    const out = join(fx.work, 'out');
    const p = await runTt(['download', fx.torrentPath, '--out', out, ...LOOPBACK, '--no-trackers', '--peer', `${seed.address.host}:${seed.address.port}`, '--quiet']);
    expect(p.exit?.code, p.describe()).toBe(0);
    expect((await readdir(join(out, 'payload', 'd'))).sort()).toEqual([...names].sort());
    await expectSameData(fx, out);
  });

  it("a torrent named 'A: Movie' holding 'x:y' (letter and colon at the start): downloaded and verified, and seeded back", async () => {
    const fx = await makeFixture({ name: 'A: Movie', files: [{ path: ['x:y'], size: 40_000 }, { path: ['C:', 'b.bin'], size: 1_000 }], pieceLength: 16_384 });
    trackDir(fx.work);
    const seed = await startSession({ meta: fx.meta, root: fx.seedRoot, mode: 'seed' });
    const out = join(fx.work, 'out');
    const p = await runTt(['download', fx.torrentPath, '--out', out, ...LOOPBACK, '--no-trackers', '--peer', `${seed.address.host}:${seed.address.port}`, '--quiet']);
    expect(p.exit?.code, p.describe()).toBe(0);
    await expectSameData(fx, out);
    const verify = await runTt(['verify', fx.torrentPath, '--dir', out, '--quiet']);
    expect(verify.exit?.code, verify.describe()).toBe(0);
  });
});
