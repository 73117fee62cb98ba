/**
 * `tt download --seed` once the download is complete, and `tt seed` once its
 * data is checked: Ctrl-C (or SIGTERM) is how seeding ends, not a failure:
 * the summary and the `done` event are given and the exit is 0, as aria2c
 * does. Before completion (or while checking) it stays an interruption (130).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { expectSameData, makeFixture, startSession, stopAll, trackDir } from '../../helpers/swarm.js';
import { LOOPBACK, killAllTt, startTt } from './tt-cli.js';

afterEach(async () => {
  await killAllTt();
  await stopAll();
});

describe('tt download --seed, stopped while seeding', () => {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    it(`${signal} after completion: exit 0, the summary (JSON done event, complete) and the data kept`, async () => {
      const fx = await makeFixture({ files: [{ path: ['data.bin'], size: 600_000 }], pieceLength: 32_768 });
      trackDir(fx.work);
      const seed = await startSession({ meta: fx.meta, root: fx.seedRoot, mode: 'seed' });
      const out = join(fx.work, 'out');
      const p = startTt(['download', fx.torrentPath, '--out', out, ...LOOPBACK, '--no-trackers', '--peer', `127.0.0.1:${seed.address.port}`, '--json', '--seed']);
      await p.waitForEvent('complete', 20_000);
      await new Promise((r) => setTimeout(r, 300)); // seeding now
      p.signal(signal);
      const exit = await p.waitForExit(10_000);
      expect(exit.code, p.describe()).toBe(0);
      expect(p.stderr).toBe('');
      const done = p.events[p.events.length - 1]!;
      expect(done).toMatchObject({ event: 'done', complete: true });
      expect(done.seededSeconds as number).toBeGreaterThan(0);
      await expectSameData(fx, out);
    });
  }
});

describe('tt seed, stopped while seeding', () => {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    it(`${signal}: exit 0 and the summary with what it uploaded (a plain seed ends this way)`, async () => {
      const fx = await makeFixture({ files: [{ path: ['data.bin'], size: 600_000 }], pieceLength: 32_768 });
      trackDir(fx.work);
      const p = startTt(['seed', fx.torrentPath, '--dir', fx.seedRoot, ...LOOPBACK, '--no-pex']);
      await p.waitFor("the seeding line", () => /Ctrl-C to stop/.test(p.stderr) || undefined, 20_000);
      // a leecher takes it all, so the summary has an upload to report
      const out = join(fx.work, 'out');
      const leech = startTt(['download', fx.torrentPath, '--out', out, ...LOOPBACK, '--no-trackers', '--peer', `127.0.0.1:${portOf(p.stderr)}`, '-q']);
      expect((await leech.waitForExit(30_000)).code, leech.describe()).toBe(0);
      await expectSameData(fx, out);
      p.signal(signal);
      const exit = await p.waitForExit(10_000);
      expect(exit.code, p.describe()).toBe(0);
      expect(p.stdout).toMatch(/^seeded: payload 585\.94 KiB\/585\.94 KiB for [\d.]+s \| uploaded 585\.94 KiB ratio 1\.00\n$/);
    });
  }

  it('--json: the done event, complete, with the bytes uploaded', async () => {
    const fx = await makeFixture({ files: [{ path: ['data.bin'], size: 100_000 }], pieceLength: 32_768 });
    trackDir(fx.work);
    const p = startTt(['seed', fx.torrentPath, '--dir', fx.seedRoot, ...LOOPBACK, '--json']);
    await p.waitForEvent('complete', 20_000);
    p.signal('SIGINT');
    expect((await p.waitForExit(10_000)).code, p.describe()).toBe(0);
    expect(p.events[p.events.length - 1]).toMatchObject({ event: 'done', complete: true, uploaded: 0 });
  });
});

function portOf(stderr: string): number {
  const m = /on port (\d+) \(Ctrl-C to stop\)/.exec(stderr);
  if (!m) throw new Error(`no port in ${stderr}`);
  return Number(m[1]);
}

