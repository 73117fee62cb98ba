/**
 * A banned peer coming back (HARDENING.md "peer wire"): a peer banned for
 * corrupt data that dials tt again from a new ephemeral port must not be
 * taken back. Caught by its IP and peer id at the handshake (before tt
 * answers it), by its listening address (BEP 10 `p`) when it changes its
 * peer id on every connection as libtorrent does (before it is asked for
 * anything), and when it changes both, by its IP's ban record: after two
 * bans there, a newcomer connecting from that IP is let in once per window
 * (10 s, doubling) and asked for one piece at a time, so each comeback costs
 * at most one piece. Refused connections count neither as a peer connected
 * (--peer-timeout) nor as data (--stall-timeout), and neither does a banned
 * peer's data. Honest peers on the same IP (everything here is 127.0.0.1)
 * still complete the download, a newcomer among them too.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { Bitfield } from '../../../src/core/bitfield.js';
import type { TtError } from '../../../src/core/errors.js';
import type { Metainfo } from '../../../src/metainfo/metainfo.js';
import { SUSPECT_WINDOW_MS } from '../../../src/session/peer-pool.js';
import { defaultReserved } from '../../../src/wire/handshake.js';
import { encodeExtendedHandshake } from '../../../src/wire/extension.js';
import { RawPeer } from '../../helpers/raw-peer.js';
import { expectSameData, startSession, stopAll, whenComplete } from '../../helpers/swarm.js';
import { delay, startHonestLeecher, startSeed } from './harness.js';

afterEach(stopAll);

function hostileId(): Buffer {
  return Buffer.concat([Buffer.from('-HX0001-', 'latin1'), randomBytes(12)]);
}

interface Visit {
  /** tt answered our handshake (it was not refused at once). */
  answered: boolean;
  /** Pieces tt asked us for blocks of (each answered with random bytes). */
  requested: Set<number>;
  blocks: number;
}

/**
 * A hostile seeder dialing tt at `port`: handshakes as `peerId` (extension
 * and fast bits set; with `listenPort`, a BEP 10 handshake naming it), claims
 * every piece, unchokes and answers every request with random bytes, until
 * tt closes the connection or `maxMs` passes.
 */
async function corruptVisit(meta: Metainfo, port: number, opts: { peerId: Buffer; listenPort?: number; maxMs?: number }): Promise<Visit> {
  const visit: Visit = { answered: false, requested: new Set(), blocks: 0 };
  const peer = await RawPeer.connect('127.0.0.1', port);
  try {
    peer.sendHandshake(meta.infoHash, opts.peerId, defaultReserved());
    try {
      await peer.readHandshake(2_000);
    } catch {
      return visit; // closed before any answer: refused at the handshake
    }
    visit.answered = true;
    if (opts.listenPort !== undefined) peer.send({ type: 'extended', id: 0, payload: encodeExtendedHandshake({ m: {}, p: opts.listenPort }) });
    peer.send({ type: 'bitfield', bitfield: Bitfield.full(meta.pieceCount) });
    peer.send({ type: 'unchoke' });
    const end = Date.now() + (opts.maxMs ?? 3_000);
    while (!peer.isClosed() && Date.now() < end) {
      const m = await peer.nextMessage(Math.max(1, end - Date.now())).catch(() => undefined);
      if (!m) break;
      if (m.type !== 'request') continue;
      visit.requested.add(m.index);
      visit.blocks++;
      peer.send({ type: 'piece', index: m.index, begin: m.begin, block: randomBytes(m.length) });
    }
    return visit;
  } finally {
    peer.close();
  }
}

/** The session's `error` event within `ms`, or undefined. */
function errorWithin(session: { once(e: 'error', f: (err: TtError) => void): unknown }, ms: number): Promise<TtError | undefined> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(undefined), ms);
    session.once('error', (err) => {
      clearTimeout(timer);
      resolve(err);
    });
  });
}

describe('a banned peer dialing back from new ports', () => {
  it('under the same peer id: refused at its handshake, never answered nor asked for anything; the download completes from the honest seed', async () => {
    const { fx, seed } = await startSeed({ uploadLimit: 512 * 1024 });
    const { leech, done } = await startHonestLeecher(fx, [seed.address]);
    const banned: string[] = [];
    const refused: string[] = [];
    leech.session.on('peer-banned', (peer) => banned.push(peer));
    leech.session.on('peer-refused', (_peer, reason) => refused.push(reason));
    const peerId = hostileId();
    const first = await corruptVisit(fx.meta, leech.address.port, { peerId });
    expect(first.answered).toBe(true);
    expect(first.blocks).toBeGreaterThan(0);
    expect(banned).toHaveLength(1);
    for (let i = 0; i < 8; i++) {
      const again = await corruptVisit(fx.meta, leech.address.port, { peerId });
      expect(again).toEqual({ answered: false, requested: new Set(), blocks: 0 });
    }
    expect(refused).toHaveLength(8);
    expect(refused.every((r) => r.startsWith('banned: '))).toBe(true);
    await done;
    expect(banned).toHaveLength(1);
    expect(leech.session.stats().bannedPeers).toBe(1);
  }, 30_000);

  it('under a new peer id each time but the same listening port (BEP 10 `p`, as libtorrent): turned away before it is asked for a block', async () => {
    const { fx, seed } = await startSeed({ uploadLimit: 512 * 1024 });
    const { leech, done } = await startHonestLeecher(fx, [seed.address]);
    const closed: string[] = [];
    leech.session.on('peer-closed', (_peer, reason) => closed.push(reason));
    const listenPort = 20_000 + Math.floor(Math.random() * 20_000);
    const first = await corruptVisit(fx.meta, leech.address.port, { peerId: hostileId(), listenPort });
    expect(first.blocks).toBeGreaterThan(0);
    expect(leech.session.stats().bannedPeers).toBe(1);
    for (let i = 0; i < 6; i++) {
      const again = await corruptVisit(fx.meta, leech.address.port, { peerId: hostileId(), listenPort });
      expect(again.blocks).toBe(0);
    }
    expect(closed.filter((r) => r.startsWith('refused: banned: ') && r.endsWith(`(it listens at 127.0.0.1:${listenPort})`))).toHaveLength(6);
    // caught for nothing: not counted as new bans, and the IP is not made suspect by them
    expect(leech.session.stats().bannedPeers).toBe(1);
    expect(leech.session.pool.bansAt('127.0.0.1')).toBe(1);
    await done;
  }, 30_000);

  it('under a new peer id and no listening port each time: after two bans, one comeback per window, each asked for one piece; an honest newcomer on that IP still gets in and completes the download', async () => {
    // a slow honest seed: the download outlasts the attack
    const { fx, seed } = await startSeed({ uploadLimit: 48 * 1024 });
    const leech = await startSession({ meta: fx.meta, root: join(fx.work, 'victim'), mode: 'download', peers: [seed.address] });
    const refused: string[] = [];
    leech.session.on('peer-refused', (_peer, reason) => refused.push(reason));
    const visits: Visit[] = [];
    const attackMs = SUSPECT_WINDOW_MS + 2_500;
    const end = Date.now() + attackMs;
    while (Date.now() < end) {
      visits.push(await corruptVisit(fx.meta, leech.address.port, { peerId: hostileId(), maxMs: 1_500 }));
      await delay(100);
    }
    const answered = visits.filter((v) => v.answered);
    // two bans before the IP is suspect, then at most one comeback per window (the attack lasted one);
    // a comeback's blocks may share a piece with the honest seed's, and its ban wait for that piece to verify
    expect(answered.length).toBeGreaterThanOrEqual(3);
    expect(answered.length).toBeLessThanOrEqual(4);
    expect(leech.session.stats().bannedPeers).toBeGreaterThanOrEqual(2);
    expect(leech.session.stats().bannedPeers).toBeLessThanOrEqual(answered.length);
    // once suspect, each comeback is asked for blocks of one piece only
    for (const v of answered.slice(2)) expect(v.requested.size).toBe(1);
    expect(visits.length - answered.length).toBeGreaterThan(10);
    expect(refused.every((r) => /^2 peers at 127\.0\.0\.1 were banned|^[34] peers at 127\.0\.0\.1 were banned/.test(r))).toBe(true);
    expect(leech.session.done).toBe(false); // the attack ran while the download did

    // an honest seed on the same (suspect) IP that tt has never seen: dialed, let in, and the download completes
    const newcomer = await startSession({ meta: fx.meta, root: fx.seedRoot, mode: 'seed' });
    leech.session.addPeers([newcomer.address]);
    await whenComplete(leech.session, 20_000);
    await expectSameData(fx, join(fx.work, 'victim'));
  }, 60_000);
});

describe('refused connections and banned data do not keep a download alive', () => {
  it('--peer-timeout: a banned peer reconnecting over and over is not "a peer connected"', async () => {
    const { fx } = await startSeed();
    const nobody = { host: '127.0.0.1', port: 1 }; // a peer source that never answers
    const leech = await startSession({ meta: fx.meta, root: join(fx.work, 'victim'), mode: 'download', peers: [nobody], peerTimeoutMs: 3_000 });
    const peerId = hostileId();
    const first = await corruptVisit(fx.meta, leech.address.port, { peerId, maxMs: 1_000 });
    expect(first.blocks).toBeGreaterThan(0);
    const t0 = Date.now();
    const error = errorWithin(leech.session, 8_000);
    let stop = false;
    const hammer = (async () => {
      while (!stop) {
        await corruptVisit(fx.meta, leech.address.port, { peerId, maxMs: 500 }).catch(() => undefined);
        await delay(50);
      }
    })();
    const err = await error;
    stop = true;
    await hammer;
    expect(err?.code).toBe('NO_PEERS');
    expect(err?.message).toMatch(/no peer connected for 3 s/);
    expect(Date.now() - t0).toBeLessThan(4_500);
  }, 30_000);

  it('--stall-timeout: corrupt data from peers that were banned for it is not data', async () => {
    const { fx } = await startSeed();
    const nobody = { host: '127.0.0.1', port: 1 };
    const leech = await startSession({ meta: fx.meta, root: join(fx.work, 'victim'), mode: 'download', peers: [nobody], peerTimeoutMs: 0, stallTimeoutMs: 3_000 });
    const t0 = Date.now();
    const error = errorWithin(leech.session, 8_000);
    let stop = false;
    const hammer = (async () => {
      while (!stop) {
        await corruptVisit(fx.meta, leech.address.port, { peerId: hostileId(), maxMs: 500 }).catch(() => undefined);
        await delay(50);
      }
    })();
    const err = await error;
    stop = true;
    await hammer;
    expect(err?.code).toBe('NO_PEERS');
    expect(err?.message).toMatch(/no data for 3 s/);
    expect(Date.now() - t0).toBeLessThan(4_500);
    expect(leech.session.stats().bannedPeers).toBeGreaterThanOrEqual(2);
  }, 30_000);
});
