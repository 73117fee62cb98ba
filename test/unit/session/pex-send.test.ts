/**
 * session/pex.ts, the sending round (sendPex, pexPeers): only peers whose
 * listening address we know and whose handshake is done are named, with
 * their BEP 11 flags (encrypted, seed, reachable); each peer that took
 * ut_pex hears the others, never itself, under the id it chose, and nothing
 * more within the interval; a peer without ut_pex, or not yet handshaken,
 * is sent nothing.
 */
import { describe, expect, it } from 'vitest';
import { Bitfield } from '../../../src/core/bitfield.js';
import type { Message } from '../../../src/wire/messages.js';
import { PEX_ENCRYPTION, PEX_REACHABLE, PEX_SEED, parsePex } from '../../../src/wire/pex.js';
import { PEX_INTERVAL_MS, PexPacer, pexPeers, sendPex, type PexConnection } from '../../../src/session/pex.js';

interface FakePeer extends PexConnection {
  sent: Message[];
}

function peer(port: number | undefined, opts: { utPexId?: number; handshakeDone?: boolean; encrypted?: boolean; seed?: boolean; outgoing?: boolean } = {}): FakePeer {
  const sent: Message[] = [];
  return {
    sent,
    conn: {
      handshakeDone: opts.handshakeDone ?? true,
      encrypted: opts.encrypted ?? false,
      direction: opts.outgoing ? 'outgoing' : 'incoming',
      peerBitfield: opts.seed ? Bitfield.full(8) : new Bitfield(8),
      send: (m: Message) => void sent.push(m),
    },
    utPexId: opts.utPexId ?? 0,
    pex: new PexPacer(),
    listenAddress: port === undefined ? undefined : { host: '10.0.0.1', port },
  };
}

function told(p: FakePeer): { id: number; added: number[]; flags: number[] }[] {
  return p.sent.map((m) => {
    if (m.type !== 'extended') throw new Error(`sent ${m.type}`);
    const { added } = parsePex(m.payload);
    return { id: m.id, added: added.map((a) => a.port), flags: added.map((a) => a.flags) };
  });
}

describe('pexPeers', () => {
  it('names handshaken peers with a known listening address, with their flags', () => {
    const list = pexPeers([
      peer(1, { encrypted: true }),
      peer(2, { seed: true }),
      peer(3, { outgoing: true }),
      peer(undefined), // an incoming peer that did not say where it listens
      peer(5, { handshakeDone: false }),
    ]);
    expect([...list.values()].map((p) => [p.port, p.flags])).toEqual([
      [1, PEX_ENCRYPTION],
      [2, PEX_SEED],
      [3, PEX_REACHABLE],
    ]);
  });
});

describe('sendPex', () => {
  it('tells each ut_pex peer the others under its own id, then nothing within the interval', () => {
    const a = peer(1, { utPexId: 3, outgoing: true });
    const b = peer(2, { utPexId: 7 });
    const quiet = peer(4); // no ut_pex: named, never told
    const early = peer(5, { utPexId: 3, handshakeDone: false });
    const peers = [a, b, quiet, early];
    sendPex(0, peers);
    expect(told(a)).toEqual([{ id: 3, added: [2, 4], flags: [0, 0] }]);
    expect(told(b)).toEqual([{ id: 7, added: [1, 4], flags: [PEX_REACHABLE, 0] }]);
    expect(quiet.sent.length + early.sent.length).toBe(0);
    sendPex(PEX_INTERVAL_MS - 1, [...peers, peer(6)]);
    expect(a.sent.length + b.sent.length).toBe(2);
    sendPex(PEX_INTERVAL_MS, [...peers, peer(6)]);
    expect(told(a)[1]?.added).toEqual([6]);
  });

  it('walks a Map of connections as the session keeps them', () => {
    const a = peer(1, { utPexId: 1 });
    const b = peer(2, { utPexId: 1 });
    sendPex(0, new Map<object, PexConnection>([[{}, a], [{}, b]]));
    expect([told(a)[0]?.added, told(b)[0]?.added]).toEqual([[2], [1]]);
  });
});
