/**
 * The listener's incoming sockets: reads land in the shared buffer (no 'data'
 * events), the accepted wrapper gives up its handle and the server's count,
 * the handshake is read through the sink and the rest reaches the handler;
 * garbage and unknown info hashes are dropped.
 */
import { afterEach, describe, expect, it } from 'vitest';
import net from 'node:net';
import { once } from 'node:events';
import { Listener, adoptWithSharedReads } from '../../../src/session/listener.js';
import { SHARED_READ_BYTES, type ReadSink } from '../../../src/peer/connection.js';
import { encodeHandshake } from '../../../src/wire/handshake.js';
import { CRYPTO_PLAINTEXT } from '../../../src/wire/mse.js';
import { mseInitiator } from '../../helpers/mse-initiator.js';
import { until } from '../../helpers/until.js';

const cleanup: (() => void)[] = [];
afterEach(() => {
  for (const f of cleanup.splice(0)) f();
});

function dial(port: number): Promise<net.Socket> {
  const client = net.connect({ host: '127.0.0.1', port });
  cleanup.push(() => client.destroy());
  return once(client, 'connect').then(() => client);
}

async function rawServer(): Promise<{ server: net.Server; port: number }> {
  const server = net.createServer({ pauseOnConnect: true });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  cleanup.push(() => server.close());
  const address = server.address();
  return { server, port: typeof address === 'object' && address ? address.port : 0 };
}


describe('adoptWithSharedReads', () => {
  it('moves the accepted handle into a socket that reads into the shared buffer, releasing the server', async () => {
    const { server, port } = await rawServer();
    const connection = once(server, 'connection');
    const client = await dial(port);
    const [accepted] = (await connection) as [net.Socket];
    const sink: ReadSink = { conn: undefined };
    const socket = adoptWithSharedReads(accepted, sink);
    cleanup.push(() => socket.destroy());

    expect(socket).not.toBe(accepted);
    const dataEvents: Buffer[] = [];
    socket.on('data', (d: Buffer) => dataEvents.push(d));
    client.write('hello');
    await until(() => (sink.early ?? []).length > 0);
    expect(Buffer.concat(sink.early ?? []).toString()).toBe('hello');
    expect(dataEvents).toEqual([]); // onread, not 'data'
    expect(socket.remotePort).toBe(client.localPort);

    // the old wrapper no longer counts as a connection, and the handle still works both ways
    const count = await new Promise<number>((resolve, reject) =>
      server.getConnections((err, n) => (err ? reject(err) : resolve(n))),
    );
    expect(count).toBe(0);
    socket.write('back');
    const [reply] = (await once(client, 'data')) as [Buffer];
    expect(reply.toString()).toBe('back');
  });

  it('reads of more than 64 KiB arrive whole (a 1 MiB shared buffer, not 64 KiB allocations)', async () => {
    const { server, port } = await rawServer();
    const connection = once(server, 'connection');
    const client = await dial(port);
    const [accepted] = (await connection) as [net.Socket];
    // pauseOnConnect: nothing is read before adoption, so the whole write waits in the kernel
    const payload = Buffer.alloc(512 * 1024, 7);
    client.write(payload);
    await new Promise((r) => setTimeout(r, 100));
    const sizes: number[] = [];
    const sink: ReadSink = { conn: undefined };
    sink.onEarly = () => sizes.push(sink.early?.at(-1)?.length ?? 0);
    const socket = adoptWithSharedReads(accepted, sink);
    cleanup.push(() => socket.destroy());
    await until(() => sizes.reduce((a, b) => a + b, 0) === payload.length);
    expect(Math.max(...sizes)).toBeGreaterThan(64 * 1024);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(SHARED_READ_BYTES);
  });

  it("falls back to 'data' events feeding the sink when the handle cannot be moved", async () => {
    const { server, port } = await rawServer();
    const connection = once(server, 'connection');
    const client = await dial(port);
    const [accepted] = (await connection) as [net.Socket];
    const handle = (accepted as unknown as { _handle: Record<string, unknown> })._handle;
    Object.defineProperty(handle, 'useUserBuffer', { value: undefined }); // as if Node had no such method
    const sink: ReadSink = { conn: undefined };
    const socket = adoptWithSharedReads(accepted, sink);
    cleanup.push(() => socket.destroy());
    expect(socket).toBe(accepted);
    client.write('fallback');
    await until(() => Buffer.concat(sink.early ?? []).toString() === 'fallback');
  });
});

describe('Listener', () => {
  const infoHash = Buffer.alloc(20, 0xab);
  const peerId = Buffer.alloc(20, 0x01);

  it('reads the handshake through the sink and hands the socket, the handshake and the bytes after it over', async () => {
    const listener = await Listener.listen({ host: '127.0.0.1', port: 0 });
    cleanup.push(() => void listener.close());
    const got: { handshake: { infoHash: Buffer }; leftover: Buffer; reads: ReadSink; socket: net.Socket }[] = [];
    listener.register(infoHash, (socket, handshake, leftover, reads) => got.push({ socket, handshake, leftover, reads }));
    const accepted: net.Socket[] = [];
    listener.on('accepted', (s) => accepted.push(s));
    const client = await dial(listener.port);
    const hs = encodeHandshake(infoHash, peerId, Buffer.alloc(8));
    // in pieces, with a message right behind it
    client.write(hs.subarray(0, 10));
    await new Promise((r) => setTimeout(r, 20));
    client.write(Buffer.concat([hs.subarray(10), Buffer.from([0, 0, 0, 1, 2])]));
    await until(() => got.length === 1);
    expect(got[0]!.handshake.infoHash).toEqual(infoHash);
    expect([...got[0]!.leftover]).toEqual([0, 0, 0, 1, 2]);
    expect(got[0]!.socket).toBe(accepted[0]);
    expect(got[0]!.reads.onEarly).toBeUndefined(); // the listener let go of the sink
  });

  it('drops garbage once it cannot be an encrypted handshake, and handshakes for torrents it does not serve', async () => {
    const listener = await Listener.listen({ host: '127.0.0.1', port: 0 });
    cleanup.push(() => void listener.close());
    let handled = 0;
    listener.register(infoHash, () => handled++);
    // not "\x13BitTorrent protocol": read as MSE, which allows 96 + 512 + 20 bytes before HASH('req1')
    const garbage = await dial(listener.port);
    garbage.write(Buffer.alloc(800, 'GET / HTTP/1.1\r\n'));
    const t0 = Date.now();
    await once(garbage, 'close');
    expect(Date.now() - t0).toBeLessThan(2_000); // not the 10 s handshake timeout
    const stranger = await dial(listener.port);
    stranger.write(encodeHandshake(Buffer.alloc(20, 0xcd), peerId, Buffer.alloc(8)));
    await once(stranger, 'close');
    expect(handled).toBe(0);
  });

  it('an MSE (encrypted handshake) initiator gets the plaintext method; its BitTorrent handshake then reaches the handler', async () => {
    const listener = await Listener.listen({ host: '127.0.0.1', port: 0 });
    cleanup.push(() => void listener.close());
    const got: { handshake: { infoHash: Buffer }; leftover: Buffer }[] = [];
    listener.register(infoHash, (_socket, handshake, leftover) => got.push({ handshake, leftover }));
    const hs = encodeHandshake(infoHash, peerId, Buffer.alloc(8));
    // the handshake split: its first 30 bytes as MSE's initial payload, the rest in plain after step 4
    const a = mseInitiator({ infoHash, ia: hs.subarray(0, 30) });
    const client = await dial(listener.port);
    const received: Buffer[] = [];
    client.on('data', (d: Buffer) => received.push(d));
    client.write(a.first);
    await until(() => Buffer.concat(received).length >= 96);
    const { bytes, decryptReply, vcMarker } = a.third(Buffer.concat(received).subarray(0, 96));
    client.write(bytes);
    // step 4 (VC, crypto_select, len(padD)) follows Yb and a random PadB: found by its encrypted VC
    let at = -1;
    await until(() => (at = Buffer.concat(received).indexOf(vcMarker, 96)) >= 0 && Buffer.concat(received).length >= at + 14);
    const step4 = decryptReply.process(Buffer.concat(received).subarray(at, at + 14));
    expect(step4.subarray(0, 8).equals(Buffer.alloc(8))).toBe(true);
    const select = step4.readUInt32BE(8);
    expect(select).toBe(CRYPTO_PLAINTEXT);
    client.write(Buffer.concat([hs.subarray(30), Buffer.from([0, 0, 0, 1, 2])]));
    await until(() => got.length === 1);
    expect(got[0]!.handshake.infoHash).toEqual(infoHash);
    expect([...got[0]!.leftover]).toEqual([0, 0, 0, 1, 2]);
  });
});
