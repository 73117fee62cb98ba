/**
 * pieces/lowest-first.ts: the lowest member a peer has (at or above a
 * starting point), across byte boundaries, as members leave; checked against
 * brute force.
 */
import { describe, expect, it } from 'vitest';
import { Bitfield } from '../../../src/core/bitfield.js';
import { LowestFirst } from '../../../src/pieces/lowest-first.js';
import { mulberry32 } from '../../helpers/prng.js';

function peer(size: number, has: number[]): Bitfield {
  const b = new Bitfield(size);
  for (const i of has) b.set(i);
  return b;
}

describe('LowestFirst', () => {
  it('answers the lowest member a peer has, past byte boundaries', () => {
    const s = new LowestFirst(20, [17, 3, 9]);
    expect(s.size).toBe(3);
    expect(s.lowestOf('all')).toBe(3);
    expect(s.lowestOf(peer(20, [0, 1, 2, 9, 17]))).toBe(9);
    expect(s.lowestOf(peer(20, [17, 19]))).toBe(17);
    expect(s.lowestOf(peer(20, [0, 1, 2, 4]))).toBeUndefined();
    expect(s.lowestOf(Bitfield.full(20))).toBe(3);
  });

  it('from: only members at or above it, within its byte too', () => {
    const s = new LowestFirst(24, [2, 5, 6, 13]);
    expect(s.lowestOf('all', 3)).toBe(5);
    expect(s.lowestOf('all', 6)).toBe(6);
    expect(s.lowestOf(peer(24, [2, 5, 13]), 6)).toBe(13);
    expect(s.lowestOf('all', 14)).toBeUndefined();
    expect(s.lowestOf('all', 0)).toBe(2);
  });

  it('forgets deleted members; the shared cursor never skips one', () => {
    const s = new LowestFirst(24, [0, 7, 8, 23]);
    expect(s.delete(0)).toBe(true);
    expect(s.delete(0)).toBe(false);
    expect(s.lowestOf('all')).toBe(7);
    expect(s.delete(7)).toBe(true);
    expect(s.delete(8)).toBe(true);
    expect(s.lowestOf(peer(24, [1, 23]))).toBe(23);
    expect(s.has(23)).toBe(true);
    expect(s.delete(23)).toBe(true);
    expect(s.size).toBe(0);
    expect(s.lowestOf('all')).toBeUndefined();
  });

  it('agrees with a brute-force search on random sets, peers and deletions', () => {
    const random = mulberry32(5);
    for (let round = 0; round < 50; round++) {
      const size = 1 + Math.floor(random() * 300);
      const members = new Set<number>();
      for (let i = 0; i < size; i++) if (random() < 0.4) members.add(i);
      const s = new LowestFirst(size, members);
      while (members.size > 0) {
        const has = new Bitfield(size);
        for (let i = 0; i < size; i++) if (random() < 0.3) has.set(i);
        const expected = [...members].filter((i) => has.has(i)).sort((a, b) => a - b)[0];
        expect(s.lowestOf(has)).toBe(expected);
        expect(s.lowestOf('all')).toBe(Math.min(...members));
        const from = Math.floor(random() * size);
        expect(s.lowestOf(has, from)).toBe([...members].filter((i) => i >= from && has.has(i)).sort((a, b) => a - b)[0]);
        const gone = [...members][Math.floor(random() * members.size)]!; // any member leaves, not only the lowest
        members.delete(gone);
        s.delete(gone);
      }
    }
  });
});
