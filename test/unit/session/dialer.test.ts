/**
 * session/dialer.ts over loopback sockets with a fake host and a real
 * PeerPool: room for dials is bounded by the peer cap and MAX_HALF_OPEN; a
 * plain dial hands its socket over with no cipher; a refused one is marked
 * failed and asks for more candidates once per turn, however many fail in
 * it; the per-IP limit is checked again at connect, counting open
 * connections and dials; a peer marked `encrypt`, or every peer under
 * requireEncryption, gets an MSE handshake first (RC4 and plaintext offered,
 * or RC4 only), and a failed one is a dial failure; nothing is handed over
 * once the host has stopped; only a plain handshake we dialed and the peer
 * dropped unanswered is redialed encrypted, once; close() ends the dials in
 * progress.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { CRYPTO_PLAINTEXT, CRYPTO_RC4, type StreamCipher } from '../../../src/wire/mse.js';
import { Dialer, MAX_HALF_OPEN, dialRoom, droppedPlainHandshake, type DialerHost } from '../../../src/session/dialer.js';
import { PeerPool } from '../../../src/session/peer-pool.js';
import { mseResponder, type MseResponderServer } from '../../helpers/mse-responder.js';
import { until } from '../../helpers/until.js';

const INFO_HASH = Buffer.alloc(20, 7);
const servers: Server[] = [];
const accepted: Socket[] = [];
const responders: MseResponderServer[] = [];

afterEach(async () => {
  for (const s of accepted.splice(0)) s.destroy();
  await Promise.all(servers.splice(0).map((s) => new Promise((resolve) => s.close(resolve))));
  await Promise.all(responders.splice(0).map((r) => r.close()));
});

/** A TCP server on 127.0.0.1 that accepts and holds connections. */
async function server(): Promise<{ port: number; sockets: Socket[] }> {
  const sockets: Socket[] = [];
  const s = createServer((socket) => {
    sockets.push(socket);
    accepted.push(socket);
  });
  servers.push(s);
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  return { port: (s.address() as { port: number }).port, sockets };
}

/** A port on 127.0.0.1 nobody listens on (it was bound a moment ago). */
async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const { port } = s.address() as { port: number };
  await new Promise((resolve) => s.close(resolve));
  return port;
}

async function responder(script: Parameters<typeof mseResponder>[1] = {}): Promise<MseResponderServer> {
  const r = await mseResponder(INFO_HASH, script);
  responders.push(r);
  return r;
}

interface Harness {
  dialer: Dialer;
  pool: PeerPool;
  connected: { key: string; cipher: StreamCipher | undefined }[];
  failed: [key: string, reason: string][];
  connectMore: number;
  stopped: boolean;
  /** Dial 127.0.0.1:port as a pool entry. */
  dial(port: number): string;
}

function harness(over: Partial<Pick<DialerHost, 'requireEncryption' | 'maxPeersPerIp' | 'openIps'>> = {}): Harness {
  const pool = new PeerPool();
  const h: Harness = {
    dialer: undefined as unknown as Dialer,
    pool,
    connected: [],
    failed: [],
    connectMore: 0,
    stopped: false,
    dial(port) {
      pool.add([{ host: '127.0.0.1', port }]);
      const key = `127.0.0.1:${port}`;
      h.dialer.dial('127.0.0.1', port, key);
      return key;
    },
  };
  h.dialer = new Dialer({
    infoHash: INFO_HASH,
    requireEncryption: false,
    maxPeersPerIp: 8,
    pool,
    stopped: () => h.stopped,
    openIps: () => [],
    connected: (socket, _host, _port, key, _sink, cipher) => {
      h.connected.push({ key, cipher });
      socket.destroy();
    },
    dialFailed: (key, reason) => void h.failed.push([key, reason]),
    connectMore: () => void h.connectMore++,
    guard: (fn) => fn(),
    ...over,
  });
  return h;
}

describe('dialRoom', () => {
  it('is what is left of the peer cap and of MAX_HALF_OPEN, whichever is less', () => {
    expect(dialRoom(50, 10, 0)).toBe(MAX_HALF_OPEN);
    expect(dialRoom(50, 10, 4)).toBe(MAX_HALF_OPEN - 4);
    expect(dialRoom(50, 40, 5)).toBe(5);
    expect(dialRoom(50, 0, MAX_HALF_OPEN)).toBe(0);
    expect(dialRoom(5, 5, 1)).toBeLessThanOrEqual(0);
  });
});

describe('droppedPlainHandshake', () => {
  it('is an outgoing connection closed or reset before its handshake completed', () => {
    const out = { direction: 'outgoing' as const, handshakeDone: false };
    for (const reason of ['connection closed by peer', 'connection ended by peer', 'socket error: read ECONNRESET', 'socket error: EPIPE', 'socket error: write EPIPE']) {
      expect(droppedPlainHandshake(out, reason), reason).toBe(true);
    }
    expect(droppedPlainHandshake(out, 'protocol error: bad handshake')).toBe(false);
    expect(droppedPlainHandshake(out, 'handshake timeout')).toBe(false);
    expect(droppedPlainHandshake({ direction: 'incoming', handshakeDone: false }, 'connection closed by peer')).toBe(false);
    expect(droppedPlainHandshake({ direction: 'outgoing', handshakeDone: true }, 'connection closed by peer')).toBe(false);
  });
});

describe('Dialer', () => {
  it('hands a plain connection over without a cipher; it is half-open until then', async () => {
    const { port, sockets } = await server();
    const h = harness();
    const key = h.dial(port);
    expect(h.dialer.halfOpen).toBe(1);
    expect(h.dialer.room(50, 0)).toBe(MAX_HALF_OPEN - 1);
    expect(h.pool.get(key)?.connecting).toBe(true);
    await until(() => h.connected.length === 1);
    expect(h.connected[0]).toEqual({ key, cipher: undefined });
    expect(h.dialer.halfOpen).toBe(0);
    expect(h.failed).toEqual([]);
    await until(() => sockets.length === 1);
  });

  it('a refused dial is marked failed and asks for more candidates', async () => {
    const h = harness();
    const a = h.dial(await closedPort());
    const b = h.dial(await closedPort());
    await until(() => h.failed.length === 2);
    expect(new Map(h.failed)).toEqual(new Map([[a, 'ECONNREFUSED'], [b, 'ECONNREFUSED']]));
    expect(h.pool.get(a)?.failures).toBe(1);
    expect(h.pool.get(a)?.connecting).toBe(false);
    expect(h.dialer.halfOpen).toBe(0);
    await until(() => h.connectMore > 0);
  });

  it('asks for more candidates once however many times it is told to in one turn', async () => {
    const h = harness();
    for (let i = 0; i < 5; i++) h.dialer.connectMoreSoon();
    expect(h.connectMore).toBe(0);
    await new Promise((resolve) => setImmediate(resolve));
    expect(h.connectMore).toBe(1);
  });

  it('counts its dials per IP with the open connections, and checks the limit again at connect', async () => {
    const { port } = await server();
    const open = ['127.0.0.1', '10.0.0.1'];
    const h = harness({ maxPeersPerIp: 2, openIps: () => open });
    const key = h.dial(port);
    expect(Object.fromEntries(h.dialer.connectionsByIp())).toEqual({ '127.0.0.1': 2, '10.0.0.1': 1 });
    open.push('127.0.0.1'); // another connection to that IP opened meanwhile
    await until(() => h.failed.length === 1);
    expect(h.failed[0]).toEqual([key, 'more than 2 connections to 127.0.0.1']);
    expect(h.connected).toEqual([]);
    expect(h.dialer.halfOpen).toBe(0);
    expect(Object.fromEntries(h.dialer.connectionsByIp())).toEqual({ '127.0.0.1': 2, '10.0.0.1': 1 });
  });

  it('a peer that dropped our plain handshake is dialed with MSE, offering RC4 and plaintext', async () => {
    const r = await responder();
    const h = harness();
    h.pool.add([{ host: '127.0.0.1', port: r.port }]);
    h.pool.retryEncrypted(`127.0.0.1:${r.port}`);
    h.dialer.dial('127.0.0.1', r.port, `127.0.0.1:${r.port}`);
    await until(() => h.connected.length === 1);
    expect(r.connections[0]?.provide).toBe(CRYPTO_PLAINTEXT | CRYPTO_RC4);
    expect(h.connected[0]?.cipher).toBeDefined(); // the responder selects RC4 when offered
    expect(h.dialer.halfOpen).toBe(0);
  });

  it('requireEncryption: every dial is MSE offering RC4 only', async () => {
    const r = await responder();
    const h = harness({ requireEncryption: true });
    h.dial(r.port);
    expect(h.pool.get(`127.0.0.1:${r.port}`)?.encrypt).toBe(false);
    await until(() => h.connected.length === 1);
    expect(r.connections[0]?.provide).toBe(CRYPTO_RC4);
    expect(h.connected[0]?.cipher).toBeDefined();
  });

  it('a failed MSE handshake is a dial failure', async () => {
    const r = await responder({ afterYb: 'close' });
    const h = harness({ requireEncryption: true });
    const key = h.dial(r.port);
    await until(() => h.failed.length === 1);
    expect(h.failed[0]![0]).toBe(key);
    expect(h.failed[0]![1]).toMatch(/^encrypted handshake failed: MSE: /);
    expect(h.connected).toEqual([]);
    expect(h.dialer.halfOpen).toBe(0);
    expect(h.pool.get(key)?.failures).toBe(1);
  });

  it('hands nothing over once the host has stopped', async () => {
    const { port, sockets } = await server();
    const h = harness();
    h.dial(port);
    h.stopped = true;
    await until(() => sockets.length === 1);
    await until(() => sockets[0]!.closed || sockets[0]!.readableEnded);
    expect(h.connected).toEqual([]);
    expect(h.failed).toEqual([]);
    expect(h.dialer.halfOpen).toBe(0);
  });

  it('redials with MSE, once, only a plain handshake we dialed that the peer dropped', async () => {
    const h = harness();
    h.pool.add([{ host: '10.0.0.1', port: 6881 }]);
    const key = '10.0.0.1:6881';
    h.pool.markConnected(key);
    expect(h.dialer.redialEncrypted({ direction: 'incoming', handshakeDone: false }, key, 'connection closed by peer')).toBe(false);
    expect(h.dialer.redialEncrypted({ direction: 'outgoing', handshakeDone: true }, key, 'connection closed by peer')).toBe(false);
    expect(h.pool.get(key)?.encrypt).toBe(false);
    h.stopped = true;
    expect(h.dialer.redialEncrypted({ direction: 'outgoing', handshakeDone: false }, key, 'connection closed by peer')).toBe(false);
    expect(h.pool.get(key)?.encrypt).toBe(false);
    h.stopped = false;
    expect(h.dialer.redialEncrypted({ direction: 'outgoing', handshakeDone: false }, key, 'socket error: read ECONNRESET')).toBe(true);
    expect(h.pool.get(key)).toMatchObject({ encrypt: true, connected: false, nextAttemptAt: 0 });
    await new Promise((resolve) => setImmediate(resolve));
    expect(h.connectMore).toBe(1);
    // already encrypted: it failed like any other peer
    expect(h.dialer.redialEncrypted({ direction: 'outgoing', handshakeDone: false }, key, 'connection closed by peer')).toBe(false);
  });

  it('close() ends the dials in progress', async () => {
    const r = await responder({ silent: true });
    const h = harness({ requireEncryption: true });
    h.dial(r.port);
    await until(() => r.connections.length === 1);
    expect(h.dialer.connectionsByIp().get('127.0.0.1')).toBe(1);
    h.dialer.close();
    expect(h.dialer.connectionsByIp().size).toBe(0);
    await r.closedCount(1, 5_000);
    await until(() => h.failed.length === 1);
    expect(h.connected).toEqual([]);
  });
});
