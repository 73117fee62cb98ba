/**
 * A file changed in place under `tt seed` after its check (a build rewritten
 * while it is served): the seed notices it within filesCheckMs, hashes its
 * pieces again as it reads them to serve, and stops having those that no
 * longer match, so a leecher is refused them instead of receiving bytes that
 * fail its hash check (and banning the seed for them). The unchanged pieces
 * are still served.
 */
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { makeFixture, startSession, stopAll, trackDir } from '../../helpers/swarm.js';
import { until } from '../../helpers/until.js';

afterEach(stopAll);

const PIECE = 32_768;

describe('a file changed in place while seeding', () => {
  it('its damaged piece is refused, never sent; every other piece still reaches the leecher', async () => {
    const fx = await makeFixture({ files: [{ path: ['build.bin'], size: 20 * PIECE }], pieceLength: PIECE, single: true });
    trackDir(fx.work);
    const warnings: string[] = [];
    const seed = await startSession({ meta: fx.meta, root: fx.seedRoot, mode: 'seed', filesCheckMs: 100 }, (s) => s.on('warning', (m: string) => warnings.push(m)));
    expect(seed.session.have.complete).toBe(true);
    // 16 bytes of piece 7 rewritten in place: same size, new mtime and ctime
    const fh = await open(join(fx.seedRoot, fx.meta.name), 'r+');
    await fh.write(Buffer.alloc(16, 0x42), 0, 16, 7 * PIECE + 100);
    await fh.close();
    await until(() => warnings.some((w) => /^payload changed on disk while seeding: its pieces are hashed again before they are served$/.test(w)), 5_000, 'the change noticed');

    const leech = await startSession({ meta: fx.meta, root: join(fx.work, 'out'), mode: 'download', useTrackers: false, peers: [seed.address] });
    // everything but piece 7 arrives; piece 7 is refused, never sent wrong
    await until(() => leech.session.have.count === 19, 20_000, 'the 19 intact pieces');
    await new Promise((r) => setTimeout(r, 500));
    expect(leech.session.have.has(7)).toBe(false);
    expect(leech.session.stats().failedPieces).toBe(0);
    expect(seed.session.have.has(7)).toBe(false);
    expect(seed.session.have.count).toBe(19);
  });
});
