/**
 * The built CLI (`node bin/tt.js seed ... --json`, build first) under a mix of
 * hostile leechers: the bad connections are dropped, the process stays up with
 * bounded RSS, an honest leecher completes, and SIGTERM still ends it cleanly.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { fileURLToPath } from 'node:url';
import type { Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { BLOCK_SIZE } from '../../../src/core/geometry.js';
import { EXIT_CODES } from '../../../src/core/errors.js';
import { MAX_PEER_REQUESTS } from '../../../src/session/uploader.js';
import { encodeHandshake } from '../../../src/wire/handshake.js';
import { MessageId } from '../../../src/wire/messages.js';
import { RawPeer } from '../../helpers/raw-peer.js';
import { LOOPBACK, expectOneErrorLine, killAllTt, startTt } from '../cli/tt-cli.js';
import { killAll, startProcess } from '../../helpers/clients/process.js';
import { makeFixture, startSession, stopAll, trackDir, type Running } from '../../helpers/swarm.js';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  PIECE_LENGTH,
  expectDropped,
  expectKept,
  expectServed,
  frame,
  getUnchoked,
  chokingSeeder,
  hostileLeecher,
  message,
  neverReadingLeecher,
  rssBytes,
  startHonestLeecher,
  u32,
} from './harness.js';

const TT_BIN = fileURLToPath(new URL('../../../bin/tt.js', import.meta.url));

afterEach(async () => {
  await killAll();
  await killAllTt();
  await stopAll();
});

describe('tt seed (the CLI process) under hostile leechers', () => {
  it('drops each bad connection, keeps RSS bounded against flooders and non-readers, serves an honest leecher, ends on SIGTERM with exit 0 (how seeding ends)', async () => {
    const fx = await makeFixture({ files: [{ path: ['data.bin'], size: 16 * 1024 * 1024 + 5 }], pieceLength: PIECE_LENGTH });
    trackDir(fx.work);
    const tt = startProcess('tt seed', process.execPath, [
      TT_BIN, 'seed', fx.torrentPath, '--dir', fx.seedRoot, '--bind', '127.0.0.1', '--port', '0', '--json', '--upload-slots', '16',
    ]);
    const listening = await tt.waitForEventNamed('listening', 15_000);
    await tt.waitForEventNamed('started', 15_000);
    const port = listening['port'] as number;
    // only address/port are used by the helpers: the seed is another process here
    const seed = { address: { host: '127.0.0.1', port } } as Running;
    const rssBefore = await rssBytes(tt.pid);

    const honest = await startHonestLeecher(fx, [seed.address], { downloadLimit: 8 * 1024 * 1024 }, 30_000);

    // handshake-level offences
    const wrongProtocol = await RawPeer.connect('127.0.0.1', port);
    const bad = encodeHandshake(fx.meta.infoHash, randomBytes(20));
    bad[0] = 20;
    wrongProtocol.sendRaw(bad);
    const wrongHash = await RawPeer.connect('127.0.0.1', port);
    wrongHash.sendHandshake(randomBytes(20));
    // framing and range offences after a good handshake
    const huge = await hostileLeecher(fx.meta, seed);
    huge.sendRaw(frame(0xffffffff, Buffer.from([MessageId.piece])));
    const spare = await hostileLeecher(fx.meta, seed);
    const bits = Buffer.alloc(Math.ceil(fx.meta.pieceCount / 8) + 1);
    spare.sendRaw(message(MessageId.bitfield, bits)); // one byte too long
    const outOfRange = await hostileLeecher(fx.meta, seed);
    outOfRange.sendRaw(message(MessageId.request, u32(0, PIECE_LENGTH - 10, 20)));
    // an unknown message is skipped: the connection keeps being served
    const unknown = await hostileLeecher(fx.meta, seed);
    unknown.sendRaw(message(77, randomBytes(64)));

    // 6 flooders (1000 requests more than reqq, at once) and 4 leechers that never read what they ask for
    const floods = await Promise.all(Array.from({ length: 6 }, () => hostileLeecher(fx.meta, seed)));
    await Promise.all(floods.map((p) => getUnchoked(p)));
    const burst = Buffer.concat(
      Array.from({ length: MAX_PEER_REQUESTS + 1000 }, (_, i) => message(MessageId.request, u32(i % (fx.meta.pieceCount - 1), (i % 2) * BLOCK_SIZE, BLOCK_SIZE))),
    );
    for (const p of floods) p.sendRaw(burst);
    const sleepers: Socket[] = await Promise.all(Array.from({ length: 4 }, () => neverReadingLeecher(fx.meta, port)));
    sleepers.forEach((s, a) => {
      const reqs = Array.from({ length: MAX_PEER_REQUESTS - 20 }, (_, i) => {
        const n = (a * 97 + i) % ((fx.meta.pieceCount - 1) * 2);
        return message(MessageId.request, u32(Math.floor(n / 2), (n % 2) * BLOCK_SIZE, BLOCK_SIZE));
      });
      s.write(Buffer.concat(reqs));
    });

    await Promise.all([
      expectDropped(wrongProtocol),
      expectDropped(wrongHash),
      expectDropped(huge),
      expectDropped(spare),
      expectDropped(outOfRange),
      ...floods.map((p) => expectDropped(p, 5_000)),
    ]);
    await expectKept(unknown);
    await getUnchoked(unknown);
    await expectServed(unknown, fx, 5, BLOCK_SIZE);

    await honest.done;
    const rssAfter = await rssBytes(tt.pid);
    // The read cache holds at most 32 MiB (here the whole 16 MiB torrent); each non-reader
    // pins <= ~1 MiB in tt's socket buffer; flooders are dropped at MAX_PEER_REQUESTS queued requests.
    // Budget: 16 + 4 x 1 MiB + 44 MiB for V8 growth under this load. Without send
    // backpressure the 4 non-readers alone would hold 30 MiB more.
    expect(rssAfter - rssBefore).toBeLessThan(64 * 1024 * 1024);
    expect(sleepers.every((s) => !s.destroyed)).toBe(true);
    expect(tt.exitStatusNow).toBeUndefined(); // still up

    const status = await tt.kill(); // SIGTERM ends seeding: the summary and exit 0
    expect(status.code).toBe(0);
    for (const s of sleepers) s.destroy();
  }, 60_000);
});

describe('tt download (the CLI process) with a peer that never sends', () => {
  it('--stall-timeout ends it with exit 5 and one line naming the stall', async () => {
    const fx = await makeFixture({ files: [{ path: ['data.bin'], size: 256 * 1024 }], pieceLength: PIECE_LENGTH });
    trackDir(fx.work);
    const choker = await chokingSeeder(fx.meta, 40);
    const t0 = Date.now();
    const tt = startTt([
      'download', fx.torrentPath, '--out', `${fx.work}/out`, '--no-trackers', '--peer', `127.0.0.1:${choker.port}`,
      ...LOOPBACK, '--stall-timeout', '2s', '--quiet',
    ]);
    const status = await tt.waitForExit(15_000);
    expect(status.code, tt.describe()).toBe(EXIT_CODES.NO_PEERS);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(2_000);
    expectOneErrorLine(tt, /^tt: no data for 2 s \(1 peer connected, none sending; --stall-timeout\)$/);
  });

  it('--stall-timeout after some pieces arrived says how many are verified and kept, as a Ctrl-C does', async () => {
    const fx = await makeFixture({ files: [{ path: ['data.bin'], size: 256 * 1024 }], pieceLength: PIECE_LENGTH });
    trackDir(fx.work);
    // a partial seed holding the first half: the rest never comes
    const halfRoot = join(fx.work, 'half');
    await mkdir(join(halfRoot, fx.meta.name), { recursive: true });
    await writeFile(join(halfRoot, fx.meta.name, 'data.bin'), fx.files[0]!.data.subarray(0, fx.files[0]!.data.length / 2));
    const partial = await startSession({ meta: fx.meta, root: halfRoot, mode: 'seed', allowPartial: true });
    const tt = startTt([
      'download', fx.torrentPath, '--out', `${fx.work}/out`, '--no-trackers', '--peer', `${partial.address.host}:${partial.address.port}`,
      ...LOOPBACK, '--stall-timeout', '2s', '--quiet',
    ]);
    const status = await tt.waitForExit(15_000);
    expect(status.code, tt.describe()).toBe(EXIT_CODES.NO_PEERS);
    expectOneErrorLine(tt, new RegExp(`^tt: no data for 2 s \\(1 peer connected, none sending; --stall-timeout\\); ${fx.meta.pieceCount / 2} of ${fx.meta.pieceCount} pieces verified and kept$`));
  });
});
