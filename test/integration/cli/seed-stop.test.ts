/**
 * `tt download --seed`: once the download is complete, Ctrl-C (or SIGTERM) is
 * how seeding ends, not a failure: the summary and the `done` event are given
 * and the exit is 0, as aria2c does. Before completion it stays an interruption (130).
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
