/**
 * `tt download` leaves exactly the torrent's bytes: run again over a complete
 * folder in which one file was appended to and the torrent's zero-length file
 * got content (every piece still verifies, so no piece is written), it cuts
 * both to the torrent's length, says so in a warning naming each, and exits
 * 0. (Before: exit 0 with the files left longer.) The same over a folder that
 * still misses pieces. tt verify then says the folder matches (its side: verify.test.ts).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { appendFileSync, cpSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { expectSameData, makeFixture, startSession, stopAll, trackDir } from '../../helpers/swarm.js';
import { LOOPBACK, killAllTt, runTt } from './tt-cli.js';

afterEach(async () => {
  await killAllTt();
  await stopAll();
});

const FILES = [
  { path: ['big.bin'], size: 300_000 },
  { path: ['empty.txt'], size: 0 },
  { path: ['sub', 'small.txt'], size: 6 },
];

describe('tt download over files longer than the torrent says', () => {
  it('a complete folder: the longer file and the 0-byte file with content are cut, with a warning each; exit 0; tt verify agrees', async () => {
    const fx = await makeFixture({ files: FILES, pieceLength: 32_768 });
    trackDir(fx.work);
    const out = join(fx.work, 'out');
    cpSync(fx.seedRoot, out, { recursive: true });
    appendFileSync(join(out, 'payload', 'big.bin'), Buffer.alloc(5000, 1));
    appendFileSync(join(out, 'payload', 'empty.txt'), Buffer.alloc(1000, 2));
    const before = await runTt(['verify', fx.torrentPath, '--dir', out, '--quiet']);
    expect(before.exit?.code, before.describe()).toBe(7);

    const p = await runTt(['download', fx.torrentPath, '--out', out, ...LOOPBACK, '--no-trackers', '--json']);
    expect(p.exit?.code, p.describe()).toBe(0);
    const warnings = p.events.filter((e) => e.event === 'warning').map((e) => e.message as string);
    expect(warnings).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/big\.bin" was 305000 bytes, longer than the torrent's 300000: cut the 5000 bytes past its end/),
        expect.stringMatching(/empty\.txt" was 1000 bytes, longer than the torrent's 0: cut the 1000 bytes past its end/),
      ]),
    );
    expect(p.events.find((e) => e.event === 'done')).toMatchObject({ complete: true });
    await expectSameData(fx, out);
    expect(statSync(join(out, 'payload', 'empty.txt')).size).toBe(0);

    const after = await runTt(['verify', fx.torrentPath, '--dir', out, '--quiet']);
    expect(after.exit?.code, after.describe()).toBe(0);
  });

  it('a folder that misses a file: the download fetches it and the longer file ends at the torrent\'s length; the warning shows without --json', async () => {
    const fx = await makeFixture({ files: FILES, pieceLength: 32_768 });
    trackDir(fx.work);
    const seed = await startSession({ meta: fx.meta, root: fx.seedRoot, mode: 'seed' });
    const out = join(fx.work, 'out');
    cpSync(fx.seedRoot, out, { recursive: true });
    rmSync(join(out, 'payload', 'big.bin'));
    appendFileSync(join(out, 'payload', 'sub', 'small.txt'), 'app\n');
    const p = await runTt(['download', fx.torrentPath, '--out', out, ...LOOPBACK, '--no-trackers', '--peer', `${seed.address.host}:${seed.address.port}`]);
    expect(p.exit?.code, p.describe()).toBe(0);
    expect(p.stdout + p.stderr).toMatch(/small\.txt" was 10 bytes, longer than the torrent's 6: cut the 4 bytes past its end/);
    await expectSameData(fx, out);
  });
});
