/**
 * session/pex.ts: a ut_pex message at most once a minute per peer, carrying
 * the difference since the last one (at most 50 added and 50 dropped, the
 * rest in later messages), nothing when nothing changed; received messages
 * closer than the minimum gap ignored, a flood closed; PexInbox.accept, the
 * whole receiving path: pacing, the strict codec and the per-connection cap.
 */
import { describe, expect, it } from 'vitest';
import { ProtocolError } from '../../../src/core/errors.js';
import { MAX_EARLY_PEX, MAX_PEX_LEARNED, PEX_INTERVAL_MS, PEX_MIN_GAP_MS, PexInbox, PexPacer, keyOf } from '../../../src/session/pex.js';
import { MAX_PEX_BYTES, MAX_PEX_PEERS, encodePex, type PexPeer } from '../../../src/wire/pex.js';

function peers(...ports: number[]): Map<string, PexPeer> {
  return new Map(ports.map((port) => {
    const p = { host: '10.0.0.1', port, flags: 0 };
    return [keyOf(p), p] as const;
  }));
}

describe('PexPacer.next', () => {
  it('sends the first list at once, then only differences, at most once a minute', () => {
    const pacer = new PexPacer();
    const first = pacer.next(0, peers(1, 2));
    expect(first?.added.map((p) => p.port)).toEqual([1, 2]);
    expect(first?.dropped).toEqual([]);
    expect(pacer.next(1_000, peers(1, 2, 3))).toBeUndefined(); // too soon
    expect(pacer.next(PEX_INTERVAL_MS - 1, peers(1, 2, 3))).toBeUndefined();
    const second = pacer.next(PEX_INTERVAL_MS, peers(2, 3));
    expect(second?.added.map((p) => p.port)).toEqual([3]);
    expect(second?.dropped.map((p) => p.port)).toEqual([1]);
  });

  it('says nothing when nothing changed (and nothing at all when it knows no one)', () => {
    const pacer = new PexPacer();
    expect(pacer.next(0, peers())).toBeUndefined();
    expect(pacer.next(1, peers(5))?.added.length).toBe(1); // not paced by the empty round
    expect(pacer.next(1 + PEX_INTERVAL_MS, peers(5))).toBeUndefined();
    expect(pacer.next(2 + PEX_INTERVAL_MS, peers(5, 6))?.added.map((p) => p.port)).toEqual([6]);
  });

  it('sends at most 50 added per message; the rest follow in later ones', () => {
    const pacer = new PexPacer();
    const all = peers(...Array.from({ length: 120 }, (_, i) => i + 1));
    const sizes: number[] = [];
    for (let k = 0; k < 5; k++) sizes.push(pacer.next(k * PEX_INTERVAL_MS, all)?.added.length ?? 0);
    expect(sizes).toEqual([50, 50, 20, 0, 0]);
  });

  it('a peer dropped and back is announced again', () => {
    const pacer = new PexPacer();
    pacer.next(0, peers(1));
    expect(pacer.next(PEX_INTERVAL_MS, peers())?.dropped.map((p) => p.port)).toEqual([1]);
    expect(pacer.next(2 * PEX_INTERVAL_MS, peers(1))?.added.map((p) => p.port)).toEqual([1]);
  });
});

describe('PexPacer.received', () => {
  it('uses a message per gap, ignores early ones, closes a flood', () => {
    const pacer = new PexPacer();
    expect(pacer.received(0)).toBe('use');
    for (let i = 1; i <= MAX_EARLY_PEX; i++) expect(pacer.received(i)).toBe('ignore');
    expect(pacer.received(PEX_MIN_GAP_MS - 1)).toBe('close');
  });

  it('a well-behaved sender (one a minute) is always heard', () => {
    const pacer = new PexPacer();
    for (let k = 0; k < 20; k++) expect(pacer.received(k * PEX_INTERVAL_MS)).toBe('use');
  });
});

describe('PexPacer learning allowance', () => {
  it(`lets one connection add at most ${MAX_PEX_LEARNED} peers over its life`, () => {
    const pacer = new PexPacer();
    expect(pacer.learnRoom).toBe(MAX_PEX_LEARNED);
    pacer.took(150);
    expect(pacer.learnRoom).toBe(MAX_PEX_LEARNED - 150);
    pacer.took(50);
    expect(pacer.learnRoom).toBe(0);
  });
});

describe('PexInbox.accept', () => {
  /** n distinct usable addresses 10.1.x.y:6881 from the k-th on. */
  const named = (n: number, k = 0): PexPeer[] => Array.from({ length: n }, (_, i) => ({ host: `10.1.${(k + i) >> 8}.${(k + i) & 255}`, port: 6881, flags: 0 }));
  const pex = (added: PexPeer[]): Buffer => encodePex({ added, dropped: [] });

  it('hands the named peers to the pool and counts only the new ones against the cap', () => {
    const inbox = new PexInbox();
    const given: PexPeer[][] = [];
    const learned = inbox.accept(0, pex(named(3)), (peers) => (given.push(peers), 2));
    expect(learned).toEqual({ named: 3, fresh: 2 });
    expect(given.map((g) => g.map((p) => p.host))).toEqual([['10.1.0.0', '10.1.0.1', '10.1.0.2']]);
    expect(inbox.learnRoom).toBe(MAX_PEX_LEARNED - 2);
  });

  it('a message too soon is ignored without being parsed; the sixth closes (ProtocolError)', () => {
    const inbox = new PexInbox();
    let calls = 0;
    const add = (peers: PexPeer[]): number => (calls++, peers.length);
    expect(inbox.accept(0, pex(named(1)), add)).toEqual({ named: 1, fresh: 1 });
    for (let i = 1; i <= MAX_EARLY_PEX; i++) expect(inbox.accept(i, Buffer.from('garbage'), add)).toBeUndefined();
    expect(() => inbox.accept(MAX_EARLY_PEX + 1, pex(named(1)), add)).toThrow(ProtocolError);
    expect(() => inbox.accept(MAX_EARLY_PEX + 2, pex(named(1)), add)).toThrow(/too often/);
    expect(calls).toBe(1);
  });

  it('garbage, a non-dictionary and an oversized message are ProtocolErrors, and nothing reaches the pool', () => {
    for (const payload of [Buffer.from('not bencode'), Buffer.from('li1ee'), Buffer.alloc(MAX_PEX_BYTES + 1, 0x20)]) {
      const add = (): number => {
        throw new Error('add must not be called');
      };
      expect(() => new PexInbox().accept(0, payload, add)).toThrow(ProtocolError);
    }
  });

  it(`one connection adds at most ${MAX_PEX_LEARNED} peers over its life, however many messages it sends`, () => {
    const inbox = new PexInbox();
    const offered: number[] = [];
    const add = (peers: PexPeer[]): number => (offered.push(peers.length), peers.length);
    for (let m = 0; m < 4; m++) inbox.accept(m * PEX_MIN_GAP_MS, pex(named(MAX_PEX_PEERS * 2, m * 1000)), add);
    expect(offered).toEqual([MAX_PEX_LEARNED]); // once the room is used up, the pool is not even asked
    expect(inbox.learnRoom).toBe(0);
    expect(inbox.accept(4 * PEX_MIN_GAP_MS, pex(named(5, 9000)), add)).toEqual({ named: 5, fresh: 0 });
  });

  it('peers already known do not use up the allowance', () => {
    const inbox = new PexInbox();
    inbox.accept(0, pex(named(150)), () => 0);
    expect(inbox.learnRoom).toBe(MAX_PEX_LEARNED);
  });
});
