import { describe, expect, it } from 'vitest';
import { BencodeError, TtError } from '../../src/core/errors.js';
import { FuzzFailure, MUTATORS, Rng, hashSeed, mutate, runFuzz, type FuzzConfig } from './engine.js';

const CONFIG: FuzzConfig = { seed: 'engine-test', iterations: undefined, seconds: undefined };

function failureOf(fn: () => unknown): FuzzFailure {
  try {
    fn();
  } catch (err) {
    if (err instanceof FuzzFailure) return err;
    throw err;
  }
  throw new Error('expected a FuzzFailure');
}

describe('fuzz engine', () => {
  it('the PRNG is deterministic per seed and differs across seeds', () => {
    const a = new Rng(hashSeed('x'));
    const b = new Rng(hashSeed('x'));
    const c = new Rng(hashSeed('y'));
    const sa = Array.from({ length: 8 }, () => a.u32());
    expect(Array.from({ length: 8 }, () => b.u32())).toEqual(sa);
    expect(Array.from({ length: 8 }, () => c.u32())).not.toEqual(sa);
  });

  it('chunking covers the total exactly with positive sizes', () => {
    const rng = new Rng(7);
    for (let total = 0; total < 300; total += 7) {
      const sizes = rng.chunking(total);
      expect(sizes.reduce((s, n) => s + n, 0)).toBe(total);
      expect(sizes.every((n) => n > 0)).toBe(true);
    }
  });

  it('mutations are reproducible, bounded and actually change inputs', () => {
    const base = Buffer.from('d4:spami42e4:listl1:a1:bee');
    const run = (): Buffer[] => {
      const rng = new Rng(99);
      return Array.from({ length: 200 }, () => mutate(rng, base, [base], 64));
    };
    const first = run();
    expect(run()).toEqual(first);
    expect(first.every((b) => b.length <= 64)).toBe(true);
    expect(first.filter((b) => !b.equals(base)).length).toBeGreaterThan(150);
    expect(MUTATORS.length).toBeGreaterThanOrEqual(8);
  });

  it('reports an untyped exception with the seed and the input as hex', () => {
    const f = failureOf(() =>
      runFuzz(
        {
          name: 'throws-range-error',
          corpus: [Buffer.from('ok')],
          iterations: 500,
          errors: [TtError],
          run: (input) => {
            if (input.includes(0xff)) throw new RangeError('boom');
            return input.length;
          },
        },
        CONFIG,
      ),
    );
    expect(f.kind).toBe('untyped-error');
    expect(f.message).toContain('RangeError: boom');
    expect(f.message).toContain('TT_FUZZ_SEED="engine-test"');
    expect(f.message).toMatch(/input \(\d+ bytes\) hex: [0-9a-f]*ff/);
    // the minimizer keeps the failure and shrinks to the byte that matters
    expect(f.input).toEqual(Buffer.from([0xff]));
  });

  it('accepts typed errors and counts them', () => {
    const stats = runFuzz(
      {
        name: 'typed-only',
        corpus: [Buffer.from('abc')],
        iterations: 300,
        errors: [BencodeError],
        run: (input) => {
          if (input.length % 2 === 0) throw new BencodeError('even', 0);
          return input.length;
        },
      },
      CONFIG,
    );
    expect(stats.iterations).toBe(300);
    expect(stats.accepted).toBeGreaterThan(0);
    expect(stats.rejected.get('BencodeError')).toBeGreaterThan(0);
  });

  it('reports a broken invariant', () => {
    const f = failureOf(() =>
      runFuzz(
        {
          name: 'invariant',
          corpus: [Buffer.from('abcd')],
          iterations: 500,
          errors: [],
          run: (input) => input.length,
          check: (_input, n) => {
            if (n === 0) throw new Error('empty input accepted');
          },
        },
        CONFIG,
      ),
    );
    expect(f.kind).toBe('invariant');
    expect(f.message).toContain('empty input accepted');
  });

  it('reports a call slower than its limit (a hang)', () => {
    const f = failureOf(() =>
      runFuzz(
        {
          name: 'slow',
          corpus: [Buffer.from('a')],
          iterations: 5,
          errors: [],
          maxCallMs: () => 5,
          run: () => {
            const end = performance.now() + 20;
            while (performance.now() < end);
            return 0;
          },
        },
        CONFIG,
      ),
    );
    expect(f.kind).toBe('slow');
  });

  it('reports a call that allocates far more than its input warrants', () => {
    const f = failureOf(() =>
      runFuzz(
        { name: 'alloc', corpus: [Buffer.from('a')], iterations: 3, errors: [], run: () => Buffer.alloc(64 * 1024 * 1024, 1) },
        CONFIG,
      ),
    );
    expect(f.kind).toBe('memory');
  });

  it('reports heap growth across a run (a leak)', () => {
    const leak: Buffer[] = [];
    const f = failureOf(() =>
      runFuzz(
        {
          name: 'leak',
          corpus: [Buffer.from('a')],
          iterations: 200,
          errors: [],
          run: () => leak.push(Buffer.alloc(256 * 1024, 1)),
        },
        CONFIG,
      ),
    );
    expect(f.kind).toBe('memory');
    expect(f.message).toContain('over 200 calls');
  });

  it('TT_FUZZ_SECONDS runs by time instead of by count', () => {
    const stats = runFuzz(
      { name: 'timed', corpus: [], iterations: 1, errors: [], run: (input) => input.length },
      { ...CONFIG, seconds: 0.2 },
    );
    expect(stats.iterations).toBeGreaterThan(1);
  });
});
