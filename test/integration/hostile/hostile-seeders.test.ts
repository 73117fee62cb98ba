/**
 * Hostile seeders against a downloading tt (HARDENING.md "peer wire"): blocks
 * nobody asked for, oversized blocks, stalls, trickles, endless choking and
 * our own peer id echoed back. The download completes from the honest seeder
 * beside them with every byte verified, or (all peers choking) fails cleanly.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { BLOCK_SIZE } from '../../../src/core/geometry.js';
import { MessageId, encodePieceHeader } from '../../../src/wire/messages.js';
import { REQUEST_TIMEOUT_MS } from '../../../src/session/torrent-session.js';
import type { RawPeer } from '../../helpers/raw-peer.js';
import { stopAll } from '../../helpers/swarm.js';
import { chokingSeeder, delay, expectDropped, expectKept, frame, hostileSeeder, startHonestLeecher, startSeed, u32 } from './harness.js';

afterEach(stopAll);

/** How long a stalled request may stay with one peer in these tests (the default is 30 s). */
const TEST_REQUEST_TIMEOUT_MS = 2_000;

/** The next request tt sends to `peer`. */
async function nextRequest(peer: RawPeer): Promise<{ index: number; begin: number; length: number }> {
  const m = await peer.waitFor((x) => x.type === 'request');
  if (m.type !== 'request') throw new Error('unreachable');
  return m;
}

/** A download of a fresh fixture from an honest (rate-limited) tt seeder plus one scripted hostile seeder. */
async function downloadBeside(
  script: (peer: RawPeer) => Promise<void>,
  opts: { unchoke?: boolean; peerId?: (theirs: Buffer) => Buffer } = {},
  sessionOpts: { requestTimeoutMs?: number } = { requestTimeoutMs: TEST_REQUEST_TIMEOUT_MS },
) {
  const { fx, seed } = await startSeed();
  const hostile = await hostileSeeder(fx.meta, script, opts);
  const hostileAddress = { host: '127.0.0.1', port: hostile.port };
  const download = await startHonestLeecher(fx, [hostileAddress, seed.address], sessionOpts);
  const failed: number[] = [];
  download.leech.session.on('piece-failed', (index) => failed.push(index));
  const closed: string[] = [];
  download.leech.session.on('peer-closed', (peer, reason) => {
    if (peer === `127.0.0.1:${hostile.port}`) closed.push(reason);
  });
  return { fx, seed, hostile, download, failed, closed };
}

describe('hostile seeders', () => {
  it('unrequested piece messages are ignored (never written); too many drop the connection', async () => {
    let markSent!: () => void;
    const sent = new Promise<void>((r) => (markSent = r));
    const { hostile, download, failed, closed, fx } = await downloadBeside(
      async (peer) => {
        // choking tt: so tt cannot have asked for anything
        const garbage = randomBytes(BLOCK_SIZE);
        for (let i = 0; i < 10; i++) peer.send({ type: 'piece', index: i, begin: 0, block: garbage });
        await expectKept(peer);
        markSent();
        for (let i = 0; i < 60; i++) peer.send({ type: 'piece', index: i % fx.meta.pieceCount, begin: BLOCK_SIZE, block: garbage });
      },
      { unchoke: false },
    );
    await sent;
    const peer = await hostile.peer;
    await expectDropped(peer);
    await download.done; // every byte equals the fixture: no garbage block was taken
    expect(failed).toEqual([]);
    expect(closed).toEqual(['protocol error: too many unrequested blocks']);
    await hostile.server.close();
  });

  it('an oversized piece (a block over 16 KiB) is dropped', async () => {
    const { hostile, download, failed, closed } = await downloadBeside(async (peer) => {
      const { index, begin } = await nextRequest(peer);
      peer.send({ type: 'piece', index, begin, block: randomBytes(BLOCK_SIZE + 1) });
    });
    await expectDropped(await hostile.peer, 5_000);
    await download.done;
    expect(failed).toEqual([]);
    expect(closed).toEqual([expect.stringMatching(/^protocol error: piece block too long/)]);
    await hostile.server.close();
  });

  it('a 1 MiB block claimed in the length prefix is dropped as soon as the header arrives', async () => {
    const { hostile, download } = await downloadBeside(async (peer) => {
      const { index, begin } = await nextRequest(peer);
      peer.sendRaw(frame(9 + 1024 * 1024, Buffer.concat([Buffer.from([MessageId.piece]), u32(index, begin)])));
    });
    await expectDropped(await hostile.peer, 5_000);
    await download.done;
    await hostile.server.close();
  });

  it('answers for blocks never asked (misaligned, wrong size, another block) are ignored; the download completes elsewhere', async () => {
    const { hostile, download, failed, closed } = await downloadBeside(async (peer) => {
      const { index, begin, length } = await nextRequest(peer);
      peer.send({ type: 'piece', index, begin: begin + 1, block: randomBytes(length - 1) }); // misaligned
      peer.send({ type: 'piece', index, begin, block: randomBytes(100) }); // wrong size
      peer.sendRaw(Buffer.concat([encodePieceHeader(index, begin, length - 1), randomBytes(length - 1)]));
      // then it stalls: the requests it holds must time out and go to the honest seeder
    });
    await download.done;
    expect(failed).toEqual([]); // the garbage never entered a piece
    // three bad blocks are tolerated (a late cancel looks like this); it is closed only once we are both seeds
    expect(closed.filter((r) => r !== 'both are seeds')).toEqual([]);
    await hostile.server.close();
  });

  it('a seeder that answers every request with choke + unchoke is asked for one block at a time, then closed; the download completes elsewhere', async () => {
    let requests = 0;
    let flaps = 0;
    const { hostile, download, failed, closed } = await downloadBeside(async (peer) => {
      for (let i = 0; i < 10_000 && !peer.isClosed(); i++) {
        const m = await peer.nextMessage(5_000).catch(() => undefined);
        if (!m) return;
        if (m.type !== 'request') continue;
        requests++;
        peer.send({ type: 'choke' });
        peer.send({ type: 'unchoke' });
        flaps++;
      }
    });
    await download.done;
    await expect.poll(() => closed, { timeout: 5_000 }).toEqual([expect.stringMatching(/choked us 20 times in a row without sending a block/)]);
    expect(failed).toEqual([]);
    // each flap used to fetch a whole queue of requests (32 and more) again; now one each after the first two
    expect(flaps).toBeGreaterThanOrEqual(19);
    expect(requests).toBeLessThan(200);
    await hostile.server.close();
  });

  it('a seeder that stalls with requests outstanding (default 30 s request timeout): endgame finishes from the honest seeder long before', async () => {
    let asked = 0;
    const t0 = Date.now();
    const { hostile, download, failed } = await downloadBeside(
      async (peer) => {
        await nextRequest(peer);
        asked = 1; // it holds requests and never answers
      },
      {},
      {},
    );
    await download.done;
    expect(asked).toBe(1);
    expect(failed).toEqual([]);
    // the stalled blocks are re-asked of the honest seeder in endgame: no 30 s wait
    expect(Date.now() - t0).toBeLessThan(REQUEST_TIMEOUT_MS / 3);
    await hostile.server.close();
  });

  it('a seeder answering one byte every half second: no crash, the download completes from the honest seeder', async () => {
    let trickled = 0;
    const { hostile, download, failed } = await downloadBeside(async (peer) => {
      const { index, begin, length } = await nextRequest(peer);
      const bytes = Buffer.concat([encodePieceHeader(index, begin, length), randomBytes(length)]);
      for (let i = 0; i < 60 && !peer.isClosed(); i++) {
        peer.sendRaw(bytes.subarray(i, i + 1));
        trickled++;
        await delay(500);
      }
    });
    await download.done;
    expect(trickled).toBeGreaterThan(0);
    expect(failed).toEqual([]);
    await hostile.server.close();
  });

  it('a peer echoing our own peer id is dropped and never dialled again', async () => {
    const { hostile, download } = await downloadBeside(async () => undefined, { peerId: (theirs) => theirs });
    await expectDropped(await hostile.peer);
    await download.done;
    expect(download.leech.session.pool.get(`127.0.0.1:${hostile.port}`)).toBeUndefined();
    await expect(hostile.server.accept(500)).rejects.toThrow(/no connection/);
    await hostile.server.close();
  });

  it('a seeder whose extended handshake throws in the session handler is closed alone', async () => {
    const { hostile, download, closed } = await downloadBeside(async (peer) => {
      peer.send({ type: 'extended', id: 0, payload: Buffer.from('d1:md') }); // truncated dictionary
    });
    await expectDropped(await hostile.peer);
    await download.done;
    expect(closed).toEqual([expect.stringMatching(/^error: bad extended handshake/)]);
    await hostile.server.close();
  });
});

describe('every peer choking us', () => {
  it('with a stall timeout, peers that stay connected but never send end the download with NO_PEERS', async () => {
    const { fx } = await startSeed();
    const chokers = await Promise.all([0, 1].map(() => chokingSeeder(fx.meta, 40)));
    const stallTimeoutMs = 2_000;
    const t0 = Date.now();
    const download = await startHonestLeecher(
      fx,
      chokers.map((c) => ({ host: '127.0.0.1', port: c.port })),
      { peerTimeoutMs: 0, stallTimeoutMs, requestTimeoutMs: TEST_REQUEST_TIMEOUT_MS },
    );
    const session = download.leech.session;
    const err = await new Promise<unknown>((resolve, reject) => {
      session.once('error', resolve);
      setTimeout(() => reject(new Error('no stall error')), stallTimeoutMs + 5_000);
    });
    expect(err).toMatchObject({ code: 'NO_PEERS' });
    expect((err as Error).message).toMatch(/^no data for 2 s \(2 peers connected, none sending; --stall-timeout\)$/);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(stallTimeoutMs);
    expect(session.have.count).toBe(0);
    await expect(download.done).rejects.toThrow(/no data/);
  });

  it('a slow but steady seeder never trips the stall timeout', async () => {
    // 512 KiB at 128 KiB/s: about 4 s, a block every ~125 ms, against a 1 s stall timeout
    const { fx, seed } = await startSeed({ uploadLimit: 128 * 1024 }, 512 * 1024);
    const download = await startHonestLeecher(fx, [seed.address], { stallTimeoutMs: 1_000 }, 30_000);
    const errors: unknown[] = [];
    download.leech.session.on('error', (e) => errors.push(e));
    await download.done;
    expect(errors).toEqual([]);
  });

  it('the download waits without error while choked; once the peers are gone, --peer-timeout ends it with NO_PEERS', async () => {
    const { fx } = await startSeed();
    const chokers = await Promise.all([0, 1].map(() => chokingSeeder(fx.meta, 20)));
    const peerTimeoutMs = 2_000;
    const download = await startHonestLeecher(
      fx,
      chokers.map((c) => ({ host: '127.0.0.1', port: c.port })),
      { peerTimeoutMs, requestTimeoutMs: TEST_REQUEST_TIMEOUT_MS },
    );
    const session = download.leech.session;
    const errors: unknown[] = [];
    session.on('error', (e) => errors.push(e));
    const peers = await Promise.all(chokers.map((c) => c.peer));
    // tt says it is interested, then waits; longer than the peer timeout: connected peers count
    await Promise.all(peers.map((p) => p.waitFor((m) => m.type === 'interested')));
    await delay(peerTimeoutMs + 1_500);
    expect(errors).toEqual([]);
    expect(session.have.count).toBe(0);
    expect(session.stats().peers).toBe(2);
    for (const p of peers) expect(p.received.filter((m) => m.type === 'request')).toEqual([]);
    // the chokers vanish (and stop listening): now no peer is connected
    const gone = Date.now();
    for (const c of chokers) await c.server.close();
    const err = await new Promise<unknown>((resolve, reject) => {
      if (errors.length > 0) resolve(errors[0]);
      session.once('error', resolve);
      setTimeout(() => reject(new Error('no NO_PEERS error')), peerTimeoutMs + 4_000);
    });
    expect(err).toMatchObject({ code: 'NO_PEERS' });
    expect(Date.now() - gone).toBeLessThan(peerTimeoutMs + 3_000);
    await expect(download.done).rejects.toThrow(/NO_PEERS|no peer/);
  });
});
