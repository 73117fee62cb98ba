/**
 * BEP 11 peer exchange in a magnet's metadata phase (MetadataFetcher), over
 * real sockets: the fetcher offers ut_pex; a peer without the metadata that
 * names a seed in its ut_pex leads the fetcher to it, and is closed once its
 * list is in; a peer with the metadata keeps serving while the peers it
 * names are dialed; what PEX taught comes back apart from the other peers
 * (pexPeers); with `pex: false` nothing is offered, nothing taken, nobody
 * named is dialed. Hostile senders: test/integration/hostile/metadata-pex.test.ts.
 */
import { createHash, randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { METADATA_PIECE_BYTES } from '../../../src/metainfo/metadata.js';
import { OUR_UT_PEX_ID, UT_PEX } from '../../../src/wire/pex.js';
import { encodeExtendedHandshake, type ExtendedHandshake } from '../../../src/wire/extension.js';
import { RAW_UT_METADATA_ID, RAW_UT_PEX_ID, closeScriptedPeers, fetchExplained, fetcherLog, metadataSeed, scriptedPeers, sendPex, serveMetadata, testFetcher, type ScriptedPeers } from '../../helpers/metadata-fetcher.js';
import { join } from 'node:path';
import { MAX_KNOWN_PER_IP } from '../../../src/session/peer-pool.js';
import { expectSameData, makeFixture, startSession, stopAll, trackDir, whenComplete } from '../../helpers/swarm.js';
import { until } from '../../helpers/until.js';

afterEach(async () => {
  await closeScriptedPeers();
  await stopAll();
});


/** A peer without the metadata: it offers ut_pex only and names `named` in a ut_pex message when asked for one. */
function relay(infoHash: Buffer, named: () => { host: string; port: number }[], seen?: (theirs: ExtendedHandshake) => void): Promise<ScriptedPeers> {
  return scriptedPeers(infoHash, { m: { [UT_PEX]: RAW_UT_PEX_ID } }, (peer, theirs) => {
    seen?.(theirs);
    const id = theirs.m.get(UT_PEX) ?? 0;
    if (id !== 0) sendPex(peer, id, named());
  });
}

const at = (port: number): { host: string; port: number } => ({ host: '127.0.0.1', port });

describe('MetadataFetcher: peer exchange (BEP 11)', () => {
  it('a peer without the metadata names a seed in its ut_pex: the fetcher reaches the seed through it alone, and returns it apart', async () => {
    const { seed, info, infoHash } = await metadataSeed();
    // stands where our own listener would be: a list naming it must not make the fetcher dial itself
    const self = await scriptedPeers(infoHash, undefined);
    let offered: ExtendedHandshake | undefined;
    const r = await relay(infoHash, () => [at(self.port), seed.address], (theirs) => (offered = theirs));
    const f = testFetcher(infoHash, [r.port], { port: self.port });
    const seen = fetcherLog(f);
    const result = await fetchExplained(f);
    expect(result.metadata.equals(info)).toBe(true);
    expect(offered?.m.get(UT_PEX)).toBe(OUR_UT_PEX_ID);
    expect(seen.pex).toEqual([[`127.0.0.1:${r.port}`, 2, 1]]);
    expect(seen.closed).toContain(`127.0.0.1:${r.port}: peer does not offer the metadata (its ut_pex peer list taken)`);
    // the relay answered (dialed first by the download); the seed is known only through PEX
    expect(result.peers).toEqual([at(r.port)]);
    expect(result.pexPeers).toEqual([at(seed.address.port)]);
    expect(self.connections).toHaveLength(0);
  });

  it('a peer with the metadata that sends ut_pex keeps its connection and serves; the peer it names is dialed meanwhile', async () => {
    const info = randomBytes(3 * METADATA_PIECE_BYTES + 10);
    const infoHash = createHash('sha1').update(info).digest();
    const named = await scriptedPeers(infoHash, undefined);
    const source = await scriptedPeers(infoHash, { m: { ut_metadata: RAW_UT_METADATA_ID, [UT_PEX]: RAW_UT_PEX_ID }, metadataSize: info.length }, async (peer, theirs) => {
      sendPex(peer, theirs.m.get(UT_PEX)!, [at(named.port)]);
      await until(() => named.connections.length > 0, 5_000, 'the named peer dialed');
      await serveMetadata(peer, theirs, info);
    });
    const f = testFetcher(infoHash, [source.port]);
    const seen = fetcherLog(f);
    const result = await fetchExplained(f);
    expect(result.metadata.equals(info)).toBe(true);
    expect(seen.pex).toEqual([[`127.0.0.1:${source.port}`, 1, 1]]);
    expect(seen.closed.filter((c) => c.startsWith(`127.0.0.1:${source.port}`))).toEqual([]);
    expect(result.peers).toEqual([at(source.port)]);
    expect(result.pexPeers).toEqual([at(named.port)]);
  });

  it('ut_pex before the extended handshake is taken; the peer is closed as soon as that handshake shows no metadata', async () => {
    const { seed, info, infoHash } = await metadataSeed();
    const early = await scriptedPeers(infoHash, undefined, (peer) => {
      sendPex(peer, OUR_UT_PEX_ID, [seed.address]);
      peer.send({ type: 'extended', id: 0, payload: encodeExtendedHandshake({ m: { [UT_PEX]: RAW_UT_PEX_ID } }) });
    });
    const f = testFetcher(infoHash, [early.port]);
    const seen = fetcherLog(f);
    const result = await fetchExplained(f);
    expect(result.metadata.equals(info)).toBe(true);
    expect(seen.pex).toEqual([[`127.0.0.1:${early.port}`, 1, 1]]);
    expect(seen.closed).toContain(`127.0.0.1:${early.port}: peer does not offer the metadata (no ut_metadata / metadata_size)`);
    expect(result.pexPeers).toEqual([seed.address]);
  });

  it('pex: false offers no ut_pex, ignores one sent anyway, closes a peer without the metadata at once and never dials whom it names', async () => {
    const { seed, infoHash } = await metadataSeed();
    let offered: ExtendedHandshake | undefined;
    const r = await scriptedPeers(infoHash, { m: { [UT_PEX]: RAW_UT_PEX_ID } }, (peer, theirs) => {
      offered = theirs;
      sendPex(peer, OUR_UT_PEX_ID, [seed.address]); // the id tt uses when it does take ut_pex
    });
    const f = testFetcher(infoHash, [r.port], { pex: false, timeoutMs: 1_500 });
    const seen = fetcherLog(f);
    await expect(f.run()).rejects.toMatchObject({ code: 'NO_PEERS' });
    expect(offered?.m.has(UT_PEX)).toBe(false);
    expect(seen.pex).toEqual([]);
    expect(seen.closed[0]).toBe(`127.0.0.1:${r.port}: peer does not offer the metadata (no ut_metadata / metadata_size)`);
    expect(seed.session.peerCount).toBe(0);
    expect(seen.closed.some((c) => c.startsWith(`127.0.0.1:${seed.address.port}`))).toBe(false);
  });
});

describe('the download after the metadata phase', () => {
  it('a trackerless download whose only peers came from PEX starts and completes; private, or with pex: false, it has no way to find peers', async () => {
    for (const variant of ['public', 'private', 'no-pex'] as const) {
      const fx = await makeFixture({ private: variant === 'private' });
      trackDir(fx.work);
      const seed = await startSession({ meta: fx.meta, root: fx.seedRoot, mode: 'seed' });
      const out = join(fx.work, 'out');
      const start = startSession({ meta: fx.meta, root: out, mode: 'download', pexPeers: [seed.address], pex: variant !== 'no-pex' });
      if (variant === 'public') {
        const leech = await start;
        await whenComplete(leech.session);
        await expectSameData(fx, out);
      } else {
        await expect(start, variant).rejects.toMatchObject({ code: 'NO_PEERS' });
        expect(seed.session.peerCount, variant).toBe(0);
      }
    }
  });

  it('found peers (not the user\'s) are held to the per-IP address cap like a tracker\'s', async () => {
    const fx = await makeFixture();
    trackDir(fx.work);
    const many = Array.from({ length: MAX_KNOWN_PER_IP + 20 }, (_, i) => ({ host: '127.0.0.9', port: 2000 + i }));
    // maxPeers 0: nothing is dialed, so no address fails and gives its place to a queued one meanwhile
    const leech = await startSession({ meta: fx.meta, root: join(fx.work, 'out'), mode: 'download', foundPeers: many, maxPeers: 0 });
    // as many as one IP may have dialable; the rest queue (never dialed while queued), as a tracker's would
    const dialable = many.filter((a) => leech.session.pool.get(`${a.host}:${a.port}`)?.queued === false);
    expect(dialable).toHaveLength(MAX_KNOWN_PER_IP);
    expect(leech.session.pool.size).toBe(many.length);
  });
});
