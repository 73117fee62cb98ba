/**
 * Two `tt download` runs of one torrent into one folder (a cron job that
 * overlaps the last run): the second is refused at once, naming the first;
 * the first completes undisturbed. A lock left by a killed run is taken over.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expectSameData, makeFixture, startSession, stopAll, trackDir } from '../../helpers/swarm.js';
import { LOOPBACK, expectOneErrorLine, killAllTt, runTt, startTt } from './tt-cli.js';

afterEach(async () => {
  await killAllTt();
  await stopAll();
});

describe('one download of a torrent into a folder at a time', () => {
  it('a second run is refused (exit 2, naming the first); a run killed with SIGKILL leaves a lock the next run takes over', async () => {
    const fx = await makeFixture({ files: [{ path: ['data.bin'], size: 2 * 1024 * 1024 }], pieceLength: 32_768 });
    trackDir(fx.work);
    const slow = await startSession({ meta: fx.meta, root: fx.seedRoot, mode: 'seed', uploadLimit: 512 * 1024 });
    const out = join(fx.work, 'out');
    const args = ['download', fx.torrentPath, '--out', out, ...LOOPBACK, '--no-trackers', '--peer', `127.0.0.1:${slow.address.port}`, '--json'];
    const lock = join(out, `.${fx.meta.infoHashHex}.tt-lock`);

    const first = startTt(args);
    await first.waitForEvent('started', 20_000);
    expect(readFileSync(lock, 'utf8')).toBe(`${first.pid}\n`);
    const second = await runTt(args, 20_000);
    expect(second.exit?.code, second.describe()).toBe(2);
    expectOneErrorLine(second, new RegExp(`another tt \\(pid ${first.pid}\\) is downloading this torrent into ${out}; let it finish or stop it first`));
    // refused before it hashed anything (a cron run over 100 GiB would check for a minute first)
    expect(second.events.some((e) => e.event === 'checked')).toBe(false);

    first.signal('SIGKILL');
    await first.waitForExit(10_000);
    expect(existsSync(lock)).toBe(true); // nobody removed it
    const fast = await startSession({ meta: fx.meta, root: fx.seedRoot, mode: 'seed' });
    const third = await runTt([...args, '--peer', `127.0.0.1:${fast.address.port}`], 30_000);
    expect(third.exit?.code, third.describe()).toBe(0);
    await expectSameData(fx, out);
    expect(existsSync(lock)).toBe(false);
  }, 60_000);
});
