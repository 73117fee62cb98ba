/**
 * Pieces wholly in BEP 47 padding through the built CLI. A torrent of 20 bytes
 * of data and 4 GiB of padding in 16 MiB pieces (described, never written):
 * `tt seed` serves it and `tt download` fetches it, every piece verified, and
 * `tt verify` agrees. A piece wholly in padding whose hash is not that of zeros
 * (no peer could ever give it) and a torrent of nothing but padding are invalid
 * torrents: exit 4 from info, verify and download, one line saying why.
 */
import { mkdtempSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt } from '../../helpers/build.js';
import { dataOf, paddedTorrent, type Spec } from '../../helpers/padded-torrent.js';
import { trackDir, stopAll } from '../../helpers/swarm.js';
import { LOOPBACK, expectOneErrorLine, killAllTt, runTt, startTt } from './tt-cli.js';

beforeAll(() => ensureBuilt(), 240_000);
afterEach(async () => {
  await killAllTt();
  await stopAll();
});

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

function work(): string {
  const dir = mkdtempSync(join(tmpdir(), 'tt-cli-padding-'));
  trackDir(dir);
  return dir;
}

/** `specs` as t.torrent (name `m`) in a new folder, with the data files under seed/m. */
function setUp(specs: Spec[], pieceLength: number, override?: ReadonlyMap<number, Buffer>): { dir: string; torrent: string; seed: string } {
  const dir = work();
  const torrent = join(dir, 't.torrent');
  writeFileSync(torrent, paddedTorrent(specs, pieceLength, override));
  const seed = join(dir, 'seed');
  mkdirSync(join(seed, 'm'), { recursive: true });
  for (const f of specs) if (!f.pad) writeFileSync(join(seed, 'm', ...f.path), dataOf(f));
  return { dir, torrent, seed };
}

describe('pieces wholly in BEP 47 padding, through the CLI', () => {
  it('4 GiB of padding in 16 MiB pieces: tt seed serves it, tt download fetches the 20 bytes and verifies every piece, tt verify agrees', async () => {
    const P = 16 * MiB;
    const specs: Spec[] = [
      { path: ['a'], length: 10 },
      { path: ['.pad', '1'], length: P - 10, pad: true },
      { path: ['.pad', '2'], length: 4 * GiB, pad: true },
      { path: ['b'], length: 10 },
    ];
    const { dir, torrent, seed } = setUp(specs, P);
    const seeder = startTt(['seed', torrent, '--dir', seed, ...LOOPBACK, '--json']);
    const listening = await seeder.waitForEvent('listening');
    const out = join(dir, 'out');
    const p = await runTt(['download', torrent, '--out', out, ...LOOPBACK, '--no-trackers', '--peer', `127.0.0.1:${String(listening.port)}`, '--json'], 60_000);
    expect(p.exit?.code, p.describe()).toBe(0);
    // padding pieces are had before any peer: 256 of 258 at the check
    expect(p.events.find((e) => e.event === 'checked')).toMatchObject({ have: 256, pieceCount: 258 });
    expect(p.events.find((e) => e.event === 'done')).toMatchObject({ complete: true });
    expect(readFileSync(join(out, 'm', 'a'))).toEqual(dataOf(specs[0]!));
    expect(readFileSync(join(out, 'm', 'b'))).toEqual(dataOf(specs[3]!));
    expect(readdirSync(join(out, 'm')).sort()).toEqual(['a', 'b']); // padding is never created
    const v = await runTt(['verify', torrent, '--dir', out]);
    expect(v.exit?.code, v.describe()).toBe(0);
    expect(v.stdout).toMatch(/all 258 pieces verified/);
  }, 120_000);

  it('a piece wholly in padding whose hash is not that of zeros: exit 4 from info, verify and download, naming the piece', async () => {
    const P = 16 * 1024;
    const specs: Spec[] = [
      { path: ['a'], length: 10 },
      { path: ['.pad', 'x'], length: 2 * P - 10, pad: true },
      { path: ['b'], length: 10 },
    ];
    const { dir, torrent, seed } = setUp(specs, P, new Map([[1, Buffer.alloc(20, 0x11)]]));
    const runs = [
      await runTt(['info', torrent]),
      await runTt(['verify', torrent, '--dir', seed]),
      await runTt(['download', torrent, '--out', join(dir, 'out'), ...LOOPBACK, '--no-trackers', '--peer', '127.0.0.1:9']),
    ];
    for (const r of runs) {
      expect(r.exit?.code, r.describe()).toBe(4);
      expectOneErrorLine(r, /^tt: invalid torrent: info\.pieces: piece 1 lies wholly in BEP 47 padding \(zeros\), but its hash is not that of 16384 zero bytes/);
    }
    expect(readdirSync(dir).sort()).toEqual(['seed', 't.torrent']); // download created nothing
  });

  it('a torrent of nothing but padding: exit 4 from info and download, nothing created', async () => {
    const { dir, torrent } = setUp([{ path: ['.pad', '100'], length: 100, pad: true }], 16 * 1024);
    for (const args of [['info', torrent], ['download', torrent, '--out', join(dir, 'out'), ...LOOPBACK, '--no-trackers', '--peer', '127.0.0.1:9']]) {
      const r = await runTt(args);
      expect(r.exit?.code, r.describe()).toBe(4);
      expectOneErrorLine(r, /^tt: invalid torrent: info\.files: every file is BEP 47 padding: the torrent holds no data$/);
    }
    expect(readdirSync(dir).sort()).toEqual(['seed', 't.torrent']);
  });
});
