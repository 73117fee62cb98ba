/**
 * `tt download --sequential` and `--first-last` through the built binary,
 * with `--select`, against a loopback seed that records the order of the
 * requests it answers. With one peer that has every piece, the picker's rule
 * (pieces/picker.ts) is exact: each piece is first requested in increasing
 * index order, the first and last piece of each selected file before the rest.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FileSelection } from '../../../src/metainfo/selection.js';
import { makeFixture, stopAll, torrentBytes, trackDir, type Fixture } from '../../helpers/swarm.js';
import { startAnySeeder, type AnySeeder } from '../safety/any-seeder.js';
import { LOOPBACK, killAllTt, runTt } from './tt-cli.js';

const PIECE = 32_768;
const seeders: AnySeeder[] = [];

afterEach(async () => {
  await killAllTt();
  for (const s of seeders.splice(0)) await s.close();
  await stopAll();
});

/** a.bin pieces 0-3, b.bin 3-15, c.bin 15-19, d.bin 19-21: neighbours share a piece. */
async function fixture(): Promise<Fixture> {
  const fx = await makeFixture({
    files: [
      { path: ['a.bin'], size: 100_000 },
      { path: ['b.bin'], size: 400_001 },
      { path: ['c.bin'], size: 150_000 },
      { path: ['d.bin'], size: 60_000 },
    ],
    pieceLength: PIECE,
  });
  trackDir(fx.work);
  return fx;
}

/** `tt download --select <files> <flags>` from a recording seed; the pieces in the order first requested. */
async function download(fx: Fixture, select: string, flags: string[]): Promise<{ order: number[]; out: string }> {
  const seeder = await startAnySeeder(await torrentBytes(fx), PIECE);
  seeders.push(seeder);
  const out = join(fx.work, 'out');
  const p = await runTt(['download', fx.torrentPath, '--out', out, ...LOOPBACK, '--no-trackers', '--peer', `127.0.0.1:${seeder.port}`, '--json', '--select', select, ...flags]);
  expect(p.exit?.code, p.describe()).toBe(0);
  expect(p.events.find((e) => e.event === 'done')).toMatchObject({ complete: true });
  return { order: [...new Set(seeder.requests.map((r) => r.index))], out };
}

function wanted(fx: Fixture, files: number[]): number[] {
  return [...new FileSelection(fx.meta, fx.meta.files.map((_, i) => files.includes(i))).wanted.indices()];
}

async function sameFile(fx: Fixture, out: string, k: number): Promise<boolean> {
  const path = join(out, fx.meta.name, ...fx.files[k]!.path);
  return existsSync(path) && (await readFile(path)).equals(fx.files[k]!.data);
}

describe('tt download piece order', () => {
  it('--sequential --select: the pieces of the selected file are requested in increasing order, and only those', async () => {
    const fx = await fixture();
    const { order, out } = await download(fx, '2', ['--sequential']);
    expect(order).toEqual(wanted(fx, [1])); // 3, 4, ..., 15
    expect(await sameFile(fx, out, 1)).toBe(true);
    expect(existsSync(join(out, fx.meta.name, 'a.bin'))).toBe(false);
  });

  it('--sequential --first-last --select: first and last pieces of each selected file, then the rest in order', async () => {
    const fx = await fixture();
    const { order, out } = await download(fx, '2-3', ['--sequential', '--first-last']);
    const edges = [3, 15, 19]; // b.bin's first and last (15, shared with c.bin), c.bin's last
    expect(order.slice(0, 3)).toEqual(edges);
    expect(order.slice(3)).toEqual(wanted(fx, [1, 2]).filter((i) => !edges.includes(i)));
    expect(await sameFile(fx, out, 1)).toBe(true);
    expect(await sameFile(fx, out, 2)).toBe(true);
  });

  it('--first-last alone: the edges first, the rest rarest first', async () => {
    const fx = await fixture();
    const { order } = await download(fx, '2-3', ['--first-last']);
    expect(order.slice(0, 3)).toEqual([3, 15, 19]);
    expect([...order].sort((a, b) => a - b)).toEqual(wanted(fx, [1, 2]));
  });
});
