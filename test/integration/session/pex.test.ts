/**
 * BEP 11 peer exchange over real loopback sockets: tt advertises ut_pex
 * (never for a private torrent, nor with pex off), tells a peer who else it
 * is connected to (with BEP 11 flags), dials the peers a PEX message names,
 * and drops a peer that floods PEX or sends garbage. Three tt sessions: a
 * leecher that only knows another leecher finds the seed through PEX.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { join } from 'node:path';
import { encodeExtendedHandshake, parseExtendedHandshake } from '../../../src/wire/extension.js';
import type { Message } from '../../../src/wire/messages.js';
import { MAX_PEX_LEARNED } from '../../../src/session/pex.js';
import { OUR_UT_PEX_ID, PEX_REACHABLE, PEX_SEED, UT_PEX, encodePex, parsePex } from '../../../src/wire/pex.js';
import { RawPeer, type RawPeerServer } from '../../helpers/raw-peer.js';
import { expectSameData, makeFixture, startSession, stopAll, trackDir, whenComplete, type Fixture, type Running } from '../../helpers/swarm.js';
import { expectDropped, expectKept, hostileLeecher } from '../hostile/harness.js';
import { until } from '../../helpers/until.js';

const EXTENSIONS = Buffer.from([0, 0, 0, 0, 0, 0x10, 0, 0]);
/** The id our raw peers ask tt to use for ut_pex. */
const RAW_UT_PEX_ID = 9;

const servers: RawPeerServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
  await stopAll();
});

type Extended = Extract<Message, { type: 'extended' }>;
const isExtended = (id: number) => (m: Message): m is Extended => m.type === 'extended' && m.id === id;

async function fixture(): Promise<Fixture> {
  const fx = await makeFixture({ files: [{ path: ['data.bin'], size: 600_000 }], pieceLength: 32_768 });
  trackDir(fx.work);
  return fx;
}

/** A raw peer that completed the BEP 10 handshake with `tt`, offering ut_pex; with tt's extended handshake. */
async function pexPeer(fx: Fixture, tt: Running, offerPex = true): Promise<{ peer: RawPeer; theirs: ReturnType<typeof parseExtendedHandshake> }> {
  const peer = await hostileLeecher(fx.meta, tt, undefined, EXTENSIONS);
  peer.send({ type: 'extended', id: 0, payload: encodeExtendedHandshake({ m: offerPex ? { [UT_PEX]: RAW_UT_PEX_ID } : {}, p: 6881 }) });
  const hs = await peer.waitFor(isExtended(0));
  return { peer, theirs: parseExtendedHandshake((hs as Extended).payload) };
}

async function listener(): Promise<RawPeerServer> {
  const s = await RawPeer.listen();
  servers.push(s);
  return s;
}

describe('PEX (BEP 11)', () => {
  it('a leecher that knows only another leecher finds the seed through PEX and completes', async () => {
    const fx = await fixture();
    // a slow seed: a is still downloading from it (two seeds would part at once) when b arrives
    const seed = await startSession({ meta: fx.meta, root: fx.seedRoot, mode: 'seed', uploadLimit: 200_000 });
    const a = await startSession({ meta: fx.meta, root: join(fx.work, 'a'), mode: 'download', useTrackers: false, peers: [seed.address] });
    await until(() => a.session.peerCount === 1, 5_000);
    const b = await startSession({ meta: fx.meta, root: join(fx.work, 'b'), mode: 'download', useTrackers: false, peers: [a.address] }, (session) => {
      session.on('pex', (peer, added, fresh) => pexEvents.push({ peer, added, fresh }));
      session.on('peer-connected', (peer) => connected.push(peer));
    });
    const pexEvents: { peer: string; added: number; fresh: number }[] = [];
    const connected: string[] = [];
    await whenComplete(b.session, 15_000);
    await expectSameData(fx, join(fx.work, 'b'));
    // a named the seed (the address a dialed), b had not heard of it, and b connected to it
    for (let i = 0; i < 100 && !connected.includes(`127.0.0.1:${seed.address.port}`); i++) await new Promise((r) => setTimeout(r, 50));
    expect(pexEvents.some((e) => e.peer === `127.0.0.1:${a.address.port}` && e.fresh >= 1)).toBe(true);
    expect(connected).toContain(`127.0.0.1:${seed.address.port}`);
  });

  it('tells a peer who else it is connected to, with flags: reachable (dialed) and seed', async () => {
    const fx = await fixture();
    const seed = await startSession({ meta: fx.meta, root: fx.seedRoot, mode: 'seed', uploadLimit: 100_000 });
    const leech = await startSession({ meta: fx.meta, root: join(fx.work, 'a'), mode: 'download', useTrackers: false, peers: [seed.address] });
    await until(() => leech.session.peerCount === 1, 5_000);
    const { peer, theirs } = await pexPeer(fx, leech);
    expect(theirs.m.get(UT_PEX)).toBe(OUR_UT_PEX_ID);
    const msg = await peer.waitFor(isExtended(RAW_UT_PEX_ID), 5_000);
    const pex = parsePex((msg as Extended).payload);
    // the seed, at the address tt dialed (not our raw peer itself: it is the recipient)
    expect(pex.added).toEqual([{ host: '127.0.0.1', port: seed.address.port, flags: PEX_REACHABLE | PEX_SEED }]);
    expect(pex.dropped).toEqual([]);
  });

  it('dials the peers a PEX message names', async () => {
    const fx = await fixture();
    const seed = await startSession({ meta: fx.meta, root: fx.seedRoot, mode: 'seed' });
    const target = await listener();
    const { peer } = await pexPeer(fx, seed);
    peer.send({ type: 'extended', id: OUR_UT_PEX_ID, payload: encodePex({ added: [{ host: '127.0.0.1', port: target.port, flags: 0 }], dropped: [] }) });
    const dialed = await target.accept(8_000); // a seed waits a little before dialing peers it did not hear from itself
    dialed.sendHandshake(fx.meta.infoHash);
    expect((await dialed.readHandshake()).infoHash.equals(fx.meta.infoHash)).toBe(true);
  });

  it('a private torrent never advertises ut_pex and ignores PEX messages (BEP 27)', async () => {
    const fx = await fixture();
    const meta = { ...fx.meta, private: true };
    const seed = await startSession({ meta, root: fx.seedRoot, mode: 'download', useTrackers: false });
    const target = await listener();
    const { peer, theirs } = await pexPeer({ ...fx, meta }, seed);
    expect(theirs.m.has(UT_PEX)).toBe(false);
    peer.send({ type: 'extended', id: OUR_UT_PEX_ID, payload: encodePex({ added: [{ host: '127.0.0.1', port: target.port, flags: 0 }], dropped: [] }) });
    await expect(target.accept(2_500)).rejects.toThrow();
    expect(seed.session.pool.get(`127.0.0.1:${target.port}`)).toBeUndefined();
  });

  it('pex: false: no ut_pex in the handshake, PEX messages ignored', async () => {
    const fx = await fixture();
    const seed = await startSession({ meta: fx.meta, root: fx.seedRoot, mode: 'seed', pex: false });
    const { peer, theirs } = await pexPeer(fx, seed);
    expect(theirs.m.has(UT_PEX)).toBe(false);
    peer.send({ type: 'extended', id: OUR_UT_PEX_ID, payload: encodePex({ added: [{ host: '127.0.0.1', port: 1, flags: 0 }], dropped: [] }) });
    await expectKept(peer);
    expect(seed.session.pool.get('127.0.0.1:1')).toBeUndefined();
  });

  it('a peer that sends PEX again and again is ignored, then dropped', async () => {
    const fx = await fixture();
    const seed = await startSession({ meta: fx.meta, root: fx.seedRoot, mode: 'seed' });
    const { peer } = await pexPeer(fx, seed);
    // loopback addresses no test listens on (tests bind 127.0.0.1): tt's dials are refused at once
    const payload = (i: number): Buffer => encodePex({ added: [{ host: '127.0.0.2', port: 1000 + i, flags: 0 }], dropped: [] });
    peer.send({ type: 'extended', id: OUR_UT_PEX_ID, payload: payload(0) });
    peer.send({ type: 'extended', id: OUR_UT_PEX_ID, payload: payload(1) });
    await expectKept(peer, 300);
    expect(seed.session.pool.get('127.0.0.2:1001')).toBeUndefined(); // the early one was ignored
    expect(seed.session.pool.get('127.0.0.2:1000')).toBeDefined();
    for (let i = 2; i < 10; i++) peer.send({ type: 'extended', id: OUR_UT_PEX_ID, payload: payload(i) });
    await expectDropped(peer);
  });

  it(`one connection adds at most ${MAX_PEX_LEARNED} peers over its life, however many messages it sends`, async () => {
    const fx = await fixture();
    const seed = await startSession({ meta: fx.meta, root: fx.seedRoot, mode: 'seed' });
    const { peer } = await pexPeer(fx, seed);
    const batch = (from: number): Buffer =>
      encodePex({ added: Array.from({ length: 150 }, (_, i) => ({ host: `127.0.${1 + ((from + i) >> 8)}.${(from + i) & 255}`, port: 9, flags: 0 })), dropped: [] });
    const named = (): number => [...Array(400).keys()].filter((i) => seed.session.pool.get(`127.0.${1 + (i >> 8)}.${i & 255}:9`)).length;
    peer.send({ type: 'extended', id: OUR_UT_PEX_ID, payload: batch(0) });
    await until(() => named() === 150, 3_000);
    // a minute later (as far as the session can tell), 150 more: only the rest of the allowance is taken
    const realNow = Date.now.bind(Date);
    const later = vi.spyOn(Date, 'now').mockImplementation(() => realNow() + 61_000);
    try {
      peer.send({ type: 'extended', id: OUR_UT_PEX_ID, payload: batch(150) });
      await expectKept(peer, 300);
    } finally {
      later.mockRestore();
    }
    expect(named()).toBe(MAX_PEX_LEARNED);
  });

  it('a PEX message that is not bencode closes the connection', async () => {
    const fx = await fixture();
    const seed = await startSession({ meta: fx.meta, root: fx.seedRoot, mode: 'seed' });
    const { peer } = await pexPeer(fx, seed);
    peer.send({ type: 'extended', id: OUR_UT_PEX_ID, payload: Buffer.from('l-3:e') });
    await expectDropped(peer);
  });
});
