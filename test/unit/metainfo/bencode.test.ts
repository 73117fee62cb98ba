import { describe, expect, it } from 'vitest';
import { BencodeError } from '../../../src/core/errors.js';
import {
  type BDict,
  type BValue,
  decode,
  decodePrefix,
  decodeWithSpans,
  encode,
  getBytes,
  getInt,
  isDict,
  requireInt,
  utf8OrUndefined,
} from '../../../src/metainfo/bencode.js';

const b = (s: string): Buffer => Buffer.from(s, 'latin1');

/** Decode, expecting a BencodeError; returns it and asserts it came back fast. */
function rejects(input: Uint8Array, limits?: Parameters<typeof decode>[1], maxMs = 250): BencodeError {
  const t0 = performance.now();
  let caught: unknown;
  try {
    decode(input, limits);
  } catch (err) {
    caught = err;
  }
  const elapsedMs = performance.now() - t0;
  expect(caught).toBeInstanceOf(BencodeError);
  expect(elapsedMs).toBeLessThan(maxMs);
  return caught as BencodeError;
}

describe('decode: valid input', () => {
  it('decodes each type', () => {
    expect(decode(b('i42e'))).toBe(42);
    expect(decode(b('i-7e'))).toBe(-7);
    expect(decode(b('i0e'))).toBe(0);
    expect(decode(b('4:spam'))).toEqual(b('spam'));
    expect(decode(b('0:'))).toEqual(Buffer.alloc(0));
    expect(decode(b('le'))).toEqual([]);
    expect(decode(b('l4:spami3ee'))).toEqual([b('spam'), 3]);
    const d = decode(b('d3:cow3:moo4:spaml1:a1:bee'));
    expect(isDict(d)).toBe(true);
    expect([...(d as BDict).keys()]).toEqual(['cow', 'spam']);
    expect((d as BDict).get('spam')).toEqual([b('a'), b('b')]);
  });

  it('accepts the largest safe integers and refuses one past them', () => {
    expect(decode(b(`i${Number.MAX_SAFE_INTEGER}e`))).toBe(Number.MAX_SAFE_INTEGER);
    expect(decode(b(`i-${Number.MAX_SAFE_INTEGER}e`))).toBe(-Number.MAX_SAFE_INTEGER);
    rejects(b('i9007199254740992e'));
    rejects(b('i99999999999999999999999e'));
    rejects(b('i-9007199254740992e'));
  });

  it('keeps unsorted keys in file order and accepts a __proto__ key harmlessly', () => {
    const d = decode(b('d1:zi1e9:__proto__d1:xi1ee1:ai2ee')) as BDict;
    expect([...d.keys()]).toEqual(['z', '__proto__', 'a']);
    expect(isDict(d.get('__proto__'))).toBe(true);
    expect(({} as Record<string, unknown>)['x']).toBeUndefined();
  });

  it('keys are raw bytes as latin1 strings', () => {
    const d = decode(Buffer.concat([b('d2:'), Buffer.from([0xc3, 0xa9]), b('i1ee')])) as BDict;
    expect([...d.keys()]).toEqual(['\u00c3\u00a9']);
  });

  it('returns copies, not views into the input', () => {
    const input = b('4:spam');
    const v = decode(input) as Buffer;
    input[2] = 0x58;
    expect(v.toString()).toBe('spam');
  });

  it('allows nesting of exactly 100 levels', () => {
    expect(() => decode(b('l'.repeat(100) + 'e'.repeat(100)))).not.toThrow();
  });

  it('decodePrefix returns where the value ends and tolerates trailing bytes', () => {
    const r = decodePrefix(b('d8:msg_typei1e5:piecei0eeRAWDATA'));
    expect(r.end).toBe(25);
    expect(isDict(r.value)).toBe(true);
    rejects(b('d8:msg_typei1eeRAW'));
  });

  it('decodeWithSpans gives the raw span of each top-level dict value', () => {
    const input = b('d1:zi1e4:infod1:b1:x1:a1:ye1:ali1eee');
    const { spans } = decodeWithSpans(input);
    const info = spans.get('info')!;
    expect(input.subarray(info.start, info.end).toString('latin1')).toBe('d1:b1:x1:a1:ye');
    const a = spans.get('a')!;
    expect(input.subarray(a.start, a.end).toString('latin1')).toBe('li1ee');
    const z = spans.get('z')!;
    expect(input.subarray(z.start, z.end).toString('latin1')).toBe('i1e');
    expect(decodeWithSpans(b('li1ee')).spans.size).toBe(0);
  });
});

describe('decode: hostile input, each a BencodeError within milliseconds', () => {
  it('nesting of 101 levels', () => {
    expect(rejects(b('l'.repeat(101) + 'e'.repeat(101))).message).toMatch(/nesting/);
    expect(rejects(b('d1:a'.repeat(101) + 'i1e' + 'e'.repeat(101))).message).toMatch(/nesting/);
  });

  it('nesting of 100,000 levels does not blow the stack', () => {
    expect(rejects(b('l'.repeat(100_000) + 'e'.repeat(100_000))).message).toMatch(/nesting/);
    expect(rejects(b('l'.repeat(100_000)), { maxDepth: 1_000_000 }).message).toMatch(/truncated/);
  });

  it('negative and huge string lengths', () => {
    expect(rejects(b('l-3:e')).offset).toBe(1);
    expect(rejects(b('99999999999:')).message).toMatch(/past the end/);
    expect(rejects(b('99999999999999999999:abc')).message).toMatch(/safe integer/);
    expect(rejects(b('5:abc')).message).toMatch(/past the end/);
    expect(rejects(b('05:abcde')).message).toMatch(/leading zero/);
    rejects(b('4spam'));
  });

  it('non-canonical and malformed integers', () => {
    for (const s of ['i03e', 'i-0e', 'ie', 'i-e', 'i--1e', 'i1.5e', 'i 1e', 'i+1e', 'i00e', 'i-01e', 'i1']) rejects(b(s));
  });

  it('duplicate keys, non-string keys, dangling keys', () => {
    expect(rejects(b('d1:ai1e1:ai2ee')).message).toMatch(/duplicate/);
    expect(rejects(b('di1ei2ee')).message).toMatch(/key is not a string/);
    expect(rejects(b('d1:ae')).message).toMatch(/without a value/);
  });

  it('decodeWithSpans: trailing bytes refused unless allowed (a .torrent file), then ignored with the spans intact', () => {
    const input = b('d4:infod1:ai1eee\r\ngarbage i1e');
    expect(() => decodeWithSpans(input)).toThrow(/trailing bytes after value at byte 16/);
    const r = decodeWithSpans(input, undefined, { allowTrailingBytes: true });
    expect(r.end).toBe(16);
    expect(r.spans.get('info')).toEqual({ start: 7, end: 15 });
    expect(isDict(r.value)).toBe(true);
    // decode() (tracker replies, KRPC, PEX, BEP 10) stays strict
    expect(() => decode(input)).toThrow(/trailing bytes/);
    // and what comes before still has to be whole
    expect(() => decodeWithSpans(b('d4:infod1:ai1ee'), undefined, { allowTrailingBytes: true })).toThrow(BencodeError);
  });

  it('trailing bytes, stray terminators, empty input, unknown bytes', () => {
    rejects(b('i1ei2e'));
    rejects(b('e'));
    rejects(b(''));
    rejects(b('x'));
    rejects(b('l\x00e'));
  });

  it('truncation at every byte of a valid document', () => {
    const doc = encode({
      announce: 'http://127.0.0.1:1/announce',
      info: { length: 123456, name: 'x', 'piece length': 16384, pieces: Buffer.alloc(20 * 8, 7) },
      list: [1, -2, 'three', [[]], {}],
    });
    expect(() => decode(doc)).not.toThrow();
    for (let cut = 0; cut < doc.length; cut++) rejects(doc.subarray(0, cut));
  });

  it('item, size and depth limits are configurable', () => {
    rejects(b('li1ei2ei3ee'), { maxItems: 3 });
    expect(decode(b('li1ei2ee'), { maxItems: 3 })).toEqual([1, 2]);
    expect(rejects(b('i1e'), { maxBytes: 2 }).message).toMatch(/larger/);
    rejects(b('lle'), { maxDepth: 1 });
  });

  it('the default item cap stops a flood of tiny values (3 million real items take a moment)', () => {
    const flood = Buffer.alloc(2 + 2 * 3_000_001, 'le');
    flood[0] = 0x6c;
    flood.fill('le', 1, flood.length - 1);
    flood[flood.length - 1] = 0x65;
    expect(rejects(flood, { maxBytes: 100 * 1024 * 1024, maxDepth: 1_000 }, 5_000).message).toMatch(/items/);
  });

  it('the default size cap is 10 MiB', () => {
    const big = Buffer.concat([b(`${10 * 1024 * 1024}:`), Buffer.alloc(10 * 1024 * 1024)]);
    expect(rejects(big).message).toMatch(/larger/);
  });
});

describe('encode', () => {
  it('sorts keys as raw bytes and omits undefined', () => {
    expect(encode({ b: 1, a: 'x', c: undefined, B: [] }).toString()).toBe('d1:Ble1:a1:x1:bi1ee');
  });

  it('round trips decoded values byte for byte, including unusual keys', () => {
    const docs = ['d1:ai1e1:bli-5e0:d2:\xff\x00i0eeee', 'l4:spami-9007199254740991ee', 'd9:__proto__i1ee'];
    for (const s of docs) {
      const v = decode(b(s)) as BValue;
      expect(encode(v).toString('latin1')).toBe(s);
    }
  });

  it('encodes Uint8Array, Map and utf-8 strings', () => {
    expect(encode(new Uint8Array([1, 2]))).toEqual(Buffer.from([0x32, 0x3a, 1, 2]));
    expect(encode(new Map([['z', 1], ['a', 2]])).toString()).toBe('d1:ai2e1:zi1ee');
    expect(encode('é').toString('latin1')).toBe('2:\xc3\xa9');
  });

  it('refuses numbers bencode cannot carry', () => {
    expect(() => encode(1.5)).toThrow(TypeError);
    expect(() => encode(2 ** 53)).toThrow(TypeError);
    expect(() => encode(Number.NaN)).toThrow(TypeError);
  });
});

describe('accessors', () => {
  const fail = (key: string, problem: string) => new Error(`bad ${key}: ${problem}`);
  const d = decode(b('d1:ai1e1:b1:xe')) as BDict;

  it('return typed values, undefined when absent, and throw on wrong types when asked', () => {
    expect(getInt(d, 'a')).toBe(1);
    expect(getInt(d, 'b')).toBeUndefined();
    expect(() => getInt(d, 'b', fail)).toThrow('bad b: expected an integer');
    expect(getBytes(d, 'b')?.toString()).toBe('x');
    expect(getBytes(d, 'zz', fail)).toBeUndefined();
    expect(() => requireInt(d, 'zz', fail)).toThrow('bad zz: missing');
  });

  it('utf8OrUndefined is strict', () => {
    expect(utf8OrUndefined(Buffer.from('héllo'))).toBe('héllo');
    expect(utf8OrUndefined(Buffer.from([0xff, 0xfe]))).toBeUndefined();
  });
});
