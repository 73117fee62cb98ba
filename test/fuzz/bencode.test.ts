import { isDeepStrictEqual } from 'node:util';
import { describe, expect, it } from 'vitest';
import { BencodeError } from '../../src/core/errors.js';
import { type BValue, type DecodeLimits, decode, decodePrefix, decodeWithSpans, encode, isDict } from '../../src/metainfo/bencode.js';
import { bencodeCorpus } from './corpus.js';
import { Rng, attempt, invariant, runFuzz } from './engine.js';

/** Tight limits, used for a share of calls so the limit paths are fuzzed too. */
const SMALL_LIMITS: DecodeLimits = { maxDepth: 4, maxItems: 64, maxBytes: 4096 };

function shape(v: BValue, depth = 1): { depth: number; items: number } {
  if (Array.isArray(v) || v instanceof Map) {
    let maxDepth = depth;
    let items = 1;
    for (const [k, child] of v instanceof Map ? v : v.entries()) {
      const s = shape(child, depth + 1);
      maxDepth = Math.max(maxDepth, s.depth);
      items += s.items + (typeof k === 'string' ? 1 : 0); // dict keys count as items
    }
    return { depth: maxDepth, items };
  }
  return { depth: depth - 1, items: 1 };
}

describe('fuzz: bencode decoder', () => {
  it('decode, decodePrefix and decodeWithSpans agree, return canonical values or throw BencodeError', () => {
    const outcomes = { ok: 0, rejected: 0 };
    runFuzz({
      name: 'bencode',
      corpus: bencodeCorpus(),
      iterations: 30_000,
      errors: [BencodeError],
      maxInputBytes: 16 * 1024,
      run: (input, seed) => {
        const limits = new Rng(seed).chance(0.25) ? SMALL_LIMITS : undefined;
        const full = attempt(() => decode(input, limits), [BencodeError]);
        outcomes[full.ok ? 'ok' : 'rejected']++;
        return {
          limits,
          full,
          prefix: attempt(() => decodePrefix(input, limits), [BencodeError]),
          spans: attempt(() => decodeWithSpans(input, limits), [BencodeError]),
        };
      },
      check: (input, { limits, full, prefix, spans }) => {
        for (const o of [full, prefix, spans]) {
          if (!o.ok) invariant((o.error as BencodeError).offset <= input.length, 'error offset inside the input');
        }
        invariant(full.ok === spans.ok, 'decode and decodeWithSpans accept the same inputs');
        if (!prefix.ok) {
          invariant(!full.ok && full.error.message === prefix.error.message, 'a prefix failure is the same failure for decode');
          return;
        }
        const { value, end } = prefix.value;
        invariant(end >= 1 && end <= input.length, 'prefix end inside the input');
        invariant(full.ok === (end === input.length), 'decode accepts exactly when the prefix is the whole input');
        invariant(isDeepStrictEqual(decode(input.subarray(0, end), limits), value), 'the prefix bytes decode to the prefix value');
        if (limits) {
          const s = shape(value);
          invariant(s.depth <= limits.maxDepth! && s.items <= limits.maxItems!, 'limits respected');
        }
        if (!full.ok || !spans.ok) return;
        invariant(isDeepStrictEqual(full.value, value), 'decode and decodePrefix agree');
        // canonical input: re-encoding only sorts dict keys, which keeps the length
        const again = encode(full.value);
        invariant(again.length === input.length, 're-encoding keeps the length');
        invariant(isDeepStrictEqual(decode(again), full.value), 're-encoded bytes decode to the same value');
        const root = spans.value.value;
        if (!isDict(root)) {
          invariant(spans.value.spans.size === 0, 'no spans for a non-dict root');
          return;
        }
        invariant(spans.value.spans.size === root.size, 'a span for every top-level key');
        for (const [key, span] of spans.value.spans) {
          invariant(isDeepStrictEqual(decode(input.subarray(span.start, span.end)), root.get(key)), `span of ${JSON.stringify(key)} holds its value`);
        }
      },
    });
    // both sides were exercised: plenty of valid documents and plenty of rejections
    expect(outcomes.ok).toBeGreaterThan(2000);
    expect(outcomes.rejected).toBeGreaterThan(10_000);
  });
});
