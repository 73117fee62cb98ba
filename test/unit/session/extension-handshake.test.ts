/**
 * session/extension-handshake.ts, rule by rule. Ours: ut_metadata and
 * ut_pex (when PEX is on) under our ids with metadata_size, or an empty `m`
 * and no metadata_size for a private torrent; always our client name, reqq
 * MAX_PEER_REQUESTS and listen port. Theirs: the ut_metadata id (0 when not
 * offered), the ut_pex id only while PEX is on for us, reqq as a request
 * depth cap within 1..MAX_QUEUE_DEPTH, and `p` as the listening address of a
 * peer not yet in the pool only; applying sets exactly those fields and
 * returns the address learnt.
 */
import { describe, expect, it } from 'vitest';
import { encodeExtendedHandshake, parseExtendedHandshake, type ExtendedHandshake } from '../../../src/wire/extension.js';
import { OUR_UT_PEX_ID, UT_PEX } from '../../../src/wire/pex.js';
import { OUR_UT_METADATA_ID, UT_METADATA } from '../../../src/wire/ut-metadata.js';
import {
  CLIENT_NAME,
  applyPeerExtensions,
  ourExtendedHandshake,
  peerExtensions,
  type ExtensionState,
  type PeerExtensions,
} from '../../../src/session/extension-handshake.js';
import { MAX_QUEUE_DEPTH } from '../../../src/session/pipeline.js';
import { MAX_PEER_REQUESTS } from '../../../src/session/uploader.js';

const OURS = { isPrivate: false, pex: true, metadataSize: 12_345, listenPort: 6881 };

/** A peer's extended handshake as parsed off the wire. */
function theirs(h: Parameters<typeof encodeExtendedHandshake>[0]): ExtendedHandshake {
  return parseExtendedHandshake(encodeExtendedHandshake(h));
}

const incoming = { conn: { host: '10.0.0.9' }, poolKey: undefined };
const dialed = { conn: { host: '10.0.0.9' }, poolKey: '10.0.0.9:51413' };

describe('ourExtendedHandshake', () => {
  it('offers ut_metadata and ut_pex under our ids, the metadata size, our name, reqq and port', () => {
    const h = parseExtendedHandshake(ourExtendedHandshake(OURS));
    expect(Object.fromEntries(h.m)).toEqual({ [UT_METADATA]: OUR_UT_METADATA_ID, [UT_PEX]: OUR_UT_PEX_ID });
    expect(h).toMatchObject({ metadataSize: 12_345, v: CLIENT_NAME, reqq: MAX_PEER_REQUESTS, p: 6881 });
  });

  it('without PEX: ut_metadata only', () => {
    const h = parseExtendedHandshake(ourExtendedHandshake({ ...OURS, pex: false }));
    expect(Object.fromEntries(h.m)).toEqual({ [UT_METADATA]: OUR_UT_METADATA_ID });
    expect(h.metadataSize).toBe(12_345);
  });

  it('a private torrent offers no extension and no metadata size (BEP 27), whatever the PEX setting', () => {
    for (const pex of [true, false]) {
      const h = parseExtendedHandshake(ourExtendedHandshake({ ...OURS, isPrivate: true, pex }));
      expect(h.m.size).toBe(0);
      expect(h.metadataSize).toBeUndefined();
      expect(h).toMatchObject({ v: CLIENT_NAME, reqq: MAX_PEER_REQUESTS, p: 6881 });
    }
  });
});

describe('peerExtensions', () => {
  it('takes the ids the peer chose for ut_metadata and ut_pex', () => {
    const found = peerExtensions(theirs({ m: { [UT_METADATA]: 3, [UT_PEX]: 7, other: 9 } }), dialed, true);
    expect(found).toMatchObject({ utMetadataId: 3, utPexId: 7 });
  });

  it('an extension not offered, or disabled with 0, is id 0', () => {
    expect(peerExtensions(theirs({ m: {} }), dialed, true)).toMatchObject({ utMetadataId: 0, utPexId: 0 });
    expect(peerExtensions(theirs({ m: { [UT_METADATA]: 0, [UT_PEX]: 0 } }), dialed, true)).toMatchObject({ utMetadataId: 0, utPexId: 0 });
  });

  it('with PEX off for us, the ut_pex id is left as it is', () => {
    expect(peerExtensions(theirs({ m: { [UT_PEX]: 7 } }), dialed, false).utPexId).toBeUndefined();
  });

  it('reqq caps our request depth, within 1..MAX_QUEUE_DEPTH; none leaves it as it is', () => {
    expect(peerExtensions(theirs({ reqq: 250 }), dialed, true).maxQueueDepth).toBe(Math.min(250, MAX_QUEUE_DEPTH));
    expect(peerExtensions(theirs({ reqq: 1 }), dialed, true).maxQueueDepth).toBe(1);
    expect(peerExtensions(theirs({ reqq: MAX_QUEUE_DEPTH * 10 }), dialed, true).maxQueueDepth).toBe(MAX_QUEUE_DEPTH);
    expect(peerExtensions(theirs({}), dialed, true).maxQueueDepth).toBeUndefined();
    // the parser drops a reqq of 0; a hand-made one below 1 is left alone too
    expect(peerExtensions(theirs({ reqq: 0 }), dialed, true).maxQueueDepth).toBeUndefined();
    expect(peerExtensions({ m: new Map(), reqq: 0 }, dialed, true).maxQueueDepth).toBeUndefined();
  });

  it('`p` is the listening address of a peer not in the pool yet: its IP with that port', () => {
    expect(peerExtensions(theirs({ p: 51413 }), incoming, true).listenAddress).toEqual({ host: '10.0.0.9', port: 51413 });
    expect(peerExtensions(theirs({}), incoming, true).listenAddress).toBeUndefined();
  });

  it('`p` from a peer we dialed (or that already told us) changes nothing', () => {
    expect(peerExtensions(theirs({ p: 6000 }), dialed, true).listenAddress).toBeUndefined();
  });

  it('a `p` outside 1..65535 is no address', () => {
    for (const p of [0, 65536, -1]) expect(peerExtensions({ m: new Map(), p }, incoming, true).listenAddress, String(p)).toBeUndefined();
  });
});

describe('applyPeerExtensions', () => {
  function state(poolKey?: string): ExtensionState {
    return { conn: { host: '10.0.0.9' }, poolKey, utMetadataId: 5, utPexId: 6, maxQueueDepth: 250, listenAddress: undefined };
  }

  it('sets the ids, the depth cap and, for a newly learnt address, the pool key; returns that address', () => {
    const s = state();
    const found: PeerExtensions = { utMetadataId: 2, utPexId: 0, maxQueueDepth: 40, listenAddress: { host: '10.0.0.9', port: 51413 } };
    expect(applyPeerExtensions(s, found)).toEqual({ host: '10.0.0.9', port: 51413 });
    expect(s).toMatchObject({ utMetadataId: 2, utPexId: 0, maxQueueDepth: 40, poolKey: '10.0.0.9:51413', listenAddress: { host: '10.0.0.9', port: 51413 } });
  });

  it('leaves what was found undefined as it is; ut_metadata is always set', () => {
    const s = state('10.0.0.9:6000');
    expect(applyPeerExtensions(s, { utMetadataId: 0, utPexId: undefined, maxQueueDepth: undefined, listenAddress: undefined })).toBeUndefined();
    expect(s).toMatchObject({ utMetadataId: 0, utPexId: 6, maxQueueDepth: 250, poolKey: '10.0.0.9:6000', listenAddress: undefined });
  });
});
