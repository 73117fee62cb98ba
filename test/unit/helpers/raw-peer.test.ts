import { afterEach, describe, expect, it } from 'vitest';
import { Bitfield } from '../../../src/core/bitfield.js';
import { RawPeer, type RawPeerServer } from '../../helpers/raw-peer.js';

const INFO_HASH = Buffer.alloc(20, 0xab);
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function pair(timeoutMs = 2_000): Promise<{ server: RawPeerServer; a: RawPeer; b: RawPeer }> {
  const server = await RawPeer.listen({ timeoutMs });
  cleanups.push(() => server.close());
  const a = await RawPeer.connect('127.0.0.1', server.port, { timeoutMs });
  cleanups.push(() => a.close());
  const b = await server.accept();
  return { server, a, b };
}

describe('RawPeer against itself', () => {
  it('exchanges handshakes and messages in both directions', async () => {
    const { a, b } = await pair();
    const peerId = Buffer.from('-XX0001-000000000000', 'latin1');
    a.sendHandshake(INFO_HASH, peerId);
    const bf = new Bitfield(10);
    bf.set(3);
    // the first messages ride in the same write as the handshake's tail
    a.send({ type: 'bitfield', bitfield: bf });
    a.send({ type: 'unchoke' });
    const h = await b.readHandshake();
    expect(h.infoHash.equals(INFO_HASH)).toBe(true);
    expect(h.peerId.equals(peerId)).toBe(true);
    const first = await b.nextMessage();
    expect(first.type === 'bitfield' && [...first.bitfield.indices()]).toEqual([3]);
    expect(await b.nextMessage()).toEqual({ type: 'unchoke' });

    b.sendHandshake(INFO_HASH);
    b.send({ type: 'request', index: 1, begin: 0, length: 16384 });
    expect((await a.readHandshake()).peerId.subarray(0, 8).toString()).toBe('-RP0001-');
    expect(await a.nextMessage()).toEqual({ type: 'request', index: 1, begin: 0, length: 16384 });
    expect(a.received).toHaveLength(1);
    expect(b.received.map((m) => m.type)).toEqual(['bitfield', 'unchoke']);
  });

  it('waitFor skips non-matching messages; a frame split across writes still arrives whole', async () => {
    const { a, b } = await pair();
    a.sendHandshake(INFO_HASH);
    a.send({ type: 'keep-alive' });
    a.send({ type: 'have', index: 1 });
    const piece = Buffer.from([0, 0, 0, 12, 7, 0, 0, 0, 2, 0, 0, 0, 0, 0x61, 0x62, 0x63]);
    a.sendRaw(piece.subarray(0, 7));
    await new Promise((r) => setTimeout(r, 20));
    a.sendRaw(piece.subarray(7));
    const m = await b.waitFor((x) => x.type === 'piece');
    expect(m).toEqual({ type: 'piece', index: 2, begin: 0, block: Buffer.from('abc') });
    expect(b.received.map((x) => x.type)).toEqual(['keep-alive', 'have', 'piece']);
  });

  it('nextMessage times out when nothing comes', async () => {
    const { a, b } = await pair();
    a.sendHandshake(INFO_HASH);
    await b.readHandshake();
    await expect(b.nextMessage(100)).rejects.toThrow(/timed out after 100 ms/);
  });

  it('reports a close: closed resolves, waiting calls reject, waitClosed resolves', async () => {
    const { a, b } = await pair();
    const pending = b.readHandshake();
    a.close();
    await expect(pending).rejects.toThrow(/closed while waiting for the handshake/);
    await b.closed;
    expect(b.isClosed()).toBe(true);
    await b.waitClosed(100);
    await expect(b.nextMessage(100)).rejects.toThrow(/closed/);
    a.sendRaw(Buffer.from('ignored after close'));
  });

  it('waitClosed rejects while the connection stays open', async () => {
    const { b } = await pair();
    await expect(b.waitClosed(100)).rejects.toThrow(/timed out/);
  });

  it('a wrong protocol string fails readHandshake', async () => {
    const { a, b } = await pair();
    a.sendRaw(Buffer.concat([Buffer.from('\x13BitTorrent protocoX', 'latin1'), Buffer.alloc(48)]));
    await expect(b.readHandshake()).rejects.toThrow(/protocol string/);
  });

  it('a hostile frame after the handshake is reported after the good ones', async () => {
    const { a, b } = await pair();
    a.sendHandshake(INFO_HASH);
    a.send({ type: 'interested' });
    a.sendRaw(Buffer.from([0xff, 0xff, 0xff, 0xff]));
    expect(await b.nextMessage()).toEqual({ type: 'interested' });
    await expect(b.nextMessage()).rejects.toThrow(/message too long/);
  });

  it('accept times out without a connection, and server.close ends accepted peers', async () => {
    const server = await RawPeer.listen();
    await expect(server.accept(50)).rejects.toThrow(/no connection within 50 ms/);
    const a = await RawPeer.connect('127.0.0.1', server.port);
    cleanups.push(() => a.close());
    const b = await server.accept();
    await server.close();
    await b.closed;
    await a.waitClosed(2_000);
  });

  it('connect to a closed port rejects', async () => {
    const server = await RawPeer.listen();
    const port = server.port;
    await server.close();
    await expect(RawPeer.connect('127.0.0.1', port, { timeoutMs: 2_000 })).rejects.toThrow(/ECONNREFUSED/);
  });
});
