/**
 * A magnet's metadata phase (MetadataFetcher) against peers that hold the
 * fetch back without ever sending a wrong byte, over real loopback sockets.
 *
 * Before, tt collected only the size the first peer announced (its
 * metadata_size), and a request was given to another peer only after 10 s:
 * a peer announcing 10 MiB and answering each request after 9 s kept the
 * honest peer beside it waiting for the whole fetch (a review saw exit 5
 * after 30 s, ~12 minutes by arithmetic), and a silent peer of the right
 * size cost 10 s. Now every announced size is collected at once (smallest
 * first, up to twice the 10 MiB limit in all) and a piece unanswered for
 * METADATA_REASK_MS is asked of another peer too.
 */
import { createHash, randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { MAX_METADATA_BYTES, METADATA_PIECE_BYTES } from '../../../src/metainfo/metadata.js';
import { encodeExtendedHandshake, type ExtendedHandshake } from '../../../src/wire/extension.js';
import { encodeMetadataData, parseMetadataMessage } from '../../../src/wire/ut-metadata.js';
import {
  RAW_UT_METADATA_ID,
  closeScriptedPeers,
  fetchExplained,
  isExtended,
  metadataSeed,
  scriptedPeers,
  serveMetadata,
  testFetcher,
  type Extended,
} from '../../helpers/metadata-fetcher.js';
import type { RawPeer } from '../../helpers/raw-peer.js';
import { stopAll } from '../../helpers/swarm.js';
import { until } from '../../helpers/until.js';

afterEach(async () => {
  await closeScriptedPeers();
  await stopAll();
});

/** METADATA_REASK_MS (2 s) and a tick (1 s), with room: far below METADATA_REQUEST_TIMEOUT_MS (10 s). */
const BEFORE_THE_REQUEST_TIMEOUT_MS = 4_500;
const delay = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Synthetic metadata (the fetcher only checks its SHA-1) and its info hash. */
function synthetic(bytes: number): { info: Buffer; infoHash: Buffer } {
  const info = randomBytes(bytes);
  return { info, infoHash: createHash('sha1').update(info).digest() };
}

/** Piece numbers the fetcher asked of `peer` so far. */
function requested(peer: RawPeer): number[] {
  return peer.received.filter(isExtended(RAW_UT_METADATA_ID)).flatMap((m) => {
    const req = parseMetadataMessage((m as Extended).payload);
    return req?.type === 'request' ? [req.piece] : [];
  });
}

/**
 * Announces `size` and answers every request after `answerAfterMs` (just
 * inside the fetcher's 10 s request timeout) with a well-formed piece of a
 * `size`-byte dictionary of junk: never a protocol error, never finished in time.
 */
function slowAnswers(size: number, answerAfterMs: number) {
  const junk = Buffer.alloc(size, 7);
  return async (peer: RawPeer, theirs: ExtendedHandshake): Promise<void> => {
    const id = theirs.m.get('ut_metadata') ?? 0;
    for (;;) {
      const req = parseMetadataMessage(((await peer.waitFor(isExtended(RAW_UT_METADATA_ID), 60_000)) as Extended).payload);
      if (req?.type !== 'request') continue;
      setTimeout(() => {
        if (!peer.isClosed()) peer.send({ type: 'extended', id, payload: encodeMetadataData(junk, req.piece) });
      }, answerAfterMs).unref();
    }
  };
}

/** Offers `size` only after `offerDelayMs` (so other peers' sizes are seen first), then runs `then`. */
function offerLate(size: number, offerDelayMs: number, then: (peer: RawPeer, theirs: ExtendedHandshake) => Promise<void>) {
  return async (peer: RawPeer, theirs: ExtendedHandshake): Promise<void> => {
    await delay(offerDelayMs);
    peer.send({ type: 'extended', id: 0, payload: encodeExtendedHandshake({ m: { ut_metadata: RAW_UT_METADATA_ID }, metadataSize: size }) });
    await then(peer, theirs);
  };
}

/** An honest peer that offers its size after `offerDelayMs`, then serves `info`. */
function lateHonest(info: Buffer, offerDelayMs: number) {
  return offerLate(info.length, offerDelayMs, (peer, theirs) => serveMetadata(peer, theirs, info));
}

describe('MetadataFetcher: a peer cannot hold the honest ones back', () => {
  it('a peer announcing 10 MiB and answering each request after 9 s: a tt seed that turns up beside it supplies the metadata within seconds', async () => {
    const { seed, info, infoHash } = await metadataSeed();
    const hostile = await scriptedPeers(infoHash, { m: { ut_metadata: RAW_UT_METADATA_ID }, metadataSize: MAX_METADATA_BYTES }, slowAnswers(MAX_METADATA_BYTES, 9_000));
    const f = testFetcher(infoHash, [hostile.port], { timeoutMs: 9_000 });
    const result = fetchExplained(f);
    result.catch(() => undefined);
    // the hostile size is being collected before the honest peer is known (as a tracker would add it)
    await until(() => hostile.connections.length > 0 && requested(hostile.connections[0]!).length > 0, 5_000, 'the hostile peer asked');
    const t0 = Date.now();
    f.addPeers([seed.address]);
    expect((await result).metadata.equals(info)).toBe(true);
    expect(Date.now() - t0).toBeLessThan(3_000);
  });

  it('slow peers of sizes near 10 MiB and a small honest one: the small size is collected at once; sizes of more than 20 MiB in all are not', async () => {
    const { info, infoHash } = synthetic(3 * METADATA_PIECE_BYTES + 123);
    const big = MAX_METADATA_BYTES;
    const offer = (size: number) => ({ m: { ut_metadata: RAW_UT_METADATA_ID }, metadataSize: size });
    const first = await scriptedPeers(infoHash, offer(big - 2), slowAnswers(big - 2, 9_000));
    const second = await scriptedPeers(infoHash, offer(big - 1), slowAnswers(big - 1, 9_000));
    // offers once those two are being collected: 10 MiB more does not fit beside them
    const third = await scriptedPeers(infoHash, undefined, offerLate(big, 300, slowAnswers(big, 9_000)));
    // then the honest size: smaller than all, it is collected at once (the 10 MiB - 1 size makes room)
    const honest = await scriptedPeers(infoHash, undefined, lateHonest(info, 600));
    const f = testFetcher(infoHash, [first.port, second.port, third.port, honest.port], { timeoutMs: 9_000 });
    const t0 = Date.now();
    const result = await fetchExplained(f);
    expect(result.metadata.equals(info)).toBe(true);
    expect(Date.now() - t0).toBeLessThan(3_000);
    const asked = [first, second, third].map((h) => (h.connections[0] ? requested(h.connections[0]).length : -1));
    expect(asked, 'requests per slow peer').toEqual([8, 8, 0]);
  });

  it('a silent peer announcing the right size beside an honest one: its pieces are asked of the honest peer after 2 s, not 10', async () => {
    const { info, infoHash } = synthetic(3 * METADATA_PIECE_BYTES + 7);
    const silent = await scriptedPeers(infoHash, { m: { ut_metadata: RAW_UT_METADATA_ID }, metadataSize: info.length }, () => new Promise<void>(() => undefined));
    const honest = await scriptedPeers(infoHash, undefined, lateHonest(info, 300));
    const f = testFetcher(infoHash, [silent.port, honest.port], { timeoutMs: 8_000 });
    const t0 = Date.now();
    const result = await fetchExplained(f);
    expect(result.metadata.equals(info)).toBe(true);
    // the silent peer was asked first (for every piece: the honest one had not offered yet)
    expect(requested(silent.connections[0]!).sort()).toEqual([0, 1, 2, 3]);
    // a re-ask after METADATA_REASK_MS (2 s), seen on the fetcher's 1 s tick; before, the 10 s request timeout
    expect(Date.now() - t0).toBeLessThan(BEFORE_THE_REQUEST_TIMEOUT_MS);
  });

  it('a peer answering each request after 9 s with the right size beside an honest one: no 10 s wait either, and both are named for the download', async () => {
    const { info, infoHash } = synthetic(2 * METADATA_PIECE_BYTES);
    const slowId = { id: 0 };
    const slow = await scriptedPeers(infoHash, { m: { ut_metadata: RAW_UT_METADATA_ID }, metadataSize: info.length }, async (peer, theirs) => {
      slowId.id = theirs.m.get('ut_metadata') ?? 0;
      for (;;) {
        const req = parseMetadataMessage(((await peer.waitFor(isExtended(RAW_UT_METADATA_ID), 60_000)) as Extended).payload);
        if (req?.type === 'request') setTimeout(() => !peer.isClosed() && peer.send({ type: 'extended', id: slowId.id, payload: encodeMetadataData(info, req.piece) }), 9_000).unref();
      }
    });
    const honest = await scriptedPeers(infoHash, undefined, lateHonest(info, 300));
    const f = testFetcher(infoHash, [slow.port, honest.port], { timeoutMs: 8_000 });
    const t0 = Date.now();
    const result = await fetchExplained(f);
    expect(result.metadata.equals(info)).toBe(true);
    expect(Date.now() - t0).toBeLessThan(BEFORE_THE_REQUEST_TIMEOUT_MS);
    expect(result.peers.map((p) => p.port).sort()).toEqual([slow.port, honest.port].sort());
  });
});
