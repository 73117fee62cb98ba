import { createServer, type Server, type Socket } from 'node:net';
import { once } from 'node:events';
import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { PeerConnection } from '../../../src/peer/connection.js';
import { encodeHandshake } from '../../../src/wire/handshake.js';
import { encodeMessage } from '../../../src/wire/messages.js';
import { RawPeer } from '../../helpers/raw-peer.js';
import { mulberry32 } from '../../helpers/prng.js';
import {
  INFO_HASH,
  LOOPBACK,
  OUR_ID,
  PIECE_COUNT,
  THEIR_ID,
  WAIT_MS,
  bitfieldOf,
  cleanups,
  handshaked,
  outgoing,
  record,
  runCleanups,
  until,
} from './fixture.js';

afterEach(runCleanups);

describe('PeerConnection handshake', () => {
  it('sends our handshake first on an outgoing connection, with the BEP 10 bit', async () => {
    const { remote, conn, messages } = await outgoing();
    const theirs = await remote.readHandshake(); // would fail if anything else came first
    expect(theirs.infoHash).toEqual(INFO_HASH);
    expect(theirs.peerId).toEqual(OUR_ID);
    expect(theirs.reserved[5]! & 0x10).toBe(0x10);
    expect(conn.handshakeDone).toBe(false);
    expect(messages).toEqual([]);
  });

  it('accepts a handshake split over several segments and the messages glued to it', async () => {
    const { remote, conn, messages } = await outgoing();
    await remote.readHandshake();
    const bytes = Buffer.concat([encodeHandshake(INFO_HASH, THEIR_ID, Buffer.alloc(8)), encodeMessage({ type: 'unchoke' })]);
    const handshake = once(conn, 'handshake');
    remote.sendRaw(bytes.subarray(0, 10));
    await new Promise((r) => setTimeout(r, 20));
    expect(conn.handshakeDone).toBe(false);
    remote.sendRaw(bytes.subarray(10, 67));
    await new Promise((r) => setTimeout(r, 20));
    expect(conn.handshakeDone).toBe(false);
    remote.sendRaw(bytes.subarray(67));
    await handshake;
    await until(() => messages.length === 1, 'the unchoke');
    expect(conn.remotePeerId).toEqual(THEIR_ID);
    expect(conn.peerChoking).toBe(false);
  });

  it('closes with a protocol reason on a handshake for another info hash', async () => {
    const { remote, closes, conn } = await outgoing();
    await remote.readHandshake();
    remote.sendHandshake(Buffer.alloc(20, 0x22), THEIR_ID);
    await until(() => closes.length > 0, 'close');
    expect(closes[0]).toMatch(/^protocol error: .*another torrent/);
    expect(conn.closed).toBe(true);
    expect(conn.handshakeDone).toBe(false);
    await remote.waitClosed();
  });

  it("closes 'connected to ourselves' when our own peer id comes back", async () => {
    const { remote, closes } = await outgoing();
    await remote.readHandshake();
    remote.sendHandshake(INFO_HASH, OUR_ID);
    await until(() => closes.length > 0, 'close');
    expect(closes).toEqual(['connected to ourselves']);
    await remote.waitClosed();
  });

  it('closes a non-BitTorrent greeting with a protocol error', async () => {
    const { remote, closes } = await outgoing();
    await remote.readHandshake();
    remote.sendRaw(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'.padEnd(68, ' ')));
    await until(() => closes.length > 0, 'close');
    expect(closes[0]).toMatch(/^protocol error:/);
  });

  it('answers an incoming handshake and reads the bytes that came after it', async () => {
    const server: Server = createServer();
    cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
    server.listen(0, LOOPBACK);
    await once(server, 'listening');
    const port = (server.address() as { port: number }).port;
    const accepted = once(server, 'connection') as Promise<[Socket]>;
    const remote = await RawPeer.connect(LOOPBACK, port, { timeoutMs: WAIT_MS });
    cleanups.push(() => remote.close());
    const [socket] = await accepted;
    const conn = new PeerConnection({ socket, infoHash: INFO_HASH, peerId: OUR_ID, pieceCount: PIECE_COUNT, direction: 'incoming', host: LOOPBACK, port });
    cleanups.push(() => conn.close('test over'));
    const { messages } = record(conn);
    const leftover = Buffer.concat([encodeMessage({ type: 'bitfield', bitfield: bitfieldOf(0, 9) }), encodeMessage({ type: 'interested' })]);
    conn.start({ handshake: { reserved: Buffer.alloc(8), infoHash: INFO_HASH, peerId: THEIR_ID }, leftover });
    expect(conn.handshakeDone).toBe(true);
    expect([...conn.peerBitfield.indices()]).toEqual([0, 9]);
    expect(conn.peerInterested).toBe(true);
    expect(messages.map((m) => m.type)).toEqual(['bitfield', 'interested']);
    const ours = await remote.readHandshake();
    expect(ours.peerId).toEqual(OUR_ID);
    expect(ours.infoHash).toEqual(INFO_HASH);
  });
});

describe('PeerConnection availability', () => {
  it("a bitfield then haves update the peer's bitfield", async () => {
    const { remote, conn, messages } = await handshaked();
    remote.send({ type: 'bitfield', bitfield: bitfieldOf(0, 2) });
    remote.send({ type: 'have', index: 5 });
    remote.send({ type: 'have', index: 2 }); // repeated: changes nothing, not reported
    remote.send({ type: 'have', index: 9 });
    await until(() => conn.peerBitfield.has(9), 'have 9');
    expect([...conn.peerBitfield.indices()]).toEqual([0, 2, 5, 9]);
    expect(messages.map((m) => (m.type === 'have' ? `have ${m.index}` : m.type))).toEqual(['bitfield', 'have 5', 'have 9']);
  });

  it('merges a late bitfield after haves and reports only the new bits, as haves (aria2)', async () => {
    const { remote, conn, messages } = await handshaked();
    remote.send({ type: 'have', index: 1 });
    remote.send({ type: 'have', index: 3 });
    remote.send({ type: 'bitfield', bitfield: bitfieldOf(1, 2, 3, 7) });
    remote.send({ type: 'keep-alive' });
    await until(() => messages.some((m) => m.type === 'keep-alive'), 'the keep-alive after the bitfield');
    expect([...conn.peerBitfield.indices()]).toEqual([1, 2, 3, 7]);
    expect(messages.filter((m) => m.type !== 'keep-alive')).toEqual([
      { type: 'have', index: 1 },
      { type: 'have', index: 3 },
      { type: 'have', index: 2 },
      { type: 'have', index: 7 },
    ]);
  });

  it('a second bitfield can add pieces but never removes any', async () => {
    const { remote, conn, messages } = await handshaked();
    remote.send({ type: 'bitfield', bitfield: bitfieldOf(0, 1) });
    remote.send({ type: 'bitfield', bitfield: bitfieldOf(4) });
    await until(() => conn.peerBitfield.has(4), 'piece 4');
    expect([...conn.peerBitfield.indices()]).toEqual([0, 1, 4]);
    expect(messages.map((m) => m.type)).toEqual(['bitfield', 'have']);
  });

  it('have-all (BEP 6) fills the bitfield', async () => {
    const { remote, conn, messages } = await handshaked();
    remote.send({ type: 'have-all' });
    await until(() => messages.length === 1, 'have-all');
    expect(messages[0]).toEqual({ type: 'have-all' });
    expect(conn.peerBitfield.complete).toBe(true);
    expect(conn.peerBitfield.count).toBe(PIECE_COUNT);
  });

  it('have-all after some haves reports the rest as haves', async () => {
    const { remote, conn, messages } = await handshaked();
    remote.send({ type: 'have', index: 4 });
    remote.send({ type: 'have-all' });
    await until(() => conn.peerBitfield.complete, 'complete bitfield');
    await until(() => messages.length === PIECE_COUNT, 'one have per piece');
    const reported = messages.map((m) => (m.type === 'have' ? m.index : -1)).sort((a, b) => a - b);
    expect(reported).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });
});

describe('PeerConnection choke and interest', () => {
  it("tracks the peer's choke and interest flags", async () => {
    const { remote, conn, messages } = await handshaked();
    expect(conn.peerChoking).toBe(true);
    expect(conn.peerInterested).toBe(false);
    remote.send({ type: 'unchoke' });
    remote.send({ type: 'interested' });
    await until(() => messages.length === 2, 'unchoke, interested');
    expect(conn.peerChoking).toBe(false);
    expect(conn.peerInterested).toBe(true);
    remote.send({ type: 'choke' });
    remote.send({ type: 'not-interested' });
    await until(() => messages.length === 4, 'choke, not-interested');
    expect(conn.peerChoking).toBe(true);
    expect(conn.peerInterested).toBe(false);
  });

  it('our state commands send once per change', async () => {
    const { remote, conn } = await handshaked();
    expect(conn.amChoking).toBe(true);
    expect(conn.amInterested).toBe(false);
    conn.choke(); // already choking: nothing
    conn.interested();
    conn.interested();
    conn.unchoke();
    conn.unchoke();
    conn.notInterested();
    conn.choke();
    conn.send({ type: 'keep-alive' }); // a marker: everything before it has arrived
    await remote.waitFor((m) => m.type === 'keep-alive');
    expect(remote.received.map((m) => m.type)).toEqual(['interested', 'unchoke', 'not-interested', 'choke', 'keep-alive']);
    expect(conn.amChoking).toBe(true);
    expect(conn.amInterested).toBe(false);
  });
});

describe('PeerConnection failures', () => {
  const MALFORMED: Array<[string, Buffer]> = [
    ['a have of the wrong size', Buffer.from([0, 0, 0, 6, 4, 0, 0, 0, 1, 0])],
    ['a length prefix over the cap', Buffer.from([0xff, 0xff, 0xff, 0xff, 7])],
    ['a bitfield of the wrong length', Buffer.from([0, 0, 0, 4, 5, 0xff, 0xc0, 0])],
    ['a bitfield with spare bits set', Buffer.from([0, 0, 0, 3, 5, 0xff, 0xff])],
    ['a have for a piece that does not exist', encodeMessage({ type: 'have', index: PIECE_COUNT })],
    ['a request over 16 KiB', encodeMessage({ type: 'request', index: 0, begin: 0, length: 16 * 1024 + 1 })],
  ];

  it.each(MALFORMED)("%s closes with a 'protocol error' reason, exactly once", async (_name, frame) => {
    const { remote, conn, closes, messages } = await handshaked();
    remote.send({ type: 'unchoke' });
    remote.sendRaw(frame);
    remote.send({ type: 'interested' }); // after the bad frame: must never be acted on
    await until(() => closes.length > 0, 'close');
    await remote.waitClosed();
    await new Promise((r) => setTimeout(r, 20)); // let the socket's own close/end events fire
    expect(closes).toHaveLength(1);
    expect(closes[0]).toMatch(/^protocol error: /);
    expect(conn.closed).toBe(true);
    expect(conn.peerInterested).toBe(false);
    expect(messages.some((m) => m.type === 'interested')).toBe(false);
    conn.close('again'); // idempotent
    expect(closes).toHaveLength(1);
  });

  it('a peer hanging up emits close once', async () => {
    const { remote, closes } = await handshaked();
    remote.close();
    await until(() => closes.length > 0, 'close');
    await new Promise((r) => setTimeout(r, 20));
    expect(closes).toHaveLength(1);
  });

  it('a throwing message handler closes this connection only, with an error reason', async () => {
    const { remote, conn, closes } = await handshaked();
    conn.on('message', (m) => {
      if (m.type === 'unchoke') throw new Error('handler bug');
    });
    remote.send({ type: 'unchoke' });
    await until(() => closes.length > 0, 'close');
    expect(closes).toEqual(['error: handler bug']);
  });

  it('sends are no-ops after close', async () => {
    const { conn } = await handshaked();
    conn.close('done');
    expect(() => {
      conn.interested();
      conn.have(1);
      conn.requestMany([{ index: 0, begin: 0, length: 16384 }]);
      conn.sendPiece(0, 0, Buffer.alloc(10));
    }).not.toThrow();
    expect(conn.uploadRate.total).toBe(0);
  });
});

describe('PeerConnection reading into the shared buffer (outgoing sockets)', () => {
  it('every block survives the buffer being reused between reads, whatever the segment sizes', async () => {
    const a = await handshaked({}, true);
    const b = await handshaked({}, true); // a second socket on the same shared buffer
    const rng = mulberry32(7);
    const sent: string[] = [];
    const got = new Map<PeerConnection, string[]>([[a.conn, []], [b.conn, []]]);
    for (const o of [a, b]) {
      // handlers see views into the shared buffer: hash them now, as the session copies them now
      o.conn.on('message', (m) => {
        if (m.type === 'piece') got.get(o.conn)!.push(`${m.index}:${m.begin}:${createHash('sha1').update(m.block).digest('hex')}`);
      });
    }
    const frames: Buffer[] = [];
    for (let i = 0; i < 40; i++) {
      const block = Buffer.alloc(16 * 1024);
      for (let j = 0; j < block.length; j++) block[j] = Math.floor(rng() * 256);
      frames.push(encodeMessage({ type: 'piece', index: i % PIECE_COUNT, begin: i * 16384, block }));
      sent.push(`${i % PIECE_COUNT}:${i * 16384}:${createHash('sha1').update(block).digest('hex')}`);
    }
    const wire = Buffer.concat(frames);
    // both peers send the same stream in different, odd-sized segments, interleaved
    const cuts = (seed: number): Buffer[] => {
      const r = mulberry32(seed);
      const out: Buffer[] = [];
      for (let at = 0; at < wire.length; ) {
        const n = 1 + Math.floor(r() * 40_000);
        out.push(wire.subarray(at, at + n));
        at += n;
      }
      return out;
    };
    const sa = cuts(1);
    const sb = cuts(2);
    for (let i = 0; i < Math.max(sa.length, sb.length); i++) {
      if (sa[i]) a.remote.sendRaw(sa[i]!);
      if (sb[i]) b.remote.sendRaw(sb[i]!);
      if (i % 3 === 0) await new Promise((r) => setTimeout(r, 2)); // separate reads
    }
    await until(() => got.get(a.conn)!.length === 40 && got.get(b.conn)!.length === 40, 'all blocks on both');
    expect(got.get(a.conn)).toEqual(sent);
    expect(got.get(b.conn)).toEqual(sent);
    expect(a.closes).toEqual([]);
    expect(b.closes).toEqual([]);
  });

  it('a handshake split over reads is kept whole although the buffer is reused', async () => {
    const { remote, conn, messages } = await outgoing({}, true);
    await remote.readHandshake();
    const bytes = Buffer.concat([encodeHandshake(INFO_HASH, THEIR_ID, Buffer.alloc(8)), encodeMessage({ type: 'have', index: 4 })]);
    remote.sendRaw(bytes.subarray(0, 30));
    await new Promise((r) => setTimeout(r, 20));
    remote.sendRaw(bytes.subarray(30));
    await until(() => messages.length === 1, 'the have');
    expect(conn.remotePeerId).toEqual(THEIR_ID);
    expect(messages).toEqual([{ type: 'have', index: 4 }]);
  });
});

describe('PeerConnection data and rates', () => {
  it('sendPiece writes the header and the block as one piece message and counts upload bytes', async () => {
    const { remote, conn } = await handshaked();
    const block = Buffer.alloc(16 * 1024);
    for (let i = 0; i < block.length; i++) block[i] = (i * 7) & 0xff;
    conn.sendPiece(3, 16 * 1024, block);
    const m = await remote.nextMessage();
    expect(m.type).toBe('piece');
    if (m.type !== 'piece') return;
    expect(m.index).toBe(3);
    expect(m.begin).toBe(16 * 1024);
    expect(m.block.equals(block)).toBe(true);
    expect(conn.uploadRate.total).toBe(block.length);
    expect(conn.downloadRate.total).toBe(0);
  });

  it('haves from one event-loop turn go out in one write, in order; a later turn writes again', async () => {
    const { remote, conn } = await handshaked();
    let writes = 0;
    const write = conn.socket.write.bind(conn.socket) as (...args: unknown[]) => boolean;
    Object.assign(conn.socket, {
      write: (...args: unknown[]) => {
        writes++;
        return write(...args);
      },
    });
    conn.have(3);
    conn.have(1);
    conn.have(7);
    expect(writes).toBe(0); // not yet: at the end of the turn
    await new Promise((r) => setImmediate(r));
    expect(writes).toBe(1);
    for (const index of [3, 1, 7]) expect(await remote.nextMessage()).toEqual({ type: 'have', index });
    conn.have(2);
    await new Promise((r) => setImmediate(r));
    expect(writes).toBe(2);
    expect(await remote.nextMessage()).toEqual({ type: 'have', index: 2 });
    conn.have(4);
    conn.close('gone'); // queued haves die with the connection
    await new Promise((r) => setImmediate(r));
    expect(writes).toBe(2);
  });

  it('request, cancel and have go out as BEP 3 frames', async () => {
    const { remote, conn } = await handshaked();
    conn.requestMany([{ index: 1, begin: 0, length: 16384 }]);
    conn.cancel(1, 0, 16384);
    conn.have(9);
    expect(await remote.nextMessage()).toEqual({ type: 'request', index: 1, begin: 0, length: 16384 });
    expect(await remote.nextMessage()).toEqual({ type: 'cancel', index: 1, begin: 0, length: 16384 });
    expect(await remote.nextMessage()).toEqual({ type: 'have', index: 9 });
  });

  it('the download meter counts piece payload bytes only', async () => {
    const { remote, conn, messages } = await handshaked();
    remote.send({ type: 'unchoke' });
    remote.send({ type: 'have', index: 1 });
    remote.send({ type: 'piece', index: 1, begin: 0, block: Buffer.alloc(1000, 1) });
    remote.send({ type: 'piece', index: 1, begin: 1000, block: Buffer.alloc(24, 2) });
    await until(() => messages.filter((m) => m.type === 'piece').length === 2, 'two pieces');
    expect(conn.downloadRate.total).toBe(1024);
    expect(conn.uploadRate.total).toBe(0);
    const pieces = messages.filter((m) => m.type === 'piece');
    expect(pieces.map((m) => (m.type === 'piece' ? [m.index, m.begin, m.block.length] : []))).toEqual([
      [1, 0, 1000],
      [1, 1000, 24],
    ]);
  });
});
