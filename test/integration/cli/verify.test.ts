/**
 * `tt verify <torrent> --dir DIR` through the built binary: all data matching
 * exits 0; a changed byte, a missing file or a missing empty file exits 7 and
 * names the file (by its tt info number); no data at all (the torrent's
 * folder missing) exits 3, as tt seed does; --select checks only those files;
 * --json reports each file; nothing is written; bad input exits as elsewhere.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { makeFixture, stopAll, trackDir, type Fixture } from '../../helpers/swarm.js';
import { expectOneErrorLine, killAllTt, runTt } from './tt-cli.js';

afterEach(async () => {
  await killAllTt();
  await stopAll();
});

// three files and an empty one, 16 KiB pieces: pieces span file boundaries
const FILES = [
  { path: ['a.bin'], size: 100_000 },
  { path: ['empty'], size: 0 },
  { path: ['sub', 'b.bin'], size: 40_000 },
  { path: ['sub', 'c.bin'], size: 5_000 },
];

async function fixture(): Promise<Fixture> {
  const fx = await makeFixture({ files: FILES, pieceLength: 16 * 1024 });
  trackDir(fx.work);
  return fx;
}

/** Every path under `dir` with its size and mtime: to show verify wrote nothing. */
function snapshot(dir: string): string {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.push(`${p} ${statSync(p).size} ${statSync(p).mtimeMs}`);
    }
  };
  walk(dir);
  return out.sort().join('\n');
}

async function flipByte(file: string, at: number): Promise<void> {
  const fh = await open(file, 'r+');
  const b = Buffer.alloc(1);
  await fh.read(b, 0, 1, at);
  b[0] = b[0]! ^ 0xff;
  await fh.write(b, 0, 1, at);
  await fh.close();
}

describe('tt verify', () => {
  it('exits 0 when every piece matches, and writes nothing', async () => {
    const fx = await fixture();
    const before = snapshot(fx.seedRoot);
    const p = await runTt(['verify', fx.torrentPath, '--dir', fx.seedRoot]);
    expect(p.exit?.code, p.describe()).toBe(0);
    expect(p.stdout).toMatch(new RegExp(`all ${fx.meta.pieceCount} pieces verified .*4 files`));
    expect(snapshot(fx.seedRoot)).toBe(before);
  });

  it('a changed byte: exit 7, the file named with its share verified; the others match', async () => {
    const fx = await fixture();
    await flipByte(join(fx.seedRoot, 'payload', 'sub', 'b.bin'), 20_000);
    const p = await runTt(['verify', fx.torrentPath, '--dir', fx.seedRoot]);
    expect(p.exit?.code, p.describe()).toBe(7);
    // progress lines on stderr, then exactly one error line
    expect(p.stderr.split('\n').filter((l) => l.startsWith('tt: '))).toEqual([expect.stringMatching(/^tt: 1 of \d+ pieces missing or not matching/)]);
    expect(p.stdout).toMatch(/1 of 4 files do not match/);
    expect(p.stdout).toMatch(/^\s+3\s+\d+\.\d% verified\s+payload\/sub\/b\.bin$/m);
    expect(p.stdout).not.toMatch(/a\.bin|c\.bin/);
  });

  it('--json: one done event with every file; a missing file and a missing empty file do not match', async () => {
    const fx = await fixture();
    rmSync(join(fx.seedRoot, 'payload', 'sub', 'c.bin'));
    rmSync(join(fx.seedRoot, 'payload', 'empty'));
    const p = await runTt(['verify', fx.torrentPath, '--dir', fx.seedRoot, '--json']);
    expect(p.exit?.code, p.describe()).toBe(7);
    expect(p.badLines).toEqual([]);
    const done = p.events.find((e) => e.event === 'done')!;
    expect(done.complete).toBe(false);
    const files = done.files as { file: number; path: string; length: number; verifiedBytes: number; present: boolean }[];
    expect(files.map((f) => [f.file, f.path, f.present])).toEqual([
      [1, 'payload/a.bin', true],
      [2, 'payload/empty', false],
      [3, 'payload/sub/b.bin', true],
      [4, 'payload/sub/c.bin', false],
    ]);
    expect(files[0]!.verifiedBytes).toBe(100_000);
    expect(files[3]!.verifiedBytes).toBe(0);
    // b.bin's last piece is shared with the missing c.bin: it cannot be verified
    expect(files[2]!.verifiedBytes).toBeLessThan(40_000);
  });

  it('--select checks only those files: the damage elsewhere does not count', async () => {
    const fx = await fixture();
    await flipByte(join(fx.seedRoot, 'payload', 'a.bin'), 10);
    const ok = await runTt(['verify', fx.torrentPath, '--dir', fx.seedRoot, '--select', '4']);
    expect(ok.exit?.code, ok.describe()).toBe(0);
    expect(ok.stdout).toMatch(/1 selected of 4 files/);
    const bad = await runTt(['verify', fx.torrentPath, '--dir', fx.seedRoot, '--select', '1,4']);
    expect(bad.exit?.code, bad.describe()).toBe(7);
    const usage = await runTt(['verify', fx.torrentPath, '--dir', fx.seedRoot, '--select', '9']);
    expect(usage.exit?.code, usage.describe()).toBe(2);
  });

  it("the torrent's folder empty: exit 7; no data at all: exit 3 (as tt seed); a torrent that is not one: exit 4; none there: exit 3", async () => {
    const fx = await fixture();
    const empty = join(fx.work, 'empty');
    mkdirSync(join(empty, fx.meta.name), { recursive: true });
    const nothing = await runTt(['verify', fx.torrentPath, '--dir', empty, '--quiet']);
    expect(nothing.exit?.code, nothing.describe()).toBe(7);
    expectOneErrorLine(nothing, /pieces missing or not matching/);
    const none = await runTt(['verify', fx.torrentPath, '--dir', join(fx.work, 'nothing-here'), '--quiet']);
    expect(none.exit?.code, none.describe()).toBe(3);
    expectOneErrorLine(none, /^tt: no data: .*nothing-here\/payload does not exist$/);
    const junk = join(fx.work, 'junk.torrent');
    writeFileSync(junk, 'd4:infoi1ee');
    expect((await runTt(['verify', junk])).exit?.code).toBe(4);
    expect((await runTt(['verify', join(fx.work, 'absent.torrent')])).exit?.code).toBe(3);
  });
});
