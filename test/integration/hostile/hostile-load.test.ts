/**
 * Load-shaped attacks on a seeding tt (HARDENING.md "load"): leechers that ask
 * for megabytes and never read them, and hundreds of handshaked idle
 * connections. tt's buffering must stay bounded and an honest leecher must
 * still complete, bytes verified.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Socket } from 'node:net';
import { BLOCK_SIZE } from '../../../src/core/geometry.js';
import { MAX_PEER_REQUESTS } from '../../../src/session/uploader.js';
import { MessageId } from '../../../src/wire/messages.js';
import type { RawPeer } from '../../helpers/raw-peer.js';
import { stopAll } from '../../helpers/swarm.js';
import { PIECE_LENGTH, delay, hostileLeecher, message, neverReadingLeecher, startHonestLeecher, startSeed, u32 } from './harness.js';

afterEach(stopAll);

/** STATE.md: a peer's serve loop waits for 'drain' once more than 1 MiB sits in its socket. */
const SEND_HIGH_WATER_BYTES = 1024 * 1024;
/** One piece message (header + a 16 KiB block) may be written past the high-water mark. */
const PER_PEER_BUFFER_BOUND = SEND_HIGH_WATER_BYTES + BLOCK_SIZE + 13;

describe('connections that take a place and do nothing', () => {
  it('a seed full of peers that say interested and then only keep alive still lets an honest leecher in: the longest useless one makes room', async () => {
    const { fx, seed } = await startSeed({ maxPeers: 4, maxPeersPerIp: 100, uselessPeerMs: 1_500 });
    const reasons: string[] = [];
    seed.session.on('peer-closed', (_peer, reason) => reasons.push(reason));
    const squatters: RawPeer[] = [];
    for (let i = 0; i < 4; i++) {
      const p = await hostileLeecher(fx.meta, seed);
      p.send({ type: 'interested' });
      squatters.push(p);
    }
    // keep-alives, and now and then a piece nobody asked for: neither is a block moved (it used to count as payload)
    const alive = setInterval(() => {
      for (const p of squatters) {
        if (p.isClosed()) continue;
        p.send({ type: 'keep-alive' });
        p.sendRaw(message(MessageId.piece, Buffer.concat([u32(0, 0), Buffer.from([1])])));
      }
    }, 500);
    try {
      await delay(300);
      expect(seed.session.peerCount).toBe(4);
      const honest = await startHonestLeecher(fx, [seed.address], { maxPeersPerIp: 100 });
      await honest.done;
      expect(reasons.filter((r) => /no data either way for \d+ s: making room/.test(r)).length).toBeGreaterThanOrEqual(1);
    } finally {
      clearInterval(alive);
    }
  });
});

describe('leechers that never read', () => {
  it('one that never reads but keeps provoking answers (request + cancel pairs: a BEP 6 reject each) is closed once 4 MiB wait for it', async () => {
    const { fx, seed } = await startSeed();
    const reasons: string[] = [];
    seed.session.on('peer-closed', (_peer, reason) => reasons.push(reason));
    const honest = await startHonestLeecher(fx, [seed.address]);
    const fast = Buffer.alloc(8);
    fast[7] = 0x04; // BEP 6: a cancelled request is answered with a reject
    const socket = await neverReadingLeecher(fx.meta, seed.address.port, 5_000, fast);
    const pair = Buffer.concat([message(MessageId.request, u32(1, 0, BLOCK_SIZE)), message(MessageId.cancel, u32(1, 0, BLOCK_SIZE))]);
    const burst = Buffer.concat(Array.from({ length: 4_000 }, () => pair)); // 136 KB: 68 KB of rejects
    // ~16 MB of rejects would fill the kernel's buffers (~10 MB on loopback) and 4 MiB of tt's own; 128 MB of pairs is plenty
    let sent = 0;
    const t0 = Date.now();
    const notReading = (): string[] => reasons.filter((r) => /not reading what we send/.test(r));
    while (!socket.destroyed && notReading().length === 0 && sent < 128 * 1024 * 1024 && Date.now() - t0 < 30_000) {
      if (!socket.write(burst)) await Promise.race([new Promise((r) => socket.once('drain', r)), delay(200)]);
      sent += burst.length;
      if (sent % (burst.length * 16) === 0) await delay(1); // let tt's side run
    }
    await delay(200);
    expect(notReading()).toEqual(['peer is not reading what we send (over 4 MiB queued)']);
    socket.destroy();
    await honest.done;
  }, 60_000);

  it("8 leechers each asking for 7.5 MiB and never reading: tt buffers at most ~1 MiB per socket, memory stays bounded, the honest leecher completes", async () => {
    const payload = 16 * 1024 * 1024 + 77;
    // no upload limit: the attackers get everything the sockets take; 16 slots: all of them are unchoked
    const { fx, seed } = await startSeed({ uploadLimit: 0, uploadSlots: 16 }, payload);
    const ttSockets: Socket[] = [];
    seed.listener.on('accepted', (s: Socket) => ttSockets.push(s));
    const honest = await startHonestLeecher(fx, [seed.address], { downloadLimit: 8 * 1024 * 1024 });
    const before = process.memoryUsage();

    const attackers = await Promise.all(Array.from({ length: 8 }, () => neverReadingLeecher(fx.meta, seed.address.port)));
    const perAttacker = MAX_PEER_REQUESTS - 20; // under the flood limit: a legal, greedy peer
    attackers.forEach((socket, a) => {
      const requests: Buffer[] = [];
      for (let i = 0; i < perAttacker; i++) {
        const n = (a * 61 + i) % ((fx.meta.pieceCount - 1) * (PIECE_LENGTH / BLOCK_SIZE));
        requests.push(message(MessageId.request, u32(Math.floor(n / 2), (n % 2) * BLOCK_SIZE, BLOCK_SIZE)));
      }
      socket.write(Buffer.concat(requests));
    });
    const asked = attackers.length * perAttacker * BLOCK_SIZE;
    await delay(1_500); // tt serves until every attacker's socket is full

    const buffered = ttSockets.map((s) => (s.destroyed ? 0 : s.writableLength));
    const peak = Math.max(...buffered);
    const after = process.memoryUsage();
    await honest.done;

    // the attackers are still connected (they are legal, just slow) and tt stopped writing to them
    expect(attackers.every((s) => !s.destroyed)).toBe(true);
    expect(peak).toBeGreaterThan(0); // the attack really filled tt's sockets
    expect(peak).toBeLessThanOrEqual(PER_PEER_BUFFER_BOUND);
    // tt stopped short of what they asked (60 MiB): the kernel takes ~5 MiB per paused
    // loopback socket (tcp_wmem max 4 MiB + the receive window), tt's own buffer <= ~1 MiB
    const uploaded = seed.session.stats().uploaded - fx.meta.totalLength;
    expect(uploaded).toBeLessThan(asked);
    // memory: the read cache (here the whole 16 MiB torrent) plus <= ~1 MiB per attacker (sent
    // blocks are views into cached pieces) = ~24 MiB; 48 MiB leaves room for GC timing.
    // Measured: ~16 MiB. 60 MiB of copies queued for the attackers would break it.
    const grown = after.heapUsed + after.arrayBuffers - (before.heapUsed + before.arrayBuffers);
    expect(grown).toBeLessThan(48 * 1024 * 1024);
    for (const s of attackers) s.destroy();
  });
});

describe('hundreds of idle connections', () => {
  it('300 handshaked peers that then say nothing: an honest leecher arriving after them still completes', async () => {
    const { fx, seed } = await startSeed();
    const idle: RawPeer[] = [];
    for (let i = 0; i < 300; i++) {
      // sequential in small batches: 300 at once would also test the 64-pending-handshake cap
      const batch = await Promise.all(Array.from({ length: 10 }, () => hostileLeecher(fx.meta, seed).catch(() => undefined)));
      idle.push(...batch.filter((p): p is RawPeer => p !== undefined));
      i += 9;
    }
    await delay(300);
    const open = idle.filter((p) => !p.isClosed()).length;
    // tt keeps a bounded number (maxPeers + 5 = 55 by default) and refuses the rest
    expect(open).toBeGreaterThan(0);
    expect(open).toBeLessThanOrEqual(60);
    expect(seed.session.stats().peers).toBe(open);
    // idle peers (not interested, nothing sent for seconds) must make room for a useful one
    const honest = await startHonestLeecher(fx, [seed.address], {}, 10_000);
    try {
      await honest.done;
    } finally {
      for (const p of idle) p.close();
    }
  }, 40_000);
});
