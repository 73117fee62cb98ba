import { describe, expect, it } from 'vitest';
import { Bitfield } from '../../../src/core/bitfield.js';
import { ProtocolError } from '../../../src/core/errors.js';

describe('Bitfield', () => {
  it('uses BEP 3 wire order: piece 0 is the high bit of byte 0', () => {
    const b = new Bitfield(10);
    b.set(0);
    b.set(9);
    expect([...b.bytes]).toEqual([0x80, 0x40]);
    expect(b.toBuffer()).toEqual(Buffer.from([0x80, 0x40]));
    expect(b.has(0)).toBe(true);
    expect(b.has(1)).toBe(false);
    expect(b.has(9)).toBe(true);
  });

  it('set and clear report changes and keep the count', () => {
    const b = new Bitfield(20);
    expect(b.empty).toBe(true);
    expect(b.set(3)).toBe(true);
    expect(b.set(3)).toBe(false);
    expect(b.set(19)).toBe(true);
    expect(b.count).toBe(2);
    expect(b.clear(3)).toBe(true);
    expect(b.clear(3)).toBe(false);
    expect(b.count).toBe(1);
    expect(b.empty).toBe(false);
    expect(b.complete).toBe(false);
  });

  it('set throws out of range; has and clear are false out of range', () => {
    const b = new Bitfield(8);
    expect(() => b.set(8)).toThrow(RangeError);
    expect(() => b.set(-1)).toThrow(RangeError);
    expect(() => b.set(1.5)).toThrow(RangeError);
    expect(b.has(8)).toBe(false);
    expect(b.has(-1)).toBe(false);
    expect(b.clear(8)).toBe(false);
    expect(b.count).toBe(0);
  });

  it('full sets exactly size bits, spare bits clear', () => {
    const b = Bitfield.full(11);
    expect(b.count).toBe(11);
    expect(b.complete).toBe(true);
    expect([...b.bytes]).toEqual([0xff, 0xe0]);
    expect(Bitfield.full(0).complete).toBe(true);
    expect(Bitfield.full(0).bytes.length).toBe(0);
  });

  it('indices lists set bits ascending', () => {
    const b = new Bitfield(17);
    for (const i of [16, 0, 7, 8]) b.set(i);
    expect([...b.indices()]).toEqual([0, 7, 8, 16]);
  });

  it('the constructor copies given bytes and counts them', () => {
    const bytes = new Uint8Array([0xf0, 0x01]);
    const b = new Bitfield(16, bytes);
    bytes[0] = 0;
    expect(b.count).toBe(5);
    expect(b.has(0)).toBe(true);
    expect(() => new Bitfield(16, new Uint8Array(1))).toThrow(RangeError);
    expect(() => new Bitfield(-1)).toThrow(RangeError);
  });

  describe('fromWire', () => {
    it('accepts the exact length with spare bits clear', () => {
      const b = Bitfield.fromWire(Buffer.from([0xa5, 0x80]), 9);
      expect([...b.indices()]).toEqual([0, 2, 5, 7, 8]);
      expect(b.count).toBe(5);
    });

    it('accepts a multiple of eight pieces (no spare bits)', () => {
      expect(Bitfield.fromWire(Buffer.from([0xff, 0xff]), 16).complete).toBe(true);
    });

    it('refuses a payload of the wrong length', () => {
      expect(() => Bitfield.fromWire(Buffer.from([0xff]), 9)).toThrow(ProtocolError);
      expect(() => Bitfield.fromWire(Buffer.from([0, 0, 0]), 9)).toThrow(/3 bytes, expected 2/);
      expect(() => Bitfield.fromWire(Buffer.alloc(0), 1)).toThrow(ProtocolError);
    });

    it('refuses any spare bit set', () => {
      for (let bit = 0; bit < 7; bit++) {
        expect(() => Bitfield.fromWire(Buffer.from([0, 1 << bit]), 9)).toThrow(/spare bits/);
      }
      expect(() => Bitfield.fromWire(Buffer.from([0x01]), 7)).toThrow(ProtocolError);
      expect(Bitfield.fromWire(Buffer.from([0x02]), 7).has(6)).toBe(true);
    });

    it('does not alias the wire buffer', () => {
      const wire = Buffer.from([0x80]);
      const b = Bitfield.fromWire(wire, 1);
      wire[0] = 0;
      expect(b.has(0)).toBe(true);
    });
  });
});
