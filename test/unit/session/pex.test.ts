/**
 * session/pex.ts: a ut_pex message at most once a minute per peer, carrying
 * the difference since the last one (at most 50 added and 50 dropped, the
 * rest in later messages), nothing when nothing changed; received messages
 * closer than the minimum gap ignored, a flood closed.
 */
import { describe, expect, it } from 'vitest';
import { MAX_EARLY_PEX, MAX_PEX_LEARNED, PEX_INTERVAL_MS, PEX_MIN_GAP_MS, PexPacer, keyOf } from '../../../src/session/pex.js';
import type { PexPeer } from '../../../src/wire/pex.js';

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
