/**
 * BEP 9 both ways over real sockets. Serving: a seeding tt advertises
 * ut_metadata and metadata_size, answers every piece of its info dictionary,
 * rejects what is out of range or beyond a few full copies, and says nothing
 * of a private torrent. Fetching (MetadataFetcher): the dictionary comes back
 * byte for byte from tt seeds; lying, silent or mute raw peers are dropped or
 * banned and the fetch still ends: with the metadata from an honest peer, or
 * with a one-line error when there is none.
 */
import { createHash, randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { TtError } from '../../../src/core/errors.js';
import { METADATA_PIECE_BYTES, metadataPieceCount } from '../../../src/metainfo/metadata.js';
import type { MetadataFetcher, MetadataFetchOptions } from '../../../src/session/metadata-fetch.js';
import { fetchExplained, testFetcher } from '../../helpers/metadata-fetcher.js';
import { encodeExtendedHandshake, parseExtendedHandshake } from '../../../src/wire/extension.js';
import type { Message } from '../../../src/wire/messages.js';
import { OUR_UT_METADATA_ID, encodeMetadataData, encodeMetadataRequest, parseMetadataMessage } from '../../../src/wire/ut-metadata.js';
import { RawPeer, type RawPeerServer } from '../../helpers/raw-peer.js';
import { makeFixture, startSession, stopAll, trackDir, type Fixture, type Running } from '../../helpers/swarm.js';
import { hostileLeecher } from '../hostile/harness.js';

const EXTENSIONS = Buffer.from([0, 0, 0, 0, 0, 0x10, 0, 0]);
/** The id our raw peers ask tt to use for ut_metadata. */
const RAW_UT_METADATA_ID = 7;

const servers: RawPeerServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
  await stopAll();
});

/** A seeding tt whose info dictionary spans several 16 KiB metadata pieces (1024 piece hashes). */
async function bigSeed(opts: { private?: boolean } = {}): Promise<{ fx: Fixture; seed: Running }> {
  const fx = await makeFixture({ files: [{ path: ['data.bin'], size: 1024 * 16 * 1024 }], pieceLength: 16 * 1024 });
  trackDir(fx.work);
  const meta = opts.private ? { ...fx.meta, private: true } : fx.meta;
  const seed = await startSession({ meta, root: fx.seedRoot, mode: 'seed' });
  return { fx, seed };
}

const isExtended = (id: number) => (m: Message): m is Extract<Message, { type: 'extended' }> => m.type === 'extended' && m.id === id;

async function extendedPeer(fx: Fixture, seed: Running): Promise<{ peer: RawPeer; theirs: ReturnType<typeof parseExtendedHandshake> }> {
  const peer = await hostileLeecher(fx.meta, seed, undefined, EXTENSIONS);
  peer.send({ type: 'extended', id: 0, payload: encodeExtendedHandshake({ m: { ut_metadata: RAW_UT_METADATA_ID } }) });
  const hs = await peer.waitFor(isExtended(0));
  return { peer, theirs: parseExtendedHandshake((hs as Extract<Message, { type: 'extended' }>).payload) };
}

async function metadataReply(peer: RawPeer, piece: number, from: number): Promise<ReturnType<typeof parseMetadataMessage>> {
  peer.send({ type: 'extended', id: OUR_UT_METADATA_ID, payload: encodeMetadataRequest(piece) });
  const seen = peer.received.length;
  let index = -1;
  await peer.waitFor((m) => {
    index = peer.received.indexOf(m);
    return index >= Math.max(seen, from) && isExtended(RAW_UT_METADATA_ID)(m);
  });
  return parseMetadataMessage((peer.received[index] as Extract<Message, { type: 'extended' }>).payload);
}

describe('tt serves its metadata (BEP 9)', () => {
  it('advertises ut_metadata with metadata_size, and every piece reassembles to the info dictionary', async () => {
    const { fx, seed } = await bigSeed();
    const { peer, theirs } = await extendedPeer(fx, seed);
    expect(theirs.m.get('ut_metadata')).toBe(OUR_UT_METADATA_ID);
    expect(theirs.metadataSize).toBe(fx.meta.rawInfo.length);
    const count = metadataPieceCount(fx.meta.rawInfo.length);
    expect(count).toBeGreaterThan(1);
    const parts: Buffer[] = [];
    for (let piece = 0; piece < count; piece++) {
      const reply = await metadataReply(peer, piece, 0);
      expect(reply).toMatchObject({ type: 'data', piece, totalSize: fx.meta.rawInfo.length });
      if (reply?.type === 'data') parts.push(Buffer.from(reply.data));
    }
    expect(Buffer.concat(parts).equals(fx.meta.rawInfo)).toBe(true);
    expect(parts[0]!.length).toBe(METADATA_PIECE_BYTES);
  });

  it('rejects a piece out of range and requests beyond four full copies; a peer that keeps asking is closed', async () => {
    const { fx, seed } = await bigSeed();
    const { peer } = await extendedPeer(fx, seed);
    const count = metadataPieceCount(fx.meta.rawInfo.length);
    expect(await metadataReply(peer, count, 0)).toEqual({ type: 'reject', piece: count });
    // one request used; the allowance is 4 copies = 4 * count requests
    for (let i = 1; i < 4 * count; i++) expect((await metadataReply(peer, 0, 0))?.type).toBe('data');
    expect(await metadataReply(peer, 0, 0)).toEqual({ type: 'reject', piece: 0 });
    expect(peer.isClosed()).toBe(false);
    // a few more rejects, then the connection goes: endless requests cost tt nothing more
    for (let i = 0; i < 20; i++) peer.send({ type: 'extended', id: OUR_UT_METADATA_ID, payload: encodeMetadataRequest(0) });
    await peer.waitClosed(3_000);
  });

  it('a private torrent: no ut_metadata, no metadata_size, and requests go unanswered', async () => {
    const { fx, seed } = await bigSeed({ private: true });
    const { peer, theirs } = await extendedPeer(fx, seed);
    expect(theirs.m.has('ut_metadata')).toBe(false);
    expect(theirs.metadataSize).toBeUndefined();
    peer.send({ type: 'extended', id: OUR_UT_METADATA_ID, payload: encodeMetadataRequest(0) });
    await expect(peer.waitFor(isExtended(RAW_UT_METADATA_ID), 500)).rejects.toThrow();
  });
});

function fetcher(infoHash: Buffer, ports: number[], extra: Partial<MetadataFetchOptions> = {}): MetadataFetcher {
  return testFetcher(infoHash, ports, { timeoutMs: 5_000, ...extra });
}

/**
 * A raw seeder for the fetcher to dial: it handshakes with the extension bit,
 * offers ut_metadata of `size` bytes, and answers each request with `answer`.
 */
async function rawMetadataSeeder(
  infoHash: Buffer,
  size: number | undefined,
  answer: (piece: number) => Buffer | Buffer[] | undefined,
  offerDelayMs = 0,
  answerDelayMs = 0,
): Promise<{ server: RawPeerServer; served: Promise<RawPeer> }> {
  const server = await RawPeer.listen();
  servers.push(server);
  const served = (async () => {
    const peer = await server.accept(10_000);
    await peer.readHandshake();
    peer.sendHandshake(infoHash, undefined, EXTENSIONS);
    const hs = await peer.waitFor(isExtended(0));
    const ours = parseExtendedHandshake((hs as Extract<Message, { type: 'extended' }>).payload);
    const theirId = ours.m.get('ut_metadata') ?? 0;
    if (offerDelayMs > 0) await new Promise((resolve) => setTimeout(resolve, offerDelayMs));
    peer.send({ type: 'extended', id: 0, payload: encodeExtendedHandshake({ m: { ut_metadata: RAW_UT_METADATA_ID }, ...(size !== undefined ? { metadataSize: size } : {}) }) });
    let handled = 0;
    while (!peer.isClosed()) {
      let req: ReturnType<typeof parseMetadataMessage>;
      try {
        const m = await peer.waitFor((x) => isExtended(RAW_UT_METADATA_ID)(x) && peer.received.indexOf(x) >= handled, 8_000);
        handled = peer.received.indexOf(m) + 1;
        req = parseMetadataMessage((m as Extract<Message, { type: 'extended' }>).payload);
      } catch {
        break;
      }
      if (req?.type !== 'request') continue;
      if (answerDelayMs > 0) await new Promise((resolve) => setTimeout(resolve, answerDelayMs));
      const reply = answer(req.piece) ?? [];
      for (const payload of Array.isArray(reply) ? reply : [reply]) peer.send({ type: 'extended', id: theirId, payload });
    }
    return peer;
  })();
  served.catch(() => undefined);
  return { server, served };
}

describe('MetadataFetcher', () => {
  it('fetches the info dictionary from two tt seeds, byte for byte, and names them for the download', async () => {
    const a = await bigSeed();
    const b = await startSession({ meta: a.fx.meta, root: a.fx.seedRoot, mode: 'seed' });
    const f = fetcher(a.fx.meta.infoHash, [a.seed.address.port, b.address.port]);
    const result = await f.run();
    expect(result.metadata.equals(a.fx.meta.rawInfo)).toBe(true);
    expect(result.peers.map((p) => p.port).sort()).toEqual([a.seed.address.port, b.address.port].sort());
  });

  it('a tracker (or the DHT) handing us our own address back: the fetcher never dials itself', async () => {
    const { fx, seed } = await bigSeed();
    // stands where our listener would be: any connection to it is the fetcher dialing itself
    const self = await RawPeer.listen();
    servers.push(self);
    let dialedSelf = false;
    void self.accept(10_000).then(() => (dialedSelf = true), () => undefined);
    const f = fetcher(fx.meta.infoHash, [], {
      trackers: ['http://127.0.0.1:9/announce'],
      port: self.port,
      announce: async () => ({ peers: [{ host: '127.0.0.1', port: self.port }, { host: '127.0.0.1', port: seed.address.port }], interval: 1800 }),
    });
    const result = await fetchExplained(f);
    expect(result.metadata.equals(fx.meta.rawInfo)).toBe(true);
    await new Promise((r) => setTimeout(r, 200));
    expect(dialedSelf).toBe(false);
    expect(result.peers.map((p) => p.port)).toEqual([seed.address.port]);
  });

  it('a lone peer sending a wrong dictionary is banned; the honest seed then supplies it', async () => {
    const { fx, seed } = await bigSeed();
    const info = fx.meta.rawInfo;
    const forged = Buffer.from(info);
    forged[forged.length - 2] = forged[forged.length - 2]! ^ 0xff;
    const liar = await rawMetadataSeeder(fx.meta.infoHash, info.length, (piece) => encodeMetadataData(forged, piece));
    // the liar alone first: it must be banned, and the fetch not end
    const f = fetcher(fx.meta.infoHash, [liar.server.port], { timeoutMs: 15_000 });
    const banned: string[] = [];
    f.on('peer-banned', (peer) => banned.push(peer));
    const result = f.run();
    const liarPeer = await liar.served;
    await liarPeer.waitClosed(5_000);
    expect(banned).toEqual([`127.0.0.1:${liar.server.port}`]);
    // now an honest peer appears (as a tracker would add it)
    f.addPeers([seed.address]);
    expect((await result).metadata.equals(info)).toBe(true);
  });

  it('a liar that also lies about the size cannot lock the size in: after its ban, the honest size is used', async () => {
    const { fx, seed } = await bigSeed();
    const info = fx.meta.rawInfo;
    const forged = Buffer.concat([info, Buffer.from('e')]); // one byte longer, so a different metadata_size
    const liar = await rawMetadataSeeder(fx.meta.infoHash, forged.length, (piece) => encodeMetadataData(forged, piece));
    const f = fetcher(fx.meta.infoHash, [liar.server.port], { timeoutMs: 15_000 });
    const result = f.run();
    await (await liar.served).waitClosed(5_000);
    f.addPeers([seed.address]);
    expect((await result).metadata.equals(info)).toBe(true);
  });

  it('several senders and a wrong result: one peer at a time supplies everything, the liar is found', async () => {
    // synthetic metadata of 20 pieces: the fetcher only checks its SHA-1
    const info = randomBytes(20 * METADATA_PIECE_BYTES);
    const infoHash = createHash('sha1').update(info).digest();
    const forged = Buffer.from(info);
    for (let i = 0; i < forged.length; i += METADATA_PIECE_BYTES) forged[i] = forged[i]! ^ 0xff; // every piece spoiled
    // the liar is asked first but answers slowly, so the honest peer (offering a little later) sends the rest
    const liar = await rawMetadataSeeder(infoHash, info.length, (piece) => encodeMetadataData(forged, piece), 0, 100);
    const honest = await rawMetadataSeeder(infoHash, info.length, (piece) => encodeMetadataData(info, piece), 50);
    const f = fetcher(infoHash, [liar.server.port, honest.server.port], { timeoutMs: 15_000 });
    const warnings: string[] = [];
    const banned: string[] = [];
    f.on('warning', (w) => warnings.push(w));
    f.on('peer-banned', (peer) => banned.push(peer));
    const result = await f.run();
    expect(result.metadata.equals(info)).toBe(true);
    expect(warnings.some((w) => w.includes('one peer at a time')), warnings.join('; ')).toBe(true);
    // whoever was asked alone first: only the liar can have been banned
    expect(banned.every((p) => p === `127.0.0.1:${liar.server.port}`)).toBe(true);
    expect(result.peers.map((p) => p.port)).not.toContain(banned.length > 0 ? liar.server.port : -1);
  });

  it('a peer without ut_metadata, or with an impossible size, is dropped; no peer left ends in NO_PEERS', async () => {
    const infoHash = Buffer.alloc(20, 9);
    const mute = await rawMetadataSeeder(infoHash, undefined, () => undefined);
    const huge = await rawMetadataSeeder(infoHash, 11 * 1024 * 1024, () => undefined);
    const closed: string[] = [];
    const f = fetcher(infoHash, [mute.server.port, huge.server.port], { timeoutMs: 1_500 });
    f.on('peer-closed', (_peer, reason) => closed.push(reason));
    const err = await f.run().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(TtError);
    expect((err as TtError).code).toBe('NO_PEERS');
    expect((err as TtError).message).toMatch(/metadata/);
    expect(closed.filter((r) => r.includes('does not offer the metadata'))).toHaveLength(2);
  });

  it('a peer answering what was never asked is closed after a bounded number of such pieces', async () => {
    const infoHash = Buffer.alloc(20, 3);
    const size = 10 * METADATA_PIECE_BYTES;
    const junk = Buffer.alloc(size, 1);
    // the fetcher asks for pieces 0-7; every answer is 40 copies of piece 9
    const spammer = await rawMetadataSeeder(infoHash, size, () => Array.from({ length: 40 }, () => encodeMetadataData(junk, 9)));
    const reasons: string[] = [];
    const f = fetcher(infoHash, [spammer.server.port], { timeoutMs: 3_000 });
    f.on('peer-closed', (_p, reason) => reasons.push(reason));
    await expect(f.run()).rejects.toThrow(/metadata/);
    expect(reasons.some((r) => r.includes('did not ask for'))).toBe(true);
  });

  it('no tracker and no peer: a usage error at once', async () => {
    const f = fetcher(Buffer.alloc(20, 1), []);
    await expect(f.run()).rejects.toMatchObject({ code: 'USAGE' });
  });
});
