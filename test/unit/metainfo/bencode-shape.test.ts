/**
 * decodeWithSpans with a `shape`: only the keys a reader names are built, every other
 * value is checked exactly as decode() checks it (same errors, same offsets, same limits).
 */
import { describe, expect, it } from 'vitest';
import { BencodeError } from '../../../src/core/errors.js';
import { type BDict, type BValue, type DecodeLimits, type Shape, DictShape, ListShape, decode, decodeWithSpans, isDict } from '../../../src/metainfo/bencode.js';
import { mulberry32 } from '../../helpers/prng.js';

const b = (s: string): Buffer => Buffer.from(s, 'latin1');

const KEEP = new DictShape({ a: 'scalar', keep: new DictShape({ x: 'scalar', l: new ListShape('scalar') }) });

/** What a shaped decode must give: the whole value cut down to the shape (containers of another kind: empty). */
function project(v: BValue, shape: Shape): BValue {
  if (Buffer.isBuffer(v) || typeof v === 'number') return v;
  if (Array.isArray(v)) return shape instanceof ListShape ? v.map((item) => project(item, shape.item)) : [];
  if (!(shape instanceof DictShape)) return new Map();
  const out: BDict = new Map();
  for (const [key, value] of v) {
    const entry = shape.entries.find((e) => e.key === key);
    if (entry !== undefined) out.set(key, project(value, entry.shape));
  }
  return out;
}

function outcome(f: () => BValue): { ok: true; value: BValue } | { ok: false; message: string } {
  try {
    return { ok: true, value: f() };
  } catch (err) {
    expect(err).toBeInstanceOf(BencodeError);
    return { ok: false, message: (err as Error).message };
  }
}

describe('decodeWithSpans with a shape', () => {
  it('builds only the keys it names, at every level, and records only their spans', () => {
    const input = b('d1:ai1e4:junkl0:0:delee3:key2:xx4:keepd1:l' + 'l1:ae' + '1:x1:y1:zd1:qi5eee5:zjunki-3ee');
    const { value, spans } = decodeWithSpans(input, undefined, { shape: KEEP });
    const root = value as BDict;
    expect([...root.keys()]).toEqual(['a', 'keep']);
    const keep = root.get('keep') as BDict;
    expect([...keep.keys()]).toEqual(['l', 'x']);
    expect(keep.get('l')).toEqual([b('a')]);
    expect(keep.get('x')).toEqual(b('y'));
    expect([...spans.keys()]).toEqual(['a', 'keep']);
    const span = spans.get('keep')!;
    expect(input.subarray(span.start, span.end).toString('latin1')).toBe('d1:ll1:ae1:x1:y1:zd1:qi5eee');
    // without a shape, as ever: everything
    const whole = decodeWithSpans(input);
    expect([...(whole.value as BDict).keys()]).toEqual(['a', 'junk', 'key', 'keep', 'zjunk']);
    expect([...whole.spans.keys()]).toEqual(['a', 'junk', 'key', 'keep', 'zjunk']);
  });

  it('a container of another kind than its shape is built empty; list items keep their indexes', () => {
    const shape = new DictShape({ a: 'scalar', d: new DictShape({}), l: new ListShape('scalar') });
    const root = decodeWithSpans(b('d1:ali1ei2ee1:dl1:xe1:ll1:ali1eed1:bi1ee1:cee'), undefined, { shape }).value as BDict;
    expect(root.get('a')).toEqual([]);
    expect(root.get('d')).toEqual([]);
    expect(root.get('l')).toEqual([b('a'), [], new Map(), b('c')]);
    expect(decodeWithSpans(b('l1:ae'), undefined, { shape }).value).toEqual([]);
    expect(decodeWithSpans(b('4:spam'), undefined, { shape }).value).toEqual(b('spam'));
  });

  it('300,000 values under an unknown key are checked and counted, not built', () => {
    const junk = Buffer.alloc(2 * 300_000, '0:');
    const input = Buffer.concat([b('d1:ai7e4:junkl'), junk, b('ee')]);
    const { value, spans } = decodeWithSpans(input, undefined, { shape: KEEP });
    expect(value).toEqual(new Map([['a', 7]]));
    expect(spans.size).toBe(1);
    // still counted against the item cap, with decode()'s message
    const cap = { maxItems: 299_999 };
    expect(() => decodeWithSpans(input, cap, { shape: KEEP })).toThrow(BencodeError);
    expect(outcome(() => decodeWithSpans(input, cap, { shape: KEEP }).value)).toEqual(outcome(() => decode(input, cap)));
  });

  it('refuses what decode() refuses inside skipped values, with the same message and offset', () => {
    const cases = [
      'd4:junki03ee', // non-canonical integer
      'd4:junkd1:bi1e1:bi2eee', // duplicate key, in order
      'd4:junkd1:bi1e1:ai1e1:bi2eee', // duplicate key after keys out of order
      'd1:zi1e1:ai1e1:zi2ee', // duplicate key among skipped keys of a shaped dict, out of order
      'd1:ai1e1:ai2ee', // duplicate kept key
      'd4:keepd1:x1:y1:q0:1:x1:zee', // duplicate kept key of a nested dict, out of order
      'd4:junkdi1ei2eee', // key not a string
      'd4:junkd1:aee', // key without a value
      'd4:junk' + 'l'.repeat(100) + 'e'.repeat(100) + 'e', // too deep
      'd4:junk5:abce', // string past the end
      'd4:junkl-3:ee', // negative length
    ];
    for (const s of cases) {
      const expected = outcome(() => decode(b(s)));
      expect(expected.ok, s).toBe(false);
      expect(outcome(() => decodeWithSpans(b(s), undefined, { shape: KEEP }).value), s).toEqual(expected);
    }
    // and accepts what it accepts: unsorted unique keys
    expect(decodeWithSpans(b('d4:junkd1:bi1e1:ai1e1:ci2ee1:ai1ee'), undefined, { shape: KEEP }).value).toEqual(new Map([['a', 1]]));
  });

  it("a ListShape's take gets each item with its index as it is decoded; the list is built empty", () => {
    const taken: [BValue, number][] = [];
    const item = new DictShape({ n: 'scalar' });
    const shape = new DictShape({ files: new ListShape(item, (v, i) => taken.push([v, i])), z: 'scalar' });
    const root = decodeWithSpans(b('d5:filesld1:ni1e1:xi9eed1:ni2eeli3eee1:zi4ee'), undefined, { shape }).value as BDict;
    expect(root.get('files')).toEqual([]);
    expect(root.get('z')).toBe(4);
    expect(taken).toEqual([
      [new Map([['n', 1]]), 0],
      [new Map([['n', 2]]), 1],
      [[], 2],
    ]);
    // an error later in the document still comes out of the decoder, after the items before it were taken
    taken.length = 0;
    expect(() => decodeWithSpans(b('d5:filesld1:ni1eei03ee'), undefined, { shape })).toThrow(/leading zero at byte 18/);
    expect(taken).toEqual([[new Map([['n', 1]]), 0]]);
  });

  it('byte strings are views into the input (its reader copies what it keeps); empty ones share one buffer', () => {
    const input = b('d1:a4:spam4:keepd1:ll0:0:eee');
    const root = decodeWithSpans(input, undefined, { shape: KEEP }).value as BDict;
    input[6] = 0x53;
    expect((root.get('a') as Buffer).toString()).toBe('Spam');
    const [e1, e2] = (root.get('keep') as BDict).get('l') as Buffer[];
    expect(e1!.length).toBe(0);
    expect(e1).toBe(e2);
  });

  it('random documents and their mutations: same outcome as decode(), the value cut to the shape', () => {
    const next = mulberry32(20261122);
    const rng = {
      range: (lo: number, hi: number): number => lo + Math.floor(next() * (hi - lo + 1)),
      chance: (p: number): boolean => next() < p,
      pick: <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)]!,
    };
    const keys = ['a', 'keep', 'x', 'l', 'junk', 'z', ''];
    const gen = (depth: number): string => {
      const r = rng.range(0, 9);
      if (depth > 4 || r < 3) {
        const n = rng.range(0, 3);
        return rng.chance(0.5) ? `i${rng.range(-20, 20)}e` : `${n}:${'xyz'.slice(0, n)}`;
      }
      if (r < 6) return `l${Array.from({ length: rng.range(0, 4) }, () => gen(depth + 1)).join('')}e`;
      const picked = Array.from({ length: rng.range(0, 5) }, () => rng.pick(keys));
      if (rng.chance(0.7)) picked.sort();
      return `d${picked.map((k) => `${k.length}:${k}${gen(depth + 1)}`).join('')}e`;
    };
    const LIMITS: DecodeLimits = { maxDepth: 4, maxItems: 40 };
    let ok = 0;
    let refused = 0;
    for (let i = 0; i < 3000; i++) {
      const doc = b(gen(0));
      for (let m = 0; m < 3; m++) {
        const input = Buffer.from(doc);
        if (m > 0) for (let k = rng.range(1, 3); k > 0 && input.length > 0; k--) input[rng.range(0, input.length - 1)] = b('ild:e0123-x')[rng.range(0, 10)]!;
        const limits = rng.chance(0.2) ? LIMITS : undefined;
        const whole = outcome(() => decode(input, limits));
        const shaped = outcome(() => decodeWithSpans(input, limits, { shape: KEEP }).value);
        if (whole.ok) {
          ok++;
          expect(shaped, input.toString('latin1')).toEqual({ ok: true, value: project(whole.value, KEEP) });
        } else {
          refused++;
          expect(shaped, input.toString('latin1')).toEqual(whole);
        }
      }
    }
    expect(ok).toBeGreaterThan(1000);
    expect(refused).toBeGreaterThan(1000);
    expect(isDict(decodeWithSpans(b('de'), undefined, { shape: KEEP }).value)).toBe(true);
  });
});
