/**
 * Hostile BEP 9 (ut_metadata) peers against tt, over real loopback sockets.
 *
 * Serving (a seeding TorrentSession, session/metadata-server.ts): malformed requests
 * (piece huge, negative, a string; msg_type a string; not a dictionary; too
 * deep) drop that connection and nothing else; unknown msg_types and requests
 * before the extended handshake are ignored; the id the peer chose (255, 0,
 * out of range) is honoured; a peer that floods requests without reading
 * cannot make tt queue unbounded replies.
 *
 * Fetching (MetadataFetcher, the magnet phase): a peer whose metadata_size is
 * wrong and that then leaves (closes, rejects, stalls) must not lock the
 * honest size out; total_size changing between messages, bad sizes and many
 * useless peers end with the metadata from the honest one.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { encode } from '../../../src/metainfo/bencode.js';
import { METADATA_PIECE_BYTES, MAX_METADATA_BYTES, metadataPieceCount } from '../../../src/metainfo/metadata.js';
import type { MetadataFetcher, MetadataFetchOptions } from '../../../src/session/metadata-fetch.js';
import { fetchExplained, testFetcher } from '../../helpers/metadata-fetcher.js';
import { encodeExtendedHandshake, parseExtendedHandshake } from '../../../src/wire/extension.js';
import type { Message } from '../../../src/wire/messages.js';
import { encodeMessage } from '../../../src/wire/messages.js';
import { OUR_UT_METADATA_ID, encodeMetadataData, encodeMetadataReject, encodeMetadataRequest, parseMetadataMessage } from '../../../src/wire/ut-metadata.js';
import { RawPeer, type RawPeerServer } from '../../helpers/raw-peer.js';
import { makeFixture, startSession, stopAll, trackDir, type Fixture, type Running } from '../../helpers/swarm.js';
import { expectDropped, expectKept, hostileLeecher } from './harness.js';

const EXTENSIONS = Buffer.from([0, 0, 0, 0, 0, 0x10, 0, 0]);
const RAW_ID = 7;

const servers: RawPeerServer[] = [];
const peers: RawPeer[] = [];
afterEach(async () => {
  for (const p of peers.splice(0)) p.close();
  await Promise.all(servers.splice(0).map((s) => s.close()));
  await stopAll();
});

type Extended = Extract<Message, { type: 'extended' }>;
const isExtended = (id: number) => (m: Message): m is Extended => m.type === 'extended' && m.id === id;

/** A seeding tt whose info dictionary spans 2 metadata pieces (1024 piece hashes). */
async function seed(): Promise<{ fx: Fixture; seed: Running }> {
  const fx = await makeFixture({ files: [{ path: ['data.bin'], size: 1024 * 16 * 1024 }], pieceLength: 16 * 1024 });
  trackDir(fx.work);
  return { fx, seed: await startSession({ meta: fx.meta, root: fx.seedRoot, mode: 'seed' }) };
}

/** A raw leecher with the extension bit, after tt's extended handshake; it offered ut_metadata under `id` (null: no extended handshake sent). */
async function leecher(fx: Fixture, s: Running, id: number | null = RAW_ID): Promise<RawPeer> {
  const peer = await hostileLeecher(fx.meta, s, undefined, EXTENSIONS);
  peers.push(peer);
  if (id !== null) peer.send({ type: 'extended', id: 0, payload: encodeExtendedHandshake({ m: { ut_metadata: id } }) });
  await peer.waitFor(isExtended(0));
  return peer;
}

function metadataMessage(payload: Buffer): Message {
  return { type: 'extended', id: OUR_UT_METADATA_ID, payload };
}

/** The next ut_metadata reply under `id`, parsed. */
async function reply(peer: RawPeer, id = RAW_ID, timeoutMs?: number): Promise<ReturnType<typeof parseMetadataMessage>> {
  const m = (await peer.waitFor(isExtended(id), timeoutMs)) as Extended;
  return parseMetadataMessage(m.payload);
}

describe('a tt seed against hostile ut_metadata requests', () => {
  it.each([
    ['piece 2^40', encode({ msg_type: 0, piece: 2 ** 40 })],
    ['piece -1', encode({ msg_type: 0, piece: -1 })],
    ['piece 640 (beyond any 10 MiB dictionary)', encode({ msg_type: 0, piece: 640 })],
    ['piece as a string', encode({ msg_type: 0, piece: '0' })],
    ['no piece', encode({ msg_type: 0 })],
    ['msg_type as a string', encode({ msg_type: '0', piece: 0 })],
    ['a list, not a dictionary', encode([0, 0])],
    ['nested 10 deep', Buffer.from(`${'l'.repeat(10)}${'e'.repeat(10)}`)],
    ['truncated bencode', Buffer.from('d8:msg_typei0e5:piecei')],
    ['empty payload', Buffer.alloc(0)],
    ['an integer of 400 digits', Buffer.from(`d8:msg_typei0e5:piecei${'9'.repeat(400)}ee`)],
  ])('%s: this connection is dropped, the seed still serves others', async (_name, payload) => {
    const { fx, seed: s } = await seed();
    const bad = await leecher(fx, s);
    bad.send(metadataMessage(payload));
    await expectDropped(bad);
    const good = await leecher(fx, s);
    good.send(metadataMessage(encodeMetadataRequest(1)));
    expect(await reply(good)).toMatchObject({ type: 'data', piece: 1, totalSize: fx.meta.rawInfo.length });
  });

  it('an unknown msg_type is ignored; requests before the extended handshake get nothing; both connections stay and are served later', async () => {
    const { fx, seed: s } = await seed();
    const a = await leecher(fx, s);
    a.send(metadataMessage(encode({ msg_type: 9, piece: 0 })));
    await expectKept(a, 300);
    a.send(metadataMessage(encodeMetadataRequest(0)));
    expect(await reply(a)).toMatchObject({ type: 'data', piece: 0 });

    const b = await leecher(fx, s, null); // no extended handshake from us yet
    b.send(metadataMessage(encodeMetadataRequest(0)));
    await expect(b.waitFor((m) => m.type === 'extended' && m.id !== 0, 400)).rejects.toThrow(/timed out/);
    expect(b.isClosed()).toBe(false);
    b.send({ type: 'extended', id: 0, payload: encodeExtendedHandshake({ m: { ut_metadata: 255 } }) });
    b.send(metadataMessage(encodeMetadataRequest(1)));
    expect(await reply(b, 255)).toMatchObject({ type: 'data', piece: 1 });
  });

  it('a peer that disables ut_metadata (id 0) or offers an impossible id (256, -1) gets no metadata messages and keeps its connection', async () => {
    const { fx, seed: s } = await seed();
    for (const id of [0, 256, -1]) {
      const p = await leecher(fx, s, id);
      p.send(metadataMessage(encodeMetadataRequest(0)));
      await expect(p.waitFor((m) => m.type === 'extended' && m.id !== 0, 300), `id ${id}`).rejects.toThrow(/timed out/);
      expect(p.isClosed(), `id ${id}`).toBe(false);
    }
  });

  it('data and reject messages sent to a seed are ignored (it has the metadata)', async () => {
    const { fx, seed: s } = await seed();
    const p = await leecher(fx, s);
    const junk = randomBytes(fx.meta.rawInfo.length);
    for (let i = 0; i < 50; i++) {
      p.send(metadataMessage(encodeMetadataData(junk, i % 2)));
      p.send(metadataMessage(encodeMetadataReject(0)));
    }
    await expectKept(p, 300);
    p.send(metadataMessage(encodeMetadataRequest(0)));
    const r = await reply(p);
    expect(r?.type === 'data' && r.data.equals(fx.meta.rawInfo.subarray(0, METADATA_PIECE_BYTES))).toBe(true);
  });

  it('a peer flooding requests without reading cannot grow what tt queues for it without bound', async () => {
    const { fx, seed: s } = await seed();
    const ttSockets: Socket[] = [];
    s.listener.on('accepted', (socket) => ttSockets.push(socket));
    const p = await leecher(fx, s);
    const ttSide = ttSockets[ttSockets.length - 1]!;
    p.pauseReading();
    // 4 full copies are allowed (8 pieces of this 2-piece dictionary); after that only rejects.
    // 300,000 requests are ~9 MB on the wire: with nothing read, every reply stays in tt's memory.
    const request = encodeMessage(metadataMessage(encodeMetadataRequest(0)));
    const batch = Buffer.concat(Array.from({ length: 10_000 }, () => request));
    let peak = 0;
    for (let i = 0; i < 30 && !p.isClosed(); i++) {
      p.sendRaw(batch);
      await new Promise((r) => setTimeout(r, 25));
      peak = Math.max(peak, ttSide.writableLength);
    }
    const deadline = Date.now() + 1_000;
    while (Date.now() < deadline && !p.isClosed() && !ttSide.destroyed) {
      peak = Math.max(peak, ttSide.writableLength);
      await new Promise((r) => setTimeout(r, 25));
    }
    peak = Math.max(peak, ttSide.writableLength);
    // the bound: either the peer is dropped, or tt stops answering once its send queue is full
    const dropped = p.isClosed() || ttSide.destroyed;
    expect(dropped || peak < 2 * 1024 * 1024, `tt queued ${peak} bytes of replies for a peer that reads nothing (dropped: ${dropped})`).toBe(true);
  });
});

function fetcher(infoHash: Buffer, ports: number[], extra: Partial<MetadataFetchOptions> = {}): MetadataFetcher {
  return testFetcher(infoHash, ports, { timeoutMs: 4_000, ...extra });
}

interface Behaviour {
  /** metadata_size offered in the extended handshake (undefined: none). */
  size: number | undefined;
  /** Wait this long before the extended handshake. */
  offerDelayMs?: number;
  /** Answer one request: payloads to send (under tt's id), 'close', or nothing. */
  answer: (piece: number, count: number) => Buffer[] | 'close' | undefined;
  /** After the extended handshake, before any request: close at once. */
  closeAfterOffer?: boolean;
}

/**
 * A raw peer the fetcher dials, run by `behave` on every connection it gets
 * (the fetcher redials after a backoff). Counts connections.
 */
async function scriptedSeeder(infoHash: Buffer, behave: Behaviour): Promise<{ server: RawPeerServer; connections: () => number }> {
  const server = await RawPeer.listen({ timeoutMs: 10_000 });
  servers.push(server);
  let connections = 0;
  const serve = async (peer: RawPeer): Promise<void> => {
    await peer.readHandshake();
    peer.sendHandshake(infoHash, undefined, EXTENSIONS);
    const hs = (await peer.waitFor(isExtended(0))) as Extended;
    const theirId = parseExtendedHandshake(hs.payload).m.get('ut_metadata') ?? 0;
    if (behave.offerDelayMs) await new Promise((r) => setTimeout(r, behave.offerDelayMs));
    peer.send({ type: 'extended', id: 0, payload: encodeExtendedHandshake({ m: { ut_metadata: RAW_ID }, ...(behave.size !== undefined ? { metadataSize: behave.size } : {}) }) });
    if (behave.closeAfterOffer) {
      peer.close();
      return;
    }
    let count = 0;
    for (let i = 0; i < 10_000 && !peer.isClosed(); i++) {
      const m = (await peer.waitFor(isExtended(RAW_ID), 9_000)) as Extended;
      const req = parseMetadataMessage(m.payload);
      if (req?.type !== 'request') continue;
      const a = behave.answer(req.piece, count++);
      if (a === 'close') {
        peer.close();
        return;
      }
      for (const payload of a ?? []) peer.send({ type: 'extended', id: theirId, payload });
    }
  };
  // every connection the fetcher makes (it redials after a backoff), at most 20; ends when the server closes
  void (async () => {
    for (let n = 0; n < 20; n++) {
      let peer: RawPeer;
      try {
        peer = await server.accept(20_000);
      } catch {
        return;
      }
      connections++;
      serve(peer).catch(() => undefined);
    }
  })();
  return { server, connections: () => connections };
}

/** Synthetic metadata of `pieces` 16 KiB pieces (the fetcher only checks the SHA-1) and its info hash. */
function synthetic(bytes: number): { info: Buffer; infoHash: Buffer } {
  const info = randomBytes(bytes);
  return { info, infoHash: createHash('sha1').update(info).digest() };
}

const honestAnswer = (info: Buffer) => (piece: number): Buffer[] => [encodeMetadataData(info, piece)];

describe('MetadataFetcher against hostile peers', () => {
  it('a peer offering a wrong metadata_size that closes right away does not lock the honest size out', async () => {
    const { info, infoHash } = synthetic(3 * METADATA_PIECE_BYTES + 100);
    const liar = await scriptedSeeder(infoHash, { size: info.length + 1, closeAfterOffer: true, answer: () => undefined });
    const honest = await scriptedSeeder(infoHash, { size: info.length, offerDelayMs: 300, answer: honestAnswer(info) });
    const f = fetcher(infoHash, [liar.server.port, honest.server.port]);
    const result = await fetchExplained(f);
    expect(result.metadata.equals(info)).toBe(true);
  });

  it('a peer offering a 10 MiB metadata_size that then rejects every request does not lock the honest size out', async () => {
    const { info, infoHash } = synthetic(2 * METADATA_PIECE_BYTES + 7);
    const liar = await scriptedSeeder(infoHash, { size: MAX_METADATA_BYTES, answer: (piece) => [encodeMetadataReject(piece)] });
    const honest = await scriptedSeeder(infoHash, { size: info.length, offerDelayMs: 300, answer: honestAnswer(info) });
    const f = fetcher(infoHash, [liar.server.port, honest.server.port]);
    const result = await fetchExplained(f);
    expect(result.metadata.equals(info)).toBe(true);
  });

  it('total_size changing between data messages drops that peer; the honest peer supplies the metadata', async () => {
    const { info, infoHash } = synthetic(4 * METADATA_PIECE_BYTES);
    const other = randomBytes(5 * METADATA_PIECE_BYTES);
    // first piece honest, then data claiming another total size (still well-formed for that size)
    const shifty = await scriptedSeeder(infoHash, {
      size: info.length,
      answer: (piece, count) => [count === 0 ? encodeMetadataData(info, piece) : encodeMetadataData(other, piece)],
    });
    const honest = await scriptedSeeder(infoHash, { size: info.length, offerDelayMs: 200, answer: honestAnswer(info) });
    const f = fetcher(infoHash, [shifty.server.port, honest.server.port]);
    const closed: string[] = [];
    f.on('peer-closed', (_peer, reason) => closed.push(reason));
    const result = await f.run();
    expect(result.metadata.equals(info)).toBe(true);
    expect(closed.some((r) => /total_size/.test(r)), closed.join(' | ')).toBe(true);
  });

  it('data messages with impossible total_size (0, over 10 MiB, piece beyond it) or a wrong length drop the sender', async () => {
    const { info, infoHash } = synthetic(2 * METADATA_PIECE_BYTES);
    const bad = [
      Buffer.concat([encode({ msg_type: 1, piece: 0, total_size: 0 }), info.subarray(0, 10)]),
      Buffer.concat([encode({ msg_type: 1, piece: 0, total_size: MAX_METADATA_BYTES + 1 }), info.subarray(0, METADATA_PIECE_BYTES)]),
      Buffer.concat([encode({ msg_type: 1, piece: 5, total_size: info.length }), info.subarray(0, METADATA_PIECE_BYTES)]),
      Buffer.concat([encode({ msg_type: 1, piece: 0, total_size: info.length }), info.subarray(0, METADATA_PIECE_BYTES - 1)]),
      Buffer.concat([encode({ msg_type: 1, piece: 0, total_size: -5 }), info.subarray(0, 10)]),
    ];
    const liars = await Promise.all(bad.map((payload) => scriptedSeeder(infoHash, { size: info.length, answer: () => [payload] })));
    const honest = await scriptedSeeder(infoHash, { size: info.length, offerDelayMs: 300, answer: honestAnswer(info) });
    const f = fetcher(infoHash, [...liars.map((l) => l.server.port), honest.server.port]);
    const closed: string[] = [];
    f.on('peer-closed', (_peer, reason) => closed.push(reason));
    const result = await f.run();
    expect(result.metadata.equals(info)).toBe(true);
    expect(closed.filter((r) => /protocol error/.test(r)).length, closed.join(' | ')).toBeGreaterThanOrEqual(bad.length);
  });

  it('40 useless peers (no ut_metadata, or closing on the first request) and one honest listed last: the metadata still arrives', async () => {
    const { info, infoHash } = synthetic(METADATA_PIECE_BYTES + 1);
    const useless = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        scriptedSeeder(infoHash, i % 2 === 0 ? { size: undefined, answer: () => undefined } : { size: info.length, answer: () => 'close' }),
      ),
    );
    const honest = await scriptedSeeder(infoHash, { size: info.length, offerDelayMs: 100, answer: honestAnswer(info) });
    const f = fetcher(infoHash, [...useless.map((u) => u.server.port), honest.server.port]);
    const result = await f.run();
    expect(result.metadata.equals(info)).toBe(true);
    expect(result.peers.map((p) => p.port)).toContain(honest.server.port);
  });

  it('a lone peer offering a 10 MiB metadata_size that never answers: the fetch ends at its own timeout with NO_PEERS', async () => {
    const infoHash = randomBytes(20);
    const stall = await scriptedSeeder(infoHash, { size: MAX_METADATA_BYTES, answer: () => undefined });
    const f = fetcher(infoHash, [stall.server.port], { timeoutMs: 1_500 });
    const t0 = Date.now();
    await expect(f.run()).rejects.toMatchObject({ code: 'NO_PEERS' });
    expect(Date.now() - t0).toBeLessThan(3_000);
    expect(metadataPieceCount(MAX_METADATA_BYTES)).toBe(640);
  });
});
