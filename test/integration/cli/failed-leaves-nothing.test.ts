/**
 * A `tt download` that ends with nothing verified (no peer could be reached,
 * a tracker that refuses) leaves nothing behind: the files and folders it
 * created at start are removed again, as clients that create files on their
 * first write never leave them. A folder that was there stays.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeFixture, stopAll, trackDir } from '../../helpers/swarm.js';
import { LOOPBACK, killAllTt, runTt } from './tt-cli.js';

afterEach(async () => {
  await killAllTt();
  await stopAll();
});

describe('a download that verified nothing', () => {
  it('no peer within --peer-timeout: exit 5 and the new output folder is gone; an existing folder keeps only its own files', async () => {
    const fx = await makeFixture({ pieceLength: 32_768 });
    trackDir(fx.work);
    const fresh = join(fx.work, 'fresh', 'out');
    const args = [...LOOPBACK, '--no-trackers', '--peer', '127.0.0.1:9', '--peer-timeout', '2s', '--quiet'];
    const p = await runTt(['download', fx.torrentPath, '--out', fresh, ...args], 20_000);
    expect(p.exit?.code, p.describe()).toBe(5);
    expect(existsSync(join(fx.work, 'fresh')), p.describe()).toBe(false);

    const existing = join(fx.work, 'existing');
    mkdirSync(existing);
    writeFileSync(join(existing, 'notes.txt'), 'mine');
    const q = await runTt(['download', fx.torrentPath, '--out', existing, ...args], 20_000);
    expect(q.exit?.code, q.describe()).toBe(5);
    expect(readdirSync(existing)).toEqual(['notes.txt']);
  }, 60_000);
});
