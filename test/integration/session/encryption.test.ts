/**
 * Encrypted connections (MSE/PE) between tt sessions over real sockets. With
 * --encryption require on both sides the whole exchange goes through RC4: a
 * recording proxy in the middle sees neither the protocol string nor any run
 * of the payload, and the bytes on disk still match. A seed that requires
 * encryption drops a plain handshake unanswered; a default tt dialing it
 * redials once with MSE and completes. A default seed answers an MSE
 * initiator that offers only RC4.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { encodeHandshake } from '../../../src/wire/handshake.js';
import { CRYPTO_RC4, MseInitiator, type MseInitiatorResult } from '../../../src/wire/mse.js';
import { RawPeer } from '../../helpers/raw-peer.js';
import { expectSameData, makeFixture, startSession, stopAll, trackDir, whenComplete, type Fixture } from '../../helpers/swarm.js';

const servers: Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await new Promise<void>((r) => s.close(() => r()));
  await stopAll();
});

async function fixture(): Promise<Fixture> {
  const fx = await makeFixture({ files: [{ path: ['data.bin'], size: 600_000 }], pieceLength: 32_768 });
  trackDir(fx.work);
  return fx;
}

/** A TCP proxy to `port` on 127.0.0.1 that records every byte both ways. */
async function recordingProxy(port: number): Promise<{ port: number; seen: () => Buffer }> {
  const chunks: Buffer[] = [];
  const sockets: Socket[] = [];
  const server = createServer((client) => {
    const upstream = connect({ host: '127.0.0.1', port });
    sockets.push(client, upstream);
    client.on('data', (d: Buffer) => {
      chunks.push(Buffer.from(d));
      upstream.write(d);
    });
    upstream.on('data', (d: Buffer) => {
      chunks.push(Buffer.from(d));
      client.write(d);
    });
    const end = (): void => {
      client.destroy();
      upstream.destroy();
    };
    client.on('close', end).on('error', end);
    upstream.on('close', end).on('error', end);
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  server.on('close', () => sockets.forEach((s) => s.destroy()));
  const address = server.address();
  return { port: typeof address === 'object' && address ? address.port : 0, seen: () => Buffer.concat(chunks) };
}

describe('MSE between tt sessions', () => {
  it('require on both sides: RC4 end to end, nothing readable on the wire, the data arrives whole', async () => {
    const fx = await fixture();
    const seed = await startSession({ meta: fx.meta, root: fx.seedRoot, mode: 'seed' }, undefined, { requireEncryption: true });
    const proxy = await recordingProxy(seed.address.port);
    const out = join(fx.work, 'out');
    const leech = await startSession(
      { meta: fx.meta, root: out, mode: 'download', useTrackers: false, peers: [{ host: '127.0.0.1', port: proxy.port }] },
      undefined,
      { requireEncryption: true },
    );
    await whenComplete(leech.session);
    await expectSameData(fx, out);
    const wire = proxy.seen();
    expect(wire.length).toBeGreaterThan(600_000);
    expect(wire.includes(Buffer.from('BitTorrent protocol'))).toBe(false);
    const data = fx.files[0]!.data;
    for (const at of [0, 100_000, 599_000]) expect(wire.includes(data.subarray(at, at + 64)), `payload at ${at}`).toBe(false);
  });

  it('a seed that requires encryption drops a plain handshake without answering it', async () => {
    const fx = await fixture();
    const seed = await startSession({ meta: fx.meta, root: fx.seedRoot, mode: 'seed' }, undefined, { requireEncryption: true });
    const refused: string[] = [];
    seed.listener.on('refused', (peer, reason) => refused.push(`${peer} ${reason}`));
    const peer = await RawPeer.connect('127.0.0.1', seed.address.port);
    peer.sendHandshake(fx.meta.infoHash);
    await peer.waitClosed(3_000);
    await expect(peer.readHandshake(100)).rejects.toThrow();
    // and says why (tt seed -v shows it): a silent drop left users guessing
    expect(refused).toEqual([expect.stringMatching(/^127\.0\.0\.1:\d+ plain BitTorrent handshake, but --encryption require takes encrypted \(MSE\) connections only$/)]);
    // a greeting that is neither: refused after the 1 s MSE key wait, saying so
    const other = await RawPeer.connect('127.0.0.1', seed.address.port);
    other.sendRaw(Buffer.from('GET / HTTP/1.1\r\n\r\n'));
    await other.waitClosed(3_000);
    expect(refused[1]).toMatch(/not BitTorrent, nor an encrypted handshake within 1 s$/);
  });

  it('a leecher requiring encryption whose only peer drops it: the no-peers error names the last attempt and why', async () => {
    const fx = await fixture();
    const server = createServer((s) => s.destroy()); // takes the connection, then hangs up
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    const leech = await startSession(
      { meta: fx.meta, root: join(fx.work, 'out'), mode: 'download', useTrackers: false, peers: [{ host: '127.0.0.1', port }], peerTimeoutMs: 1_500 },
      undefined,
      { requireEncryption: true },
    );
    const err = await new Promise<Error>((resolve) => leech.session.once('error', resolve));
    expect(err.message).toMatch(new RegExp(`^no peer connected for 2 s \\(last attempt: 127\\.0\\.0\\.1:${port}: .+\\)$`));
  });

  it('a default leecher dialing a seed that requires encryption redials with MSE and completes', async () => {
    const fx = await fixture();
    const seed = await startSession({ meta: fx.meta, root: fx.seedRoot, mode: 'seed' }, undefined, { requireEncryption: true });
    const out = join(fx.work, 'out');
    const leech = await startSession({ meta: fx.meta, root: out, mode: 'download', useTrackers: false, peers: [seed.address] });
    await whenComplete(leech.session, 20_000);
    await expectSameData(fx, out);
    expect(leech.session.pool.get(`127.0.0.1:${seed.address.port}`)?.encrypt).toBe(true);
  });

  it('a default seed selects RC4 for an initiator that offers only RC4, and speaks BitTorrent through it', async () => {
    const fx = await fixture();
    const seed = await startSession({ meta: fx.meta, root: fx.seedRoot, mode: 'seed' });
    const socket = connect({ host: '127.0.0.1', port: seed.address.port });
    await new Promise<void>((r) => socket.once('connect', () => r()));
    const initiator = new MseInitiator(fx.meta.infoHash, CRYPTO_RC4);
    const reply = new Promise<Buffer>((resolve, reject) => {
      let after: Buffer = Buffer.alloc(0);
      socket.on('data', (d: Buffer) => {
        const done: MseInitiatorResult | undefined = initiator.result;
        if (done) after = Buffer.concat([after, done.cipher!.decrypt.process(d)]);
        else {
          for (const out of initiator.push(d)) socket.write(out);
          const now: MseInitiatorResult | undefined = initiator.result;
          if (!now) return;
          socket.write(now.cipher!.encrypt.process(encodeHandshake(fx.meta.infoHash, Buffer.alloc(20, 7), Buffer.alloc(8))));
          after = now.rest;
        }
        if (after.length >= 68) resolve(after);
      });
      socket.on('error', reject);
      setTimeout(() => reject(new Error('no handshake back')), 5_000).unref();
    });
    socket.write(initiator.first);
    const back = await reply;
    socket.destroy();
    expect(initiator.result?.cipher).toBeDefined();
    expect(back.subarray(1, 20).toString()).toBe('BitTorrent protocol');
    expect(back.subarray(28, 48).equals(fx.meta.infoHash)).toBe(true);
  });
});
