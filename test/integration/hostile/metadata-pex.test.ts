/**
 * Hostile ut_pex (BEP 11) senders against a magnet's metadata phase
 * (MetadataFetcher), with the download's bounds: a message over 64 KiB, not
 * bencode, or not a dictionary closes the sender and nothing it names is
 * dialed; a flood (messages closer than 20 s) is ignored and the sixth early
 * one closes it; one connection adds at most 200 peers over its life; one
 * host named under 199 ports keeps 32 of them; a peer offering ut_pex without
 * the metadata that never sends a list holds its slot only
 * METADATA_REQUEST_TIMEOUT_MS. Addresses 127.0.x.y with x >= 3 and port 9:
 * nothing listens there, so dials are refused at once.
 */
import { createHash, randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { encode } from '../../../src/metainfo/bencode.js';
import { METADATA_PIECE_BYTES } from '../../../src/metainfo/metadata.js';
import { METADATA_REQUEST_TIMEOUT_MS } from '../../../src/session/metadata-fetch.js';
import { MAX_KNOWN_PER_IP, PeerPool } from '../../../src/session/peer-pool.js';
import { MAX_EARLY_PEX, MAX_PEX_LEARNED, PEX_MIN_GAP_MS } from '../../../src/session/pex.js';
import { MAX_PEX_BYTES, UT_PEX } from '../../../src/wire/pex.js';
import { RAW_UT_METADATA_ID, RAW_UT_PEX_ID, closeScriptedPeers, fetchExplained, fetcherLog, metadataSeed, isExtended, scriptedPeers, sendPex, testFetcher } from '../../helpers/metadata-fetcher.js';
import { stopAll } from '../../helpers/swarm.js';
import { until } from '../../helpers/until.js';

afterEach(async () => {
  vi.useRealTimers();
  await closeScriptedPeers();
  await stopAll();
});

/** Synthetic metadata (the fetcher only checks its SHA-1) and its info hash. */
function synthetic(bytes: number): { info: Buffer; infoHash: Buffer } {
  const info = randomBytes(bytes);
  return { info, infoHash: createHash('sha1').update(info).digest() };
}


/** n distinct addresses 127.0.x.y:9 (x >= 3), from the k-th on. */
const fakes = (n: number, k = 0): { host: string; port: number }[] => Array.from({ length: n }, (_, i) => ({ host: `127.0.${3 + ((k + i) >> 8)}.${(k + i) & 255}`, port: 9 }));


const delay = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('hostile ut_pex in the metadata phase', () => {
  it('over 64 KiB, not bencode, or not a dictionary: the sender is closed and nothing it names is dialed', async () => {
    const { infoHash } = synthetic(100);
    const named = await scriptedPeers(infoHash, undefined);
    const entry = Buffer.from([127, 0, 0, 1, named.port >> 8, named.port & 255]);
    const oversized = (): Buffer => {
      for (let pad = MAX_PEX_BYTES - 40; ; ) {
        const m = encode({ added: entry, dropped: Buffer.alloc(0), x: Buffer.alloc(pad) });
        if (m.length === MAX_PEX_BYTES + 1) return m;
        pad += MAX_PEX_BYTES + 1 - m.length;
      }
    };
    const bad = [oversized(), Buffer.from('garbage, not bencode'), encode([{ added: entry }])];
    const senders = await Promise.all(
      bad.map((payload) =>
        scriptedPeers(infoHash, { m: { [UT_PEX]: RAW_UT_PEX_ID } }, (peer, theirs) => {
          peer.send({ type: 'extended', id: theirs.m.get(UT_PEX)!, payload });
        }),
      ),
    );
    const f = testFetcher(infoHash, senders.map((s) => s.port), { timeoutMs: 1_500 });
    const seen = fetcherLog(f);
    await expect(f.run()).rejects.toMatchObject({ code: 'NO_PEERS' });
    const reasons = senders.map((s) => seen.closed.find((c) => c.startsWith(`127.0.0.1:${s.port}: `)));
    expect(reasons[0]).toMatch(/protocol error: ut_pex message of 65537 bytes/);
    expect(reasons[1]).toMatch(/protocol error: bad ut_pex message/);
    expect(reasons[2]).toMatch(/protocol error: bad ut_pex message: not a dictionary/);
    expect(seen.pex).toEqual([]);
    expect(named.connections).toHaveLength(0);
  });

  it(`a flood: messages closer than ${PEX_MIN_GAP_MS / 1000} s are ignored, the ${MAX_EARLY_PEX + 1}th early one closes the sender`, async () => {
    const { info, infoHash } = synthetic(2 * METADATA_PIECE_BYTES);
    const targets = await Promise.all(Array.from({ length: MAX_EARLY_PEX + 2 }, () => scriptedPeers(infoHash, undefined)));
    // offers the metadata (so it is not closed for lacking it) and never answers a request
    const flooder = await scriptedPeers(infoHash, { m: { ut_metadata: RAW_UT_METADATA_ID, [UT_PEX]: RAW_UT_PEX_ID }, metadataSize: info.length }, (peer, theirs) => {
      for (const t of targets) sendPex(peer, theirs.m.get(UT_PEX)!, [{ host: '127.0.0.1', port: t.port }]);
    });
    const f = testFetcher(infoHash, [flooder.port], { timeoutMs: 5_000 });
    const seen = fetcherLog(f);
    const result = f.run();
    result.catch(() => undefined);
    await until(() => seen.closed.some((c) => c.startsWith(`127.0.0.1:${flooder.port}: `)), 3_000, 'the flooder closed');
    expect(seen.closed.find((c) => c.startsWith(`127.0.0.1:${flooder.port}: `))).toMatch(/protocol error: ut_pex messages too often/);
    await until(() => targets[0]!.connections.length > 0, 2_000, 'the first named peer dialed');
    await delay(300);
    expect(targets.slice(1).map((t) => t.connections.length)).toEqual(targets.slice(1).map(() => 0));
    expect(seen.pex).toEqual([[`127.0.0.1:${flooder.port}`, 1, 1]]);
    f.stop();
  });

  it(`one connection adds at most ${MAX_PEX_LEARNED} peers over its life, however many lists it sends`, async () => {
    // Date is frozen, then moved past the gap: timers and sockets run as usual
    vi.useFakeTimers({ toFake: ['Date'] });
    const { info, infoHash } = synthetic(2 * METADATA_PIECE_BYTES);
    // `first` offers the size being collected and never answers, so `lister` (another size) is never
    // asked and has no request to time out when the clock jumps
    const first = await scriptedPeers(infoHash, { m: { ut_metadata: RAW_UT_METADATA_ID }, metadataSize: info.length }, async (peer) => {
      await peer.waitFor(isExtended(RAW_UT_METADATA_ID));
    });
    let second = false;
    const lister = await scriptedPeers(infoHash, undefined, async (peer, theirs) => {
      await until(() => first.connections[0]?.received.some(isExtended(RAW_UT_METADATA_ID)) === true, 5_000, 'a request to the first peer');
      peer.send({ type: 'extended', id: 0, payload: encode({ m: { ut_metadata: RAW_UT_METADATA_ID, [UT_PEX]: RAW_UT_PEX_ID }, metadata_size: info.length + 1 }) });
      const id = theirs.m.get(UT_PEX)!;
      sendPex(peer, id, fakes(MAX_PEX_LEARNED));
      await until(() => second, 10_000, 'the second list');
      sendPex(peer, id, fakes(MAX_PEX_LEARNED, MAX_PEX_LEARNED));
    });
    const f = testFetcher(infoHash, [first.port, lister.port], { timeoutMs: 10_000 });
    const seen = fetcherLog(f);
    const result = f.run();
    result.catch(() => undefined);
    await until(() => seen.pex.length === 1, 5_000, 'the first list');
    vi.setSystemTime(Date.now() + PEX_MIN_GAP_MS + 1_000);
    second = true;
    await until(() => seen.pex.length === 2, 5_000, 'the second list taken');
    expect(seen.pex).toEqual([
      [`127.0.0.1:${lister.port}`, MAX_PEX_LEARNED, MAX_PEX_LEARNED],
      [`127.0.0.1:${lister.port}`, MAX_PEX_LEARNED, 0],
    ]);
    expect(seen.closed.filter((c) => c.startsWith(`127.0.0.1:${lister.port}: `))).toEqual([]);
    f.stop();
  });

  it(`one host named under 199 ports: none is lost to the cap (those not dialed are handed on), and the download's pool dials ${MAX_KNOWN_PER_IP} of them at most, queueing the rest (fb233fb)`, async () => {
    const { seed, info, infoHash } = await metadataSeed();
    const ports = Array.from({ length: 199 }, (_, i) => ({ host: '127.0.9.9', port: 1000 + i }));
    const r = await scriptedPeers(infoHash, { m: { [UT_PEX]: RAW_UT_PEX_ID } }, (peer, theirs) => sendPex(peer, theirs.m.get(UT_PEX)!, [...ports, seed.address]));
    const f = testFetcher(infoHash, [r.port]);
    const seen = fetcherLog(f);
    const result = await fetchExplained(f);
    expect(result.metadata.equals(info)).toBe(true);
    expect(seen.pex).toEqual([[`127.0.0.1:${r.port}`, 200, 200]]);
    // the fetcher dials that IP's dialable ones meanwhile (dead ports: forgotten); the rest are handed on
    const handed = result.pexPeers.filter((p) => p.host === '127.0.9.9');
    expect(handed.length).toBeGreaterThanOrEqual(199 - MAX_KNOWN_PER_IP);
    expect(handed.length).toBeLessThanOrEqual(199);
    expect(result.pexPeers).toContainEqual(seed.address);
    // what the download does with them: MAX_KNOWN_PER_IP dialable at that IP, the rest queued, never dialed meanwhile
    const pool = new PeerPool();
    pool.add(result.pexPeers, false, true);
    const dialable = ports.filter((a) => pool.get(`${a.host}:${a.port}`)?.queued === false);
    expect(dialable).toHaveLength(Math.min(MAX_KNOWN_PER_IP, handed.length));
    expect(pool.get(`${seed.address.host}:${seed.address.port}`)?.queued).toBe(false);
  });

  it('a peer offering ut_pex without the metadata that never sends a list holds its slot only until the metadata timeout', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const { seed, info, infoHash } = await metadataSeed();
    const mute = await scriptedPeers(infoHash, { m: { [UT_PEX]: RAW_UT_PEX_ID } });
    // one connection at a time, the mute peer dialed first: the seed waits for its slot
    const f = testFetcher(infoHash, [mute.port, seed.address.port], { maxPeers: 1, timeoutMs: 10_000 });
    const seen = fetcherLog(f);
    const result = f.run();
    await until(() => mute.connections.length === 1, 5_000, 'the mute peer dialed');
    await delay(1_500); // more than a tick: it is still there
    expect(seen.closed).toEqual([]);
    expect(seed.session.peerCount).toBe(0);
    vi.setSystemTime(Date.now() + METADATA_REQUEST_TIMEOUT_MS + 1);
    expect((await result).metadata.equals(info)).toBe(true);
    expect(seen.closed[0]).toBe(`127.0.0.1:${mute.port}: no metadata offered, and no ut_pex peer list in time`);
  });
});
