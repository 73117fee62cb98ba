import { describe, expect, it } from 'vitest';
import { Bitfield } from '../../../src/core/bitfield.js';
import { MessageDecoder } from '../../../src/wire/decoder.js';
import {
  CHOKE,
  INTERESTED,
  KEEP_ALIVE,
  NOT_INTERESTED,
  UNCHOKE,
  encodeCancel,
  encodeHave,
  encodeMessage,
  encodePieceHeader,
  encodeRequest,
  encodeRequests,
  type Message,
} from '../../../src/wire/messages.js';

const PIECE_COUNT = 20;

function bitfieldOf(indices: number[]): Bitfield {
  const b = new Bitfield(PIECE_COUNT);
  for (const i of indices) b.set(i);
  return b;
}

/** One of every message type, with the exact bytes BEP 3 / 6 / 10 give for it. */
const CASES: { m: Message; hex: string }[] = [
  { m: { type: 'keep-alive' }, hex: '00000000' },
  { m: { type: 'choke' }, hex: '0000000100' },
  { m: { type: 'unchoke' }, hex: '0000000101' },
  { m: { type: 'interested' }, hex: '0000000102' },
  { m: { type: 'not-interested' }, hex: '0000000103' },
  { m: { type: 'have', index: 19 }, hex: '000000050400000013' },
  { m: { type: 'bitfield', bitfield: bitfieldOf([0, 9, 19]) }, hex: '0000000405' + '804010' },
  { m: { type: 'request', index: 1, begin: 16384, length: 16384 }, hex: '0000000d06' + '00000001' + '00004000' + '00004000' },
  { m: { type: 'piece', index: 2, begin: 0, block: Buffer.from('abc') }, hex: '0000000c07' + '00000002' + '00000000' + '616263' },
  { m: { type: 'cancel', index: 3, begin: 32768, length: 100 }, hex: '0000000d08' + '00000003' + '00008000' + '00000064' },
  { m: { type: 'port', port: 6881 }, hex: '00000003091ae1' },
  { m: { type: 'suggest', index: 4 }, hex: '000000050d00000004' },
  { m: { type: 'have-all' }, hex: '000000010e' },
  { m: { type: 'have-none' }, hex: '000000010f' },
  { m: { type: 'reject', index: 5, begin: 0, length: 16384 }, hex: '0000000d10' + '00000005' + '00000000' + '00004000' },
  { m: { type: 'allowed-fast', index: 6 }, hex: '000000051100000006' },
  { m: { type: 'extended', id: 0, payload: Buffer.from('de') }, hex: '0000000414' + '00' + '6465' },
  { m: { type: 'unknown', id: 99, length: 3 }, hex: '0000000463' + '000000' },
];

describe('encodeMessage / decode round trip', () => {
  for (const { m, hex } of CASES) {
    it(`${m.type} encodes to its BEP byte layout and decodes back`, () => {
      const bytes = encodeMessage(m);
      expect(bytes.toString('hex')).toBe(hex);
      const decoder = new MessageDecoder({ pieceCount: PIECE_COUNT });
      const out = decoder.push(bytes);
      expect(out).toHaveLength(1);
      expect(encodeMessage(out[0]!).toString('hex')).toBe(hex);
      if (m.type === 'bitfield') {
        const got = out[0]!;
        expect(got.type).toBe('bitfield');
        if (got.type === 'bitfield') expect([...got.bitfield.indices()]).toEqual([0, 9, 19]);
      } else {
        expect(out[0]).toEqual(m);
      }
      expect(decoder.bufferedBytes).toBe(0);
    });
  }
});

describe('hot-path encoders', () => {
  it('match encodeMessage byte for byte', () => {
    expect(encodeRequest(7, 16384, 1000)).toEqual(encodeMessage({ type: 'request', index: 7, begin: 16384, length: 1000 }));
    expect(encodeRequest(7, 16384, 1000)).toHaveLength(17);
    expect(encodeCancel(7, 0, 5)).toEqual(encodeMessage({ type: 'cancel', index: 7, begin: 0, length: 5 }));
    expect(encodeHave(123456)).toEqual(encodeMessage({ type: 'have', index: 123456 }));
    const block = Buffer.from('hello block');
    const header = encodePieceHeader(9, 32768, block.length);
    expect(header).toHaveLength(13);
    expect(Buffer.concat([header, block])).toEqual(encodeMessage({ type: 'piece', index: 9, begin: 32768, block }));
  });

  it('encodeRequests is the requests end to end, and refuses out-of-range values too', () => {
    const blocks = [
      { index: 0, begin: 0, length: 16384 },
      { index: 7, begin: 16384, length: 1000 },
      { index: 2 ** 32 - 1, begin: 2 ** 32 - 16384, length: 16384 },
    ];
    expect(encodeRequests(blocks)).toEqual(Buffer.concat(blocks.map((b) => encodeRequest(b.index, b.begin, b.length))));
    expect(encodeRequests([])).toHaveLength(0);
    expect(() => encodeRequests([{ index: 1, begin: -1, length: 5 }])).toThrow(RangeError);
  });

  it('constant frames hold the right bytes', () => {
    expect(KEEP_ALIVE.toString('hex')).toBe('00000000');
    expect(CHOKE.toString('hex')).toBe('0000000100');
    expect(UNCHOKE.toString('hex')).toBe('0000000101');
    expect(INTERESTED.toString('hex')).toBe('0000000102');
    expect(NOT_INTERESTED.toString('hex')).toBe('0000000103');
  });

  it('encodeMessage returns a fresh buffer, never the shared constant', () => {
    const b = encodeMessage({ type: 'choke' });
    b[4] = 9;
    expect(CHOKE[4]).toBe(0);
  });

  it('refuses values that do not fit the wire fields', () => {
    expect(() => encodeRequest(-1, 0, 1)).toThrow(RangeError);
    expect(() => encodeHave(2 ** 32)).toThrow(RangeError);
    expect(() => encodeMessage({ type: 'port', port: 70000 })).toThrow(RangeError);
    expect(() => encodeMessage({ type: 'extended', id: 256, payload: Buffer.alloc(0) })).toThrow(RangeError);
  });
});
