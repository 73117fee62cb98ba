/**
 * Hostile BEP 11 peer exchange against in-process tt sessions (every address
 * named is 127.0.0.x or ::1; port 9 has no listener, so tt's dials are refused
 * at once): a peer naming tt itself and unusable addresses, IPv6 entries,
 * garbage flags, a dropped list naming a peer tt is connected to, ut_pex
 * before the extended handshake and without the BEP 10 bit, extension id
 * collisions, the 64 KiB bound exactly, 10,000 peers from 50 connections
 * (pool and per-connection caps; the seed keeps serving), a reconnecting peer
 * that floods the pool but cannot push out the user's --peer, and a private
 * torrent that never sends PEX.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { peerKey } from '../../../src/core/ids.js';
import { encode } from '../../../src/metainfo/bencode.js';
import { MAX_KNOWN_PEERS } from '../../../src/session/peer-pool.js';
import { MAX_PEX_LEARNED } from '../../../src/session/pex.js';
import { encodeExtendedHandshake } from '../../../src/wire/extension.js';
import type { Message } from '../../../src/wire/messages.js';
import { MAX_PEX_BYTES, OUR_UT_PEX_ID, UT_PEX, encodePex, parsePex, type PexPeer } from '../../../src/wire/pex.js';
import { OUR_UT_METADATA_ID, UT_METADATA } from '../../../src/wire/ut-metadata.js';
import type { RawPeer } from '../../helpers/raw-peer.js';
import { expectSameData, makeFixture, startSession, stopAll, trackDir, whenComplete, type Fixture, type Running } from '../../helpers/swarm.js';
import { until } from '../../helpers/until.js';
import { delay, expectDropped, expectKept, hostileLeecher } from './harness.js';

const EXTENSIONS = Buffer.from([0, 0, 0, 0, 0, 0x10, 0, 0]);
const RAW_UT_PEX_ID = 9;
type Extended = Extract<Message, { type: 'extended' }>;

const netServers: Server[] = [];
afterEach(async () => {
  for (const s of netServers.splice(0)) await new Promise((r) => s.close(r));
  await stopAll();
});

async function fixture(size = 300_000): Promise<Fixture> {
  const fx = await makeFixture({ files: [{ path: ['data.bin'], size }], pieceLength: 32_768 });
  trackDir(fx.work);
  return fx;
}

/** A raw peer with the BEP 10 bit (unless `bit` is false) that sends `m` as its extended handshake (none when undefined). */
async function rawPeer(fx: Fixture, tt: Running, m: Record<string, number> | undefined = { [UT_PEX]: RAW_UT_PEX_ID }, bit = true): Promise<RawPeer> {
  const peer = await hostileLeecher(fx.meta, tt, undefined, bit ? EXTENSIONS : undefined);
  if (m) peer.send({ type: 'extended', id: 0, payload: encodeExtendedHandshake({ m }) });
  return peer;
}

function sendPex(peer: RawPeer, added: PexPeer[], dropped: { host: string; port: number }[] = [], id = OUR_UT_PEX_ID): void {
  peer.send({ type: 'extended', id, payload: encodePex({ added, dropped }) });
}

/** n distinct addresses 127.0.x.y:9, from the k-th on (x >= 2: nothing in these tests listens there). */
const fakes = (n: number, k = 0): PexPeer[] => Array.from({ length: n }, (_, i) => ({ host: `127.0.${2 + ((k + i) >> 8)}.${(k + i) & 255}`, port: 9, flags: 0 }));
const known = (tt: Running, host: string, port: number): boolean => tt.session.pool.get(peerKey(host, port)) !== undefined;

describe('hostile PEX: what a message names', () => {
  it('tt itself (plain, v4-mapped, ::1) and unusable addresses are never taken; ::1 is dialed over IPv6', async () => {
    const fx = await fixture();
    const seed = await startSession({ meta: fx.meta, root: fx.seedRoot, mode: 'seed', uploadLimit: 50_000 });
    const leech = await startSession({ meta: fx.meta, root: join(fx.work, 'out'), mode: 'download', useTrackers: false, peers: [seed.address] });
    await until(() => leech.session.peerCount === 1, 5_000, 'the seed');
    const v6 = createServer((s) => s.destroy());
    netServers.push(v6);
    await new Promise<void>((r) => v6.listen(0, '::1', r));
    const v6port = (v6.address() as { port: number }).port;
    const dialed = new Promise<void>((r) => v6.once('connection', () => r()));
    const own = leech.address.port;
    const peer = await rawPeer(fx, leech);
    const junk = ['0.0.0.0', '0.1.2.3', '224.0.0.1', '239.255.255.250', '255.255.255.255', '::', 'ff02::1', '::ffff:224.0.0.1', '::ffff:0.0.0.1'];
    sendPex(peer, [
      ...['127.0.0.1', '::ffff:127.0.0.1', '::1'].map((host) => ({ host, port: own, flags: 0 })),
      ...junk.map((host) => ({ host, port: 9, flags: 0 })),
      { host: '127.0.0.1', port: 0, flags: 0 },
      { host: '::1', port: v6port, flags: 0 },
    ]);
    await Promise.race([dialed, delay(3_000).then(() => Promise.reject(new Error('[::1] was not dialed')))]);
    expect(leech.session.pool.size).toBe(2); // the seed and [::1]
    expect(known(leech, '::1', v6port)).toBe(true);
    expect(known(leech, '127.0.0.1', own) || known(leech, '::1', own)).toBe(false);
    await expectKept(peer, 200);
  });

  it('garbage flags (wrong length, every bit set) do not stop the peers being taken', async () => {
    const fx = await fixture();
    const seed = await startSession({ meta: fx.meta, root: fx.seedRoot, mode: 'seed' });
    const peer = await rawPeer(fx, seed);
    const entries = Buffer.concat(fakes(3).map((p) => Buffer.from([127, 0, 2, Number(p.host.split('.')[3]), 0, 9])));
    peer.send({ type: 'extended', id: OUR_UT_PEX_ID, payload: encode({ added: entries, 'added.f': Buffer.from([0xff]), 'added6.f': Buffer.alloc(7, 0xff), dropped: Buffer.alloc(5) }) });
    await until(() => seed.session.pool.size === 3, 2_000, 'three peers');
    const again = await rawPeer(fx, seed);
    sendPex(again, fakes(2, 10).map((p) => ({ ...p, flags: 0xff })));
    await until(() => seed.session.pool.size === 5, 2_000, 'two more');
    await expectKept(peer, 100);
    await expectKept(again, 100);
  });

  it('a dropped list naming the seed tt downloads from changes nothing: still connected, the download completes', async () => {
    const fx = await fixture(1_000_000);
    const seed = await startSession({ meta: fx.meta, root: fx.seedRoot, mode: 'seed', uploadLimit: 300_000 });
    const out = join(fx.work, 'out');
    const leech = await startSession({ meta: fx.meta, root: out, mode: 'download', useTrackers: false, peers: [seed.address] });
    await until(() => leech.session.peerCount === 1, 5_000, 'the seed');
    const closed: string[] = [];
    leech.session.on('peer-closed', (key) => closed.push(key));
    const peer = await rawPeer(fx, leech);
    sendPex(peer, [], [seed.address, { host: '127.0.0.1', port: leech.address.port }]);
    await expectKept(peer, 500); // the download takes ~2 s: both are still there well before it ends
    expect(known(leech, '127.0.0.1', seed.address.port)).toBe(true);
    expect(leech.session.peerCount).toBe(2);
    expect(closed).toEqual([]);
    await whenComplete(leech.session, 15_000);
    await expectSameData(fx, out);
  });
});

describe('hostile PEX: when and under which id', () => {
  it('ut_pex before any extended handshake, even from a peer without the BEP 10 bit, is read like any other', async () => {
    // harmless (the same bounds apply) and what libtorrent does; pinned so a change is deliberate
    const fx = await fixture();
    const seed = await startSession({ meta: fx.meta, root: fx.seedRoot, mode: 'seed' });
    const early = await rawPeer(fx, seed, undefined);
    sendPex(early, fakes(1, 0));
    const plain = await rawPeer(fx, seed, undefined, false);
    sendPex(plain, fakes(1, 1));
    await until(() => seed.session.pool.size === 2, 2_000, 'both peers');
    await expectKept(early, 100);
    await expectKept(plain, 100);
  });

  it('id collisions: ut_pex 0 gets no PEX, ut_pex = ut_metadata gets it under that id, PEX bytes under our ut_metadata id are a bad ut_metadata message', async () => {
    const fx = await fixture();
    const seed = await startSession({ meta: fx.meta, root: fx.seedRoot, mode: 'seed', uploadLimit: 50_000 });
    const leech = await startSession({ meta: fx.meta, root: join(fx.work, 'out'), mode: 'download', useTrackers: false, peers: [seed.address] });
    await until(() => leech.session.peerCount === 1, 5_000, 'the seed');
    const off = await rawPeer(fx, leech, { [UT_PEX]: 0, [UT_METADATA]: 3 });
    const same = await rawPeer(fx, leech, { [UT_PEX]: 3, [UT_METADATA]: 3 });
    const msg = (await same.waitFor((m) => m.type === 'extended' && m.id === 3, 5_000)) as Extended;
    expect(parsePex(msg.payload).added.map((p) => p.port)).toContain(seed.address.port);
    await delay(1_500); // tt's tick has passed again: still nothing for `off`
    expect(off.received.filter((m) => m.type === 'extended' && m.id !== 0)).toEqual([]);
    sendPex(off, fakes(1), [], OUR_UT_METADATA_ID);
    await expectDropped(off);
    expect(known(leech, '127.0.2.0', 9)).toBe(false);
    await expectKept(same, 100);
  });

  it('exactly 64 KiB is read (200 peers taken); one byte more closes the connection', async () => {
    const fx = await fixture();
    const seed = await startSession({ meta: fx.meta, root: fx.seedRoot, mode: 'seed' });
    const added = Buffer.concat(fakes(300).map((p) => Buffer.from([127, 0, ...p.host.split('.').slice(2).map(Number), 0, 9])));
    const sized = (size: number): Buffer => {
      for (let pad = size - added.length - 40; ; ) {
        const m = encode({ added, dropped: Buffer.alloc(0), x: Buffer.alloc(pad) });
        if (m.length === size) return m;
        pad += size - m.length;
      }
    };
    const ok = await rawPeer(fx, seed);
    ok.send({ type: 'extended', id: OUR_UT_PEX_ID, payload: sized(MAX_PEX_BYTES) });
    await until(() => seed.session.pool.size === 200, 2_000, '200 peers');
    await expectKept(ok, 100);
    const big = await rawPeer(fx, seed);
    big.send({ type: 'extended', id: OUR_UT_PEX_ID, payload: sized(MAX_PEX_BYTES + 1) });
    await expectDropped(big);
    expect(seed.session.pool.size).toBe(200);
  });
});

describe('hostile PEX: floods', () => {
  it('10,000 peers from 50 connections: each adds at most 200, the pool holds 2000, the seed keeps serving', async () => {
    const fx = await fixture(2_000_000);
    const seed = await startSession({ meta: fx.meta, root: fx.seedRoot, mode: 'seed', maxPeers: 60, maxPeersPerIp: 60 }); // the 50 connections are all 127.0.0.1
    const events: { added: number; fresh: number }[] = [];
    seed.session.on('pex', (_peer, added, fresh) => events.push({ added, fresh }));
    const peers: RawPeer[] = [];
    for (let c = 0; c < 50; c++) {
      const peer = await rawPeer(fx, seed);
      sendPex(peer, fakes(200, c * 200)); // 50 x 200 = 10,000 distinct addresses
      sendPex(peer, fakes(200, (c * 200 + 5_000) % 10_000)); // too soon: ignored
      peers.push(peer);
    }
    await until(() => seed.session.pool.size === MAX_KNOWN_PEERS, 5_000, 'a full pool');
    await delay(300);
    expect(seed.session.pool.size).toBe(MAX_KNOWN_PEERS);
    expect(peers.filter((p) => p.isClosed())).toEqual([]);
    expect(events).toHaveLength(50); // the second message of each came too soon
    expect(events.every((e) => e.added === 200 && e.fresh <= MAX_PEX_LEARNED)).toBe(true);
    const out = join(fx.work, 'out');
    const honest = await startSession({ meta: fx.meta, root: out, mode: 'download', useTrackers: false, peers: [seed.address] });
    await whenComplete(honest.session, 20_000);
    await expectSameData(fx, out);
  });

  // the per-connection cap holds per connection: a peer that reconnects fills the pool with made-up
  // addresses; what it must not do is push out what the user gave (--peer, here in backoff after a refused dial)
  it("a peer reconnecting 10 times with 200 made-up peers each does not push the user's --peer out of the pool", async () => {
    const fx = await fixture();
    const reserve = createServer();
    await new Promise<void>((r) => reserve.listen(0, '127.0.0.1', r));
    const port = (reserve.address() as { port: number }).port;
    await new Promise((r) => reserve.close(r)); // the user's peer is not up yet: refused, retried after 5 s
    const leech = await startSession({ meta: fx.meta, root: join(fx.work, 'out'), mode: 'download', useTrackers: false, peers: [{ host: '127.0.0.1', port }] });
    await until(() => leech.session.pool.get(`127.0.0.1:${port}`)?.failures === 1, 3_000, 'the first refused dial');
    for (let c = 0; c < 10; c++) {
      const peer = await rawPeer(fx, leech);
      sendPex(peer, fakes(MAX_PEX_LEARNED, c * MAX_PEX_LEARNED));
      await until(() => leech.session.pool.size >= Math.min(MAX_KNOWN_PEERS, 1 + (c + 1) * MAX_PEX_LEARNED) - 1, 2_000, 'the batch');
      peer.close();
    }
    expect(leech.session.pool.size).toBeGreaterThanOrEqual(MAX_KNOWN_PEERS - 1);
    expect(known(leech, '127.0.0.1', port)).toBe(true);
  });

  it('a private torrent sends no PEX, even to a peer offering ut_pex while tt has another peer to name', async () => {
    const fx = await fixture();
    const meta = { ...fx.meta, private: true };
    const seed = await startSession({ meta, root: fx.seedRoot, mode: 'seed', uploadLimit: 50_000 });
    const leech = await startSession({ meta, root: join(fx.work, 'out'), mode: 'download', useTrackers: false, peers: [seed.address] });
    await until(() => leech.session.peerCount === 1, 5_000, 'the seed');
    const peer = await rawPeer({ ...fx, meta }, leech);
    await delay(2_500); // two ticks: a public torrent sends its first PEX on the first
    expect(peer.received.filter((m) => m.type === 'extended' && m.id === RAW_UT_PEX_ID)).toEqual([]);
  });
});
