/**
 * `tt download --select` through the built binary against in-process tt
 * seeds on 127.0.0.1: only the chosen files appear, byte-identical; shared
 * pieces go to the part file; a later, larger selection keeps what was
 * verified; a selective download serves its pieces (shared ones from the part
 * file) to another selective leecher; a magnet's selection is checked once
 * its metadata arrives.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { FileSelection } from '../../../src/metainfo/selection.js';
import { makeFixture, startSession, stopAll, trackDir, type Fixture, type Running } from '../../helpers/swarm.js';
import { LOOPBACK, expectOneErrorLine, killAllTt, runTt, startTt } from './tt-cli.js';

afterEach(async () => {
  await killAllTt();
  await stopAll();
});

const PIECE = 32_768;

/** ODD_FILES: 1 a.txt (1000 B), 2 empty.bin, 3 sub/b.bin (70001), 4 sub/deeper/c.bin (98309), 5 z.bin (300123). */
async function fixture(): Promise<Fixture> {
  const fx = await makeFixture({ pieceLength: PIECE });
  trackDir(fx.work);
  return fx;
}

async function seeder(fx: Fixture): Promise<string> {
  return `127.0.0.1:${(await startSeed(fx)).address.port}`;
}

function startSeed(fx: Fixture): Promise<Running> {
  return startSession({ meta: fx.meta, root: fx.seedRoot, mode: 'seed' });
}

function filePath(fx: Fixture, root: string, k: number): string {
  return join(root, fx.meta.name, ...fx.files[k]!.path);
}

/** Which files exist under root, and whether each equals the source. */
async function onDisk(fx: Fixture, root: string): Promise<('same' | 'differs' | 'absent')[]> {
  return Promise.all(
    fx.files.map(async (f, k) => {
      const path = filePath(fx, root, k);
      if (!existsSync(path)) return 'absent' as const;
      return (await readFile(path)).equals(f.data) ? ('same' as const) : ('differs' as const);
    }),
  );
}

function selection(fx: Fixture, files: number[]): FileSelection {
  return new FileSelection(
    fx.meta,
    fx.meta.files.map((_, i) => files.includes(i)),
  );
}

describe('tt download --select', () => {
  it('writes only the chosen file, byte-identical, and keeps the shared pieces in the part file', async () => {
    const fx = await fixture();
    const peer = await seeder(fx);
    const out = join(fx.work, 'out');
    const p = await runTt(['download', fx.torrentPath, '--out', out, ...LOOPBACK, '--no-trackers', '--peer', peer, '--json', '--select', '4']);
    expect(p.exit?.code, p.describe()).toBe(0);
    expect(p.badLines).toEqual([]);
    expect(await onDisk(fx, out)).toEqual(['absent', 'absent', 'absent', 'same', 'absent']);
    const wanted = selection(fx, [3]).wanted;
    const done = p.events.find((e) => e.event === 'done')!;
    expect(done).toMatchObject({ complete: true, selectedFiles: 1, wantedPieces: wanted.count, wantedHave: wanted.count, have: wanted.count });
    expect(done.downloaded).toBe([...wanted.indices()].reduce((n, i) => n + Math.min(PIECE, fx.meta.totalLength - i * PIECE), 0));
    expect(done.downloaded as number).toBeLessThan(fx.meta.totalLength / 2);
    const last = p.events.filter((e) => e.event === 'progress').at(-1)!;
    expect(last).toMatchObject({ wantedLeft: 0, wantedHave: wanted.count });
    expect(last.left).toBeGreaterThan(0); // trackers are told the truth: the torrent is not complete
    // c.bin starts and ends inside pieces shared with b.bin and z.bin: those bytes are in the part file
    const part = join(out, `.${fx.meta.infoHashHex}.tt-parts`);
    const c = fx.meta.files[3]!;
    const bytes = await readFile(part);
    const from = Math.floor(c.offset / PIECE) * PIECE;
    expect(bytes.subarray(from, c.offset).equals(fx.files[2]!.data.subarray(fx.files[2]!.data.length - (c.offset - from)))).toBe(true);
    expect((await stat(part)).blocks * 512).toBeLessThan(4 * PIECE); // sparse: only the shared pieces' bytes
  });

  it('a later, larger selection keeps every verified piece, shared ones included', async () => {
    const fx = await fixture();
    const peer = await seeder(fx);
    const out = join(fx.work, 'out');
    const args = ['download', fx.torrentPath, '--out', out, ...LOOPBACK, '--no-trackers', '--peer', peer, '--json'];
    const first = await runTt([...args, '--select', '4']);
    expect(first.exit?.code, first.describe()).toBe(0);
    const had = selection(fx, [3]).wanted;
    const second = await runTt([...args, '--select', '3-5']);
    expect(second.exit?.code, second.describe()).toBe(0);
    // the pieces c.bin shares with b.bin and z.bin verified from the part file: nothing fetched twice
    expect(second.events.find((e) => e.event === 'checked')).toMatchObject({ have: had.count });
    const wanted = selection(fx, [2, 3, 4]).wanted;
    let expected = 0;
    for (const i of wanted.indices()) if (!had.has(i)) expected += Math.min(PIECE, fx.meta.totalLength - i * PIECE);
    expect(second.events.find((e) => e.event === 'done')).toMatchObject({ complete: true, downloaded: expected, selectedFiles: 3 });
    expect(await onDisk(fx, out)).toEqual(['absent', 'absent', 'same', 'same', 'same']);
    // and everything, at last
    const part = join(out, `.${fx.meta.infoHashHex}.tt-parts`);
    expect(existsSync(part)).toBe(true);
    const third = await runTt([...args, '--select', '1-5']);
    expect(third.exit?.code, third.describe()).toBe(0);
    expect(await onDisk(fx, out)).toEqual(['same', 'same', 'same', 'same', 'same']);
    expect(existsSync(part)).toBe(false); // every byte is in its own file now: the part file is gone
  });

  it('switching to a neighbouring file, then dropping --select, never fetches a verified shared piece again', async () => {
    const fx = await fixture();
    const peer = await seeder(fx);
    const out = join(fx.work, 'out');
    const args = ['download', fx.torrentPath, '--out', out, ...LOOPBACK, '--no-trackers', '--peer', peer, '--json'];
    const fetched = (p: Awaited<ReturnType<typeof runTt>>): number => p.events.find((e) => e.event === 'done')!.downloaded as number;
    const size = (i: number): number => Math.min(PIECE, fx.meta.totalLength - i * PIECE);
    // c.bin (4) alone; then z.bin (5) alone: the piece c.bin and z.bin share was verified in the first run
    expect((await runTt([...args, '--select', '4'])).exit?.code).toBe(0);
    const c = selection(fx, [3]).wanted;
    const second = await runTt([...args, '--select', '5']);
    expect(second.exit?.code, second.describe()).toBe(0);
    const z = selection(fx, [4]).wanted;
    const shared = [...z.indices()].filter((i) => c.has(i));
    expect(shared.length).toBe(1);
    // the first run's resume record vouches for all of c.bin's pieces (files unchanged), the shared one among them
    expect(second.events.find((e) => e.event === 'checked')).toMatchObject({ have: c.count, resumed: c.count });
    expect(fetched(second)).toBe([...z.indices()].filter((i) => !c.has(i)).reduce((n, i) => n + size(i), 0));
    expect(await onDisk(fx, out)).toEqual(['absent', 'absent', 'absent', 'same', 'same']);
    // no --select at all: everything verified so far counts, the rest is fetched, the part file's bytes move into place
    const third = await runTt(args);
    expect(third.exit?.code, third.describe()).toBe(0);
    let rest = 0;
    for (let i = 0; i < fx.meta.pieceCount; i++) if (!c.has(i) && !z.has(i)) rest += size(i);
    expect(fetched(third)).toBe(rest);
    expect(await onDisk(fx, out)).toEqual(['same', 'same', 'same', 'same', 'same']);
    expect(existsSync(join(out, `.${fx.meta.infoHashHex}.tt-parts`))).toBe(false);
  });

  it('selecting only an empty file creates it and finishes without downloading', async () => {
    const fx = await fixture();
    const peer = await seeder(fx);
    const out = join(fx.work, 'out');
    const p = await runTt(['download', fx.torrentPath, '--out', out, ...LOOPBACK, '--no-trackers', '--peer', peer, '--json', '--select', '2']);
    expect(p.exit?.code, p.describe()).toBe(0);
    expect(await onDisk(fx, out)).toEqual(['absent', 'same', 'absent', 'absent', 'absent']);
    expect(p.events.find((e) => e.event === 'done')).toMatchObject({ complete: true, downloaded: 0, wantedPieces: 0 });
  });

  it('a selective download with --seed serves its pieces, shared ones from the part file, to another selective leecher', async () => {
    const fx = await fixture();
    const origin = await startSeed(fx);
    const mid = join(fx.work, 'mid');
    const args = ['--out', mid, ...LOOPBACK, '--no-trackers', '--peer', `127.0.0.1:${origin.address.port}`, '--json', '--select', '4', '--seed'];
    const seeding = startTt(['download', fx.torrentPath, ...args]);
    const port = (await seeding.waitForEvent('listening')).port as number;
    await seeding.waitForEvent('complete', 20_000);
    // the origin is gone: everything must come from the selective seed
    await origin.session.stop();
    await origin.listener.close();
    const out = join(fx.work, 'out');
    const p = await runTt(['download', fx.torrentPath, '--out', out, ...LOOPBACK, '--no-trackers', '--peer', `127.0.0.1:${port}`, '--json', '--select', '4']);
    expect(p.exit?.code, p.describe()).toBe(0);
    expect(await onDisk(fx, out)).toEqual(['absent', 'absent', 'absent', 'same', 'absent']);
  });

  it('a magnet link: the selection is checked once the metadata is in, before anything is written', async () => {
    const fx = await fixture();
    const peer = await seeder(fx);
    const out = join(fx.work, 'out');
    const magnet = `magnet:?xt=urn:btih:${fx.meta.infoHashHex}&x.pe=${encodeURIComponent(peer)}`;
    const bad = await runTt(['download', magnet, '--out', out, ...LOOPBACK, '--no-trackers', '--quiet', '--select', '6']);
    expect(bad.exit?.code, bad.describe()).toBe(2);
    expectOneErrorLine(bad, /--select: there is no file 6: payload has 5 files/);
    expect(existsSync(out)).toBe(false);
    const good = await runTt(['download', magnet, '--out', out, ...LOOPBACK, '--no-trackers', '--json', '--select', '5']);
    expect(good.exit?.code, good.describe()).toBe(0);
    expect(await onDisk(fx, out)).toEqual(['absent', 'absent', 'absent', 'absent', 'same']);
  });
});
