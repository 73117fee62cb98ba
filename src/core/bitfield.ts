/**
 * A fixed-size bit set in BEP 3 wire order (piece 0 is the high bit of byte 0).
 * Owns spare-bit validation for received bitfields and a cached popcount.
 */
import { ProtocolError } from './errors.js';

export class Bitfield {
  readonly size: number;
  readonly bytes: Uint8Array;
  #count = 0;

  constructor(size: number, bytes?: Uint8Array) {
    if (!Number.isSafeInteger(size) || size < 0) throw new RangeError('bitfield size');
    this.size = size;
    const byteLength = Math.ceil(size / 8);
    if (bytes) {
      if (bytes.length !== byteLength) throw new RangeError('bitfield byte length');
      this.bytes = Uint8Array.from(bytes);
      for (let i = 0; i < byteLength; i++) this.#count += popcount8(this.bytes[i]!);
    } else {
      this.bytes = new Uint8Array(byteLength);
    }
  }

  /** Validate a peer's bitfield payload: exact length, spare bits clear. */
  static fromWire(payload: Uint8Array, size: number): Bitfield {
    const byteLength = Math.ceil(size / 8);
    if (payload.length !== byteLength) {
      throw new ProtocolError(`bitfield is ${payload.length} bytes, expected ${byteLength}`);
    }
    const spare = byteLength * 8 - size;
    if (spare > 0 && (payload[byteLength - 1]! & ((1 << spare) - 1)) !== 0) {
      throw new ProtocolError('bitfield has spare bits set');
    }
    return new Bitfield(size, payload);
  }

  static full(size: number): Bitfield {
    const b = new Bitfield(size);
    for (let i = 0; i < size; i++) b.set(i);
    return b;
  }

  has(index: number): boolean {
    if (index < 0 || index >= this.size) return false;
    return (this.bytes[index >> 3]! & (0x80 >> (index & 7))) !== 0;
  }

  /** Sets bit `index`; returns true when it changed. */
  set(index: number): boolean {
    if (index < 0 || index >= this.size || !Number.isInteger(index)) throw new RangeError(`bit ${index} out of range`);
    const mask = 0x80 >> (index & 7);
    const i = index >> 3;
    if (this.bytes[i]! & mask) return false;
    this.bytes[i] = this.bytes[i]! | mask;
    this.#count++;
    return true;
  }

  /** Clears bit `index`; returns true when it changed. */
  clear(index: number): boolean {
    if (index < 0 || index >= this.size) return false;
    const mask = 0x80 >> (index & 7);
    const i = index >> 3;
    if (!(this.bytes[i]! & mask)) return false;
    this.bytes[i] = this.bytes[i]! & ~mask;
    this.#count--;
    return true;
  }

  get count(): number {
    return this.#count;
  }

  get complete(): boolean {
    return this.#count === this.size;
  }

  get empty(): boolean {
    return this.#count === 0;
  }

  /** Indices of set bits, ascending. */
  *indices(): IterableIterator<number> {
    for (let i = 0; i < this.size; i++) if (this.has(i)) yield i;
  }

  toBuffer(): Buffer {
    return Buffer.from(this.bytes);
  }
}

function popcount8(v: number): number {
  v = v - ((v >> 1) & 0x55);
  v = (v & 0x33) + ((v >> 2) & 0x33);
  return (v + (v >> 4)) & 0x0f;
}
