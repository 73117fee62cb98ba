/**
 * Peers that say nothing, or say it one byte at a time, before the BEP 3
 * handshake is done (HARDENING.md: handshake timeout 10 s). These wait for
 * tt's real timeout constants, so they live apart from the fast cases.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { connect as netConnect, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { HANDSHAKE_TIMEOUT_MS } from '../../../src/peer/connection.js';
import { INCOMING_HANDSHAKE_TIMEOUT_MS } from '../../../src/session/listener.js';
import { encodeHandshake } from '../../../src/wire/handshake.js';
import { RawPeer } from '../../helpers/raw-peer.js';
import { stopAll } from '../../helpers/swarm.js';
import { delay, startHonestLeecher, startSeed } from './harness.js';

afterEach(stopAll);

/** PeerConnection checks its handshake deadline on a 5 s timer. */
const CONNECTION_TIMER_TICK_MS = 5_000;
const SLACK_MS = 1_500;

/** A TCP connection that sends nothing; resolves once connected. */
function silentSocket(port: number): Promise<Socket | undefined> {
  return new Promise((resolve) => {
    const s = netConnect({ host: '127.0.0.1', port });
    s.on('error', () => undefined);
    s.once('connect', () => resolve(s));
    s.once('close', () => resolve(undefined));
  });
}

function closedWithin(s: Socket, ms: number): Promise<number> {
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    if (s.destroyed || s.closed) resolve(0);
    const timer = setTimeout(() => reject(new Error(`still open after ${ms} ms`)), ms);
    s.once('close', () => {
      clearTimeout(timer);
      resolve(Date.now() - t0);
    });
  });
}

/** Sends `bytes` one byte per `everyMs` until done or the peer closes. */
async function trickle(peer: RawPeer, bytes: Buffer, everyMs: number): Promise<number> {
  let sent = 0;
  for (; sent < bytes.length && !peer.isClosed(); sent++) {
    peer.sendRaw(bytes.subarray(sent, sent + 1));
    await delay(everyMs);
  }
  return sent;
}

describe('handshake timeouts', () => {
  it('silent sockets and a 1-byte-per-second handshake are dropped by the handshake timeout, incoming and outgoing', async () => {
    const { fx, seed } = await startSeed();

    // incoming: 40 silent sockets and one trickling its handshake into the seed's listener
    const silent = (await Promise.all(Array.from({ length: 40 }, () => silentSocket(seed.address.port)))).filter((s): s is Socket => !!s);
    expect(silent.length).toBe(40);
    const trickler = await RawPeer.connect('127.0.0.1', seed.address.port);
    const trickled = trickle(trickler, encodeHandshake(fx.meta.infoHash, randomBytes(20)), 1_000);

    // outgoing: a downloading tt dials a peer that trickles its handshake back
    const outgoing = await RawPeer.listen({ timeoutMs: 10_000 });
    const download = await startHonestLeecher(fx, [{ host: '127.0.0.1', port: outgoing.port }, seed.address]);
    const dialled = await outgoing.accept(5_000);
    await dialled.readHandshake();
    const t0 = Date.now();
    const outgoingTrickle = trickle(dialled, encodeHandshake(fx.meta.infoHash, randomBytes(20)), 1_000);

    const incomingBound = INCOMING_HANDSHAKE_TIMEOUT_MS + SLACK_MS;
    await Promise.all(silent.map((s) => closedWithin(s, incomingBound)));
    await trickler.waitClosed(SLACK_MS);
    expect(await trickled).toBeLessThan(15); // cut off at ~10 of its 68 bytes
    await download.done; // the honest leecher was never held up by them
    await dialled.waitClosed(HANDSHAKE_TIMEOUT_MS + CONNECTION_TIMER_TICK_MS + SLACK_MS - (Date.now() - t0));
    expect(await outgoingTrickle).toBeLessThan(HANDSHAKE_TIMEOUT_MS / 1000 + CONNECTION_TIMER_TICK_MS / 1000 + 2);
    await outgoing.close();
  }, 30_000);

  it('300 silent sockets: an honest leecher is still let in promptly (not after the 10 s handshake timeout)', async () => {
    const { fx, seed } = await startSeed();
    const sockets = (await Promise.all(Array.from({ length: 300 }, () => silentSocket(seed.address.port)))).filter((s): s is Socket => !!s);
    try {
      // the listener caps pending handshakes at 64 and refuses the rest; the honest peer must not be
      // refused for as long as an attacker keeps 64 silent sockets open (it can reopen them every 10 s)
      const honest = await startHonestLeecher(fx, [seed.address], {}, 5_000);
      await honest.done;
    } finally {
      for (const s of sockets) s.destroy();
    }
  }, 20_000);

  it('stopping a seed does not wait for a silent socket’s handshake timeout', async () => {
    const { seed } = await startSeed();
    const socket = await silentSocket(seed.address.port);
    expect(socket).toBeDefined();
    await delay(100);
    const t0 = Date.now();
    try {
      await seed.session.stop();
      const closing = seed.listener.close();
      // Listener.close() resolves only once every socket is gone: the pending one must be dropped now
      await closedWithin(socket!, 2_000);
      await closing;
      expect(Date.now() - t0).toBeLessThan(3_000);
    } finally {
      socket!.destroy();
    }
  }, 20_000);
});
