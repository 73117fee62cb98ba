/**
 * A tracker URL with a user name and password (the .torrent's own): tt never
 * sends them (tracker/http.ts) and never shows them either, in warnings or in
 * the final error, as for web seeds. Loopback only: a port nobody listens on.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { makeFixture, stopAll, trackDir } from '../../helpers/swarm.js';
import { LOOPBACK, killAllTt, runTt } from './tt-cli.js';

afterEach(async () => {
  await killAllTt();
  await stopAll();
});

describe('tracker URLs with credentials', () => {
  it('are shown without them: every tracker refusing ends with exit 8 naming the tracker, never the password', async () => {
    const fx = await makeFixture({ announce: 'http://alice:s3cret-pw@127.0.0.1:9/announce?passkey=abc' });
    trackDir(fx.work);
    const p = await runTt(['download', fx.torrentPath, '--out', join(fx.work, 'out'), ...LOOPBACK], 30_000);
    expect(p.exit?.code, p.describe()).toBe(8);
    expect(p.stderr).toMatch(/^tt: every tracker failed: http:\/\/127\.0\.0\.1:9\/announce\?passkey=abc: /m);
    expect(p.stdout + p.stderr).not.toMatch(/s3cret|alice/);
  });
});
