/**
 * Two `tt download` runs writing one path (a cron job that overlaps the last
 * run, or another torrent of the same name): the second is refused at once,
 * naming the first; the first completes undisturbed. A lock left by a killed
 * run is taken over.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expectSameData, makeFixture, startSession, stopAll, trackDir } from '../../helpers/swarm.js';
import { LOOPBACK, expectOneErrorLine, killAllTt, runTt, startTt } from './tt-cli.js';
import { lockFileName } from '../../../src/storage/lock.js';

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
    const lock = join(out, lockFileName(fx.meta));

    const first = startTt(args);
    await first.waitForEvent('started', 20_000);
    expect(readFileSync(lock, 'utf8')).toBe(`${first.pid}\n`);
    const second = await runTt(args, 20_000);
    expect(second.exit?.code, second.describe()).toBe(2);
    expectOneErrorLine(second, new RegExp(`another tt \\(pid ${first.pid}\\) is downloading into ${join(out, fx.meta.name)}; let it finish or stop it first`));
    // refused before it hashed anything (a cron run over 100 GiB would check for a minute first)
    expect(second.events.some((e) => e.event === 'checked')).toBe(false);
    // another torrent of the same name (a newer build) writes the same file: refused too
    const newer = await makeFixture({ files: [{ path: ['data.bin'], size: 1024 * 1024 + 5 }], pieceLength: 32_768 });
    trackDir(newer.work);
    expect(newer.meta.infoHashHex).not.toBe(fx.meta.infoHashHex);
    expect(newer.meta.name).toBe(fx.meta.name);
    const other = await runTt(['download', newer.torrentPath, '--out', out, ...LOOPBACK, '--no-trackers', '--peer', `127.0.0.1:${slow.address.port}`, '--json'], 20_000);
    expect(other.exit?.code, other.describe()).toBe(2);
    expectOneErrorLine(other, new RegExp(`another tt \\(pid ${first.pid}\\) is downloading into ${join(out, fx.meta.name)}`));

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
