/**
 * `tt seed` serving real leechers (BEP 3 over TCP, tracker = opentracker on 127.0.0.1):
 * an aria2c leecher and a libtorrent leecher each find tt through the tracker and download a
 * multi-file torrent with odd file sizes; bytes on disk compared with the source.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { OpentrackerHandle } from '../helpers/opentracker.js';
import { makeTrackedTorrent } from '../helpers/clients/tracked-torrent.js';
import { aria2Download } from '../helpers/clients/aria2.js';
import { assertSameTree } from '../helpers/clients/data.js';
import { ltDownload } from '../helpers/clients/libtorrent.js';
import { freePort, killAll } from '../helpers/clients/process.js';
import { scrape, waitForSeeders } from '../helpers/clients/tracker-wait.js';
import { startTtSeeder, type TtSeeder } from '../helpers/clients/tt.js';

const LEECH_TIMEOUT_S = 90;

let dir: string;
let seedDir: string;
let source: string;
let torrent: string;
let infoHash: string;
let tracker: OpentrackerHandle;
let seeder: TtSeeder;
let pieceCount: number;

beforeAll(async () => {
  ({ dir, seedDir, source, torrent, infoHash, tracker, pieceCount } = await makeTrackedTorrent('tt-interop-seed-'));
  const base = (await scrape(tracker.httpUrl, infoHash)).complete;
  seeder = await startTtSeeder(torrent, seedDir);
  await waitForSeeders(tracker.httpUrl, infoHash, base + 1);
}, 120_000);

afterAll(async () => {
  await killAll();
  await tracker?.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('tt seed to real leechers via opentracker', () => {
  it('reports its data as checked: every piece present', () => {
    expect(seeder.port).toBeGreaterThan(0);
    expect(seeder.checked['have']).toBe(pieceCount);
    expect(seeder.checked['pieceCount']).toBe(pieceCount);
  });

  it('an aria2c leecher downloads everything from tt', async () => {
    const out = await mkdtemp(join(dir, 'out-aria2-'));
    await aria2Download({ torrent, outDir: out, port: await freePort(), timeoutS: LEECH_TIMEOUT_S });
    await assertSameTree(source, join(out, 'multi'));
  }, (LEECH_TIMEOUT_S + 30) * 1000);

  it('an aria2c leecher that accepts only encrypted (MSE) handshakes downloads everything from tt', async () => {
    // --bt-require-crypto: no fallback to a plain handshake. tt answers MSE and selects the
    // plaintext stream, which aria2c's default minimum level ("plain") accepts.
    const out = await mkdtemp(join(dir, 'out-aria2-mse-'));
    const port = await freePort();
    const extraArgs = ['--bt-require-crypto=true', '--bt-min-crypto-level=plain'];
    await aria2Download({ torrent, outDir: out, port, timeoutS: 30, extraArgs });
    await assertSameTree(source, join(out, 'multi'));
  }, (LEECH_TIMEOUT_S + 30) * 1000);

  it('an aria2c leecher that requires the RC4 stream (MSE, arc4 minimum) downloads everything from tt', async () => {
    const out = await mkdtemp(join(dir, 'out-aria2-rc4-'));
    const extraArgs = ['--bt-require-crypto=true', '--bt-min-crypto-level=arc4'];
    await aria2Download({ torrent, outDir: out, port: await freePort(), timeoutS: 30, extraArgs });
    await assertSameTree(source, join(out, 'multi'));
  }, (LEECH_TIMEOUT_S + 30) * 1000);

  it('a libtorrent leecher downloads everything from tt (found through the tracker only)', async () => {
    const out = await mkdtemp(join(dir, 'out-lt-'));
    await ltDownload({ torrent, outDir: out, timeoutS: LEECH_TIMEOUT_S });
    await assertSameTree(source, join(out, 'multi'));
  }, (LEECH_TIMEOUT_S + 30) * 1000);

  it('aria2c and libtorrent leechers at the same time', async () => {
    const outA = await mkdtemp(join(dir, 'out-both-aria2-'));
    const outL = await mkdtemp(join(dir, 'out-both-lt-'));
    await Promise.all([
      aria2Download({ torrent, outDir: outA, port: await freePort(), timeoutS: LEECH_TIMEOUT_S }),
      ltDownload({ torrent, outDir: outL, timeoutS: LEECH_TIMEOUT_S }),
    ]);
    await assertSameTree(source, join(outA, 'multi'));
    await assertSameTree(source, join(outL, 'multi'));
  }, (LEECH_TIMEOUT_S + 30) * 1000);

  it('exits on SIGTERM without needing SIGKILL', async () => {
    const status = await seeder.proc.kill();
    expect(status.signal).not.toBe('SIGKILL');
  });
});
