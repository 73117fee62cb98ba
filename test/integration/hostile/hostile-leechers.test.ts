/**
 * Hostile leechers against a seeding tt (HARDENING.md "peer wire"): each offence
 * either drops that connection within a bound or is ignored, the session stays
 * up, and an honest leecher downloading at the same time completes, bytes verified.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { Bitfield } from '../../../src/core/bitfield.js';
import { BLOCK_SIZE } from '../../../src/core/geometry.js';
import { encodeHandshake, PROTOCOL_STRING } from '../../../src/wire/handshake.js';
import { MessageId } from '../../../src/wire/messages.js';
import { MAX_PEER_REQUESTS } from '../../../src/session/uploader.js';
import { RawPeer } from '../../helpers/raw-peer.js';
import { stopAll, type Running } from '../../helpers/swarm.js';
import {
  PIECE_LENGTH,
  expectDropped,
  expectKept,
  expectServed,
  frame,
  getUnchoked,
  hostileLeecher,
  message,
  startHonestLeecher,
  startSeed,
  u32,
} from './harness.js';

afterEach(stopAll);

/** The i-th valid full block of the torrent, cycling over every piece but the short last one. */
function validBlock(i: number, pieceCount: number): [index: number, begin: number, length: number] {
  const blocksPerPiece = PIECE_LENGTH / BLOCK_SIZE;
  const n = i % ((pieceCount - 1) * blocksPerPiece);
  return [Math.floor(n / blocksPerPiece), (n % blocksPerPiece) * BLOCK_SIZE, BLOCK_SIZE];
}

/** Why the seed closed each handshaked connection, in order. */
function closeReasons(seed: Running): string[] {
  const reasons: string[] = [];
  seed.session.on('peer-closed', (_peer, reason) => reasons.push(reason));
  return reasons;
}

/** A seed, an honest leecher already downloading from it, and the torrent. */
async function attackedSeed(uploadSlots = 4) {
  const { fx, seed } = await startSeed({ uploadSlots });
  const honest = await startHonestLeecher(fx, [seed.address]);
  return { fx, seed, honest, meta: fx.meta };
}

describe('hostile leechers: the handshake', () => {
  it('a wrong protocol string, a wrong info hash and our own peer id are each dropped', async () => {
    const { seed, honest, meta } = await attackedSeed();

    const wrongProtocol = await RawPeer.connect('127.0.0.1', seed.address.port);
    const bad = encodeHandshake(meta.infoHash, randomBytes(20));
    bad.write('BitTorrent protocoX', 1, 'latin1');
    wrongProtocol.sendRaw(bad);

    const wrongHash = await RawPeer.connect('127.0.0.1', seed.address.port);
    wrongHash.sendHandshake(randomBytes(20));

    // tt's own peer id echoed back: tt must see it is talking to itself
    const self = await RawPeer.connect('127.0.0.1', seed.address.port);
    self.sendHandshake(meta.infoHash, seed.session.peerId);

    await Promise.all([expectDropped(wrongProtocol), expectDropped(wrongHash), expectDropped(self)]);
    expect(wrongProtocol.received).toEqual([]);
    expect(wrongHash.received).toEqual([]);
    await honest.done;
  });

  it('a greeting that is not BitTorrent at all (an HTTP request, 18 bytes) is dropped without waiting for 68 bytes', async () => {
    // not BitTorrent, so possibly an encrypted (MSE) handshake: but every MSE client sends its
    // 96-byte key in one write, so a greeting still short of it after MSE_KEY_TIMEOUT_MS (1 s)
    // is dropped; waiting for the 10 s handshake timeout would hold one of 64 pending slots
    const { seed, honest } = await attackedSeed();
    const http = await RawPeer.connect('127.0.0.1', seed.address.port);
    try {
      http.sendRaw(Buffer.from('GET / HTTP/1.0\r\n\r\n', 'latin1'));
      expect(Buffer.from(PROTOCOL_STRING).length).toBe(19);
      await expectDropped(http, 3_000);
      await honest.done;
    } finally {
      http.close(); // else stopping the listener waits for its handshake timeout
    }
  });
});

describe('hostile leechers: framing', () => {
  it('a length prefix of 2^32-1 is refused before buffering', async () => {
    const { seed, honest, meta } = await attackedSeed();
    const peer = await hostileLeecher(meta, seed);
    peer.sendRaw(frame(0xffffffff, Buffer.from([MessageId.piece])));
    await expectDropped(peer);
    await honest.done;
  });

  it('a wrong size for each fixed-size message type is dropped', async () => {
    const { seed, honest, meta } = await attackedSeed();
    const cases: [string, Buffer][] = [
      ['choke with a payload', message(MessageId.choke, Buffer.from([0]))],
      ['interested with a payload', message(MessageId.interested, Buffer.from([1, 2]))],
      ['have of 3 bytes', message(MessageId.have, Buffer.from([0, 0, 1]))],
      ['have of 5 bytes', message(MessageId.have, Buffer.from([0, 0, 0, 1, 0]))],
      ['request of 11 bytes', message(MessageId.request, u32(0, 0, 0).subarray(0, 11))],
      ['request of 13 bytes', message(MessageId.request, Buffer.concat([u32(0, 0, BLOCK_SIZE), Buffer.from([0])]))],
      ['cancel of 8 bytes', message(MessageId.cancel, u32(0, 0))],
      ['piece without a block', message(MessageId.piece, u32(0, 0))],
      ['port of 1 byte', message(MessageId.port, Buffer.from([1]))],
      ['have-all with a payload', message(MessageId.haveAll, Buffer.from([0]))],
    ];
    const peers = await Promise.all(cases.map(() => hostileLeecher(meta, seed)));
    cases.forEach(([, bytes], i) => peers[i]!.sendRaw(bytes));
    const results = await Promise.allSettled(peers.map((p) => expectDropped(p)));
    const kept = results.flatMap((r, i) => (r.status === 'rejected' ? [cases[i]![0]] : []));
    expect(kept).toEqual([]);
    await honest.done;
  });

  it('an unknown message id is skipped and the connection keeps being served', async () => {
    const { fx, seed, honest, meta } = await attackedSeed();
    const peer = await hostileLeecher(meta, seed);
    peer.sendRaw(message(99, randomBytes(1000)));
    peer.sendRaw(message(200, Buffer.alloc(0)));
    await expectKept(peer);
    await getUnchoked(peer);
    await expectServed(peer, fx, 3, BLOCK_SIZE);
    expect(peer.isClosed()).toBe(false);
    await honest.done;
  });
});

describe('hostile leechers: availability messages', () => {
  it('a bitfield of the wrong length or with spare bits set is dropped; a second one is merged and the peer still served', async () => {
    const { fx, seed, honest, meta } = await attackedSeed();
    expect(meta.pieceCount % 8).not.toBe(0); // there are spare bits to set
    const bytes = Math.ceil(meta.pieceCount / 8);

    const short = await hostileLeecher(meta, seed);
    short.sendRaw(message(MessageId.bitfield, Buffer.alloc(bytes - 1)));
    const long = await hostileLeecher(meta, seed);
    long.sendRaw(message(MessageId.bitfield, Buffer.alloc(bytes + 1)));
    const spare = await hostileLeecher(meta, seed);
    const spareBits = Buffer.alloc(bytes);
    spareBits[bytes - 1] = 0x01; // the very last bit lies past the last piece
    spare.sendRaw(message(MessageId.bitfield, spareBits));
    const twice = await hostileLeecher(meta, seed);
    const first = new Bitfield(meta.pieceCount);
    first.set(0);
    const second = new Bitfield(meta.pieceCount);
    second.set(1);
    twice.send({ type: 'bitfield', bitfield: first });
    twice.send({ type: 'bitfield', bitfield: second });

    await Promise.all([expectDropped(short), expectDropped(long), expectDropped(spare)]);
    // a second bitfield is merged, not fatal (30a8c13: aria2 sends haves, then its bitfield)
    await expectKept(twice);
    await getUnchoked(twice);
    await expectServed(twice, fx, 2, 0);
    await honest.done;
  });

  it('a have out of range (index = piece count, and 2^32-1) is dropped', async () => {
    const { seed, honest, meta } = await attackedSeed();
    const a = await hostileLeecher(meta, seed);
    a.sendRaw(message(MessageId.have, u32(meta.pieceCount)));
    const b = await hostileLeecher(meta, seed);
    b.sendRaw(message(MessageId.have, u32(0xffffffff)));
    // the last valid index is accepted
    const c = await hostileLeecher(meta, seed);
    c.send({ type: 'have', index: meta.pieceCount - 1 });
    await Promise.all([expectDropped(a), expectDropped(b), expectKept(c)]);
    await honest.done;
  });
});

describe('hostile leechers: requests', () => {
  it('requests out of range, of zero length, over 16 KiB or past the piece end are dropped', async () => {
    const { fx, seed, honest, meta } = await attackedSeed(16);
    const lastIndex = meta.pieceCount - 1;
    const lastSize = meta.totalLength - lastIndex * PIECE_LENGTH;
    expect(lastSize).toBeLessThan(BLOCK_SIZE); // the short last piece makes "past the end" reachable with a small request
    const cases: [string, number, number, number][] = [
      ['index = piece count', meta.pieceCount, 0, BLOCK_SIZE],
      ['index 2^32-1', 0xffffffff, 0, BLOCK_SIZE],
      ['zero length', 0, 0, 0],
      ['16 KiB + 1', 0, 0, BLOCK_SIZE + 1],
      ['length 2^32-1', 0, 0, 0xffffffff],
      ['begin + length past the piece end', 0, PIECE_LENGTH - 100, 200],
      ['begin past the piece end', 0, PIECE_LENGTH, 1],
      ['begin 2^32-1', 0, 0xffffffff, 1],
      ['past the end of the short last piece', lastIndex, 0, lastSize + 1],
    ];
    const peers = await Promise.all(cases.map(() => hostileLeecher(meta, seed)));
    // unchoked first, so the request reaches the upload path, not the choked path
    await Promise.all(peers.map((p) => getUnchoked(p).catch(() => undefined)));
    cases.forEach(([, index, begin, length], i) => peers[i]!.sendRaw(message(MessageId.request, u32(index, begin, length))));
    const results = await Promise.allSettled(peers.map((p) => expectDropped(p)));
    const kept = results.flatMap((r, i) => (r.status === 'rejected' ? [cases[i]![0]] : []));
    expect(kept).toEqual([]);
    for (const p of peers) expect(p.received.filter((m) => m.type === 'piece')).toEqual([]);
    // the exact last block is still fine for a well-behaved peer
    const good = await hostileLeecher(meta, seed);
    await getUnchoked(good);
    await expectServed(good, fx, 0, PIECE_LENGTH - BLOCK_SIZE);
    await honest.done;
  });

  it('a request flood (1000 more than reqq, queued at once) is dropped, and heap stays bounded', async () => {
    const { seed, honest, meta } = await attackedSeed(16);
    const reasons = closeReasons(seed);
    const before = process.memoryUsage();
    const floods = await Promise.all(Array.from({ length: 10 }, () => hostileLeecher(meta, seed)));
    await Promise.all(floods.map((p) => getUnchoked(p)));
    const burst = Buffer.concat(
      Array.from({ length: MAX_PEER_REQUESTS + 1000 }, (_, i) => message(MessageId.request, u32(...validBlock(i, meta.pieceCount)))),
    );
    for (const p of floods) p.sendRaw(burst);
    await Promise.all(floods.map((p) => expectDropped(p, 5_000)));
    const after = process.memoryUsage();
    // 10 x 3000 requests served unboundedly would be 10 x 47 MiB of blocks; a capped queue
    // (MAX_PEER_REQUESTS entries) costs kilobytes. 64 MiB of slack covers GC timing and the read cache.
    const grown = after.heapUsed + after.arrayBuffers - (before.heapUsed + before.arrayBuffers);
    expect(grown).toBeLessThan(64 * 1024 * 1024);
    for (const p of floods) expect(p.received.filter((m) => m.type === 'piece').length).toBeLessThanOrEqual(MAX_PEER_REQUESTS);
    expect(reasons.filter((r) => /request flood/.test(r))).toHaveLength(floods.length);
    await honest.done;
  });

  it('requests while choked are dropped; many of them drop the connection', async () => {
    const { seed, honest, meta } = await attackedSeed();
    const reasons = closeReasons(seed);
    const peer = await hostileLeecher(meta, seed); // never says interested: stays choked
    const some = Buffer.concat(Array.from({ length: 100 }, (_, i) => message(MessageId.request, u32(...validBlock(i, meta.pieceCount)))));
    peer.sendRaw(some);
    await expectKept(peer);
    expect(peer.received.filter((m) => m.type === 'piece')).toEqual([]);
    peer.sendRaw(Buffer.concat([some, some])); // 300 in all while choked
    await expectDropped(peer);
    expect(reasons).toEqual([expect.stringMatching(/requests while choked/)]);
    expect(peer.received.filter((m) => m.type === 'piece')).toEqual([]);
    await honest.done;
  });

  it('cancelling everything it asked for: nothing (or the one block already on its way) is sent, and the connection stays', async () => {
    const { fx, seed, honest, meta } = await attackedSeed();
    const peer = await hostileLeecher(meta, seed);
    await getUnchoked(peer);
    const refs = Array.from({ length: 400 }, (_, i) => validBlock(i, meta.pieceCount));
    const requests = refs.map((ref) => message(MessageId.request, u32(...ref)));
    const cancels = refs.map((ref) => message(MessageId.cancel, u32(...ref)));
    peer.sendRaw(Buffer.concat([...requests, ...cancels])); // one write: tt sees them in one go
    await expectKept(peer, 1_000);
    expect(peer.received.filter((m) => m.type === 'piece').length).toBeLessThanOrEqual(2);
    await expectServed(peer, fx, 1, 0);
    await honest.done;
  });
});

describe('hostile leechers: isolation', () => {
  it('a garbage BEP 10 extended handshake throws inside the session handler: only that peer is closed', async () => {
    const { seed, honest, meta } = await attackedSeed();
    const reasons = closeReasons(seed);
    const reserved = Buffer.alloc(8);
    reserved[5] = 0x10;
    const peer = await RawPeer.connect('127.0.0.1', seed.address.port);
    peer.sendHandshake(meta.infoHash, undefined, reserved);
    await peer.readHandshake();
    peer.send({ type: 'extended', id: 0, payload: Buffer.from('l-3:e') });
    expect(honest.leech.session.have.complete).toBe(false); // the honest one is mid-download
    await expectDropped(peer);
    expect(reasons).toEqual([expect.stringMatching(/^error: bad extended handshake/)]);
    await honest.done;
  });

  it('an exception thrown by the picker for one peer closes that peer only (monkeypatched)', async () => {
    const { seed, honest, meta } = await attackedSeed();
    const reasons = closeReasons(seed);
    const picker = seed.session.picker!;
    const original = picker.peerHas.bind(picker);
    let thrown = 0;
    // the honest leecher starts empty and never sends a bitfield; the hostile one does
    picker.peerHas = () => {
      thrown++;
      throw new Error('injected handler bug');
    };
    try {
      const peer = await hostileLeecher(meta, seed);
      const one = new Bitfield(meta.pieceCount);
      one.set(0);
      peer.send({ type: 'bitfield', bitfield: one });
      expect(honest.leech.session.have.complete).toBe(false);
      await expectDropped(peer);
      expect(thrown).toBe(1);
      expect(reasons).toEqual(['error: injected handler bug']);
      await honest.done;
    } finally {
      picker.peerHas = original;
    }
  });
});
