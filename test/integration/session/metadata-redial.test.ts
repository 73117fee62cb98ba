/**
 * Redials in a magnet's metadata phase (MetadataFetcher), over real sockets
 * with Date faked: a peer that answers but cannot give the metadata (offers
 * none, offers only ut_pex, rejects the requests) is not dialed again for
 * NO_METADATA_RETRY_MS, then for twice that, and so brings no new ut_pex list
 * meanwhile; a peer whose connection merely dropped keeps the usual 5 s
 * backoff. Before, its handshake reset the backoff, so such a peer was
 * redialed every ~5 s for as long as the phase lasted.
 */
import { createHash, randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { METADATA_PIECE_BYTES } from '../../../src/metainfo/metadata.js';
import { NO_METADATA_RETRY_MS } from '../../../src/session/metadata-fetch.js';
import { UT_PEX } from '../../../src/wire/pex.js';
import { encodeMetadataReject, parseMetadataMessage } from '../../../src/wire/ut-metadata.js';
import { RAW_UT_METADATA_ID, RAW_UT_PEX_ID, closeScriptedPeers, fetcherLog, isExtended, scriptedPeers, sendPex, testFetcher, type Extended } from '../../helpers/metadata-fetcher.js';
import { until } from '../../helpers/until.js';

afterEach(async () => {
  vi.useRealTimers();
  await closeScriptedPeers();
});

const delay = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
/** Longer than the fetcher's 1 s tick, which is when it dials peers whose wait is over. */
const A_TICK_AND_MORE = 1_500;

describe('MetadataFetcher: redialing peers without the metadata', () => {
  it('a peer without the metadata waits a minute, then two, before it is dialed again; a dropped connection is redialed after 5 s', async () => {
    // Date is faked and moved by hand; timers and sockets run as usual
    vi.useFakeTimers({ toFake: ['Date'] });
    // enough pieces that both peers offering the metadata are asked for some at once
    const info = randomBytes(20 * METADATA_PIECE_BYTES);
    const infoHash = createHash('sha1').update(info).digest();
    const has = { m: { ut_metadata: RAW_UT_METADATA_ID }, metadataSize: info.length };
    // transient: offers the metadata, then its connection drops at the first request
    const dropper = await scriptedPeers(infoHash, has, async (peer) => {
      await peer.waitFor(isExtended(RAW_UT_METADATA_ID));
      peer.close();
    });
    // no metadata, but a peer list (each connection sends one)
    const lister = await scriptedPeers(infoHash, { m: { [UT_PEX]: RAW_UT_PEX_ID } }, (peer, theirs) => {
      sendPex(peer, theirs.m.get(UT_PEX)!, [{ host: '127.0.0.1', port: dropper.port }]);
    });
    // nothing at all
    const bare = await scriptedPeers(infoHash, { m: {} });
    // says it has the metadata, then rejects every request (BEP 9: it does not have it)
    const rejecter = await scriptedPeers(infoHash, has, async (peer, theirs) => {
      const req = parseMetadataMessage(((await peer.waitFor(isExtended(RAW_UT_METADATA_ID))) as Extended).payload);
      peer.send({ type: 'extended', id: theirs.m.get('ut_metadata')!, payload: encodeMetadataReject(req?.piece ?? 0) });
    });
    const useless = { lister, bare, rejecter };
    const f = testFetcher(infoHash, [dropper.port, lister.port, bare.port, rejecter.port], { timeoutMs: 60_000 });
    const seen = fetcherLog(f);
    f.run().catch(() => undefined);
    const closedOnce = (port: number): boolean => seen.closed.some((c) => c.startsWith(`127.0.0.1:${port}: `));
    const visits = (): Record<string, number> => Object.fromEntries(Object.entries(useless).map(([name, s]) => [name, s.connections.length]));
    try {
      await until(() => [dropper, lister, bare, rejecter].every((s) => closedOnce(s.port)), 5_000, 'every peer closed once');
      expect(seen.closed).toEqual(
        expect.arrayContaining([
          `127.0.0.1:${lister.port}: peer does not offer the metadata (its ut_pex peer list taken)`,
          `127.0.0.1:${bare.port}: peer does not offer the metadata (no ut_metadata / metadata_size)`,
          `127.0.0.1:${rejecter.port}: peer rejected a metadata request`,
        ]),
      );
      expect(visits()).toEqual({ lister: 1, bare: 1, rejecter: 1 });

      // past the pool's 5 s backoff: the dropped peer is dialed again, the others are not
      vi.setSystemTime(Date.now() + 6_000);
      await until(() => dropper.connections.length >= 2, 3_000, 'the dropped peer redialed');
      await delay(A_TICK_AND_MORE);
      expect(visits()).toEqual({ lister: 1, bare: 1, rejecter: 1 });
      expect(seen.pex).toHaveLength(1);

      // a minute on, each is dialed once more (it may have the metadata by now): one more list
      vi.setSystemTime(Date.now() + NO_METADATA_RETRY_MS);
      await until(() => Object.values(visits()).every((n) => n === 2), 3_000, 'each redialed after a minute');
      await until(() => seen.pex.length === 2, 3_000, 'the second list');
      await delay(A_TICK_AND_MORE);
      expect(visits()).toEqual({ lister: 2, bare: 2, rejecter: 2 });

      // the second wait is twice as long
      vi.setSystemTime(Date.now() + NO_METADATA_RETRY_MS + 1_000);
      await delay(A_TICK_AND_MORE);
      expect(visits()).toEqual({ lister: 2, bare: 2, rejecter: 2 });
      vi.setSystemTime(Date.now() + NO_METADATA_RETRY_MS);
      await until(() => Object.values(visits()).every((n) => n === 3), 3_000, 'each redialed after two minutes');
      await until(() => seen.pex.length === 3, 3_000, 'the third list');
    } finally {
      f.stop();
    }
  }, 30_000);
});
