/**
 * A set of piece indexes that only shrinks (the picker deletes a piece when it
 * starts it), asked for its lowest member a given peer has: the picker's
 * sequential order and its first/last-piece priority. Pure, no I/O.
 *
 * Cost of lowestOf(): a cursor shared by every caller stays on the byte of the
 * lowest member (it only moves up, so skipping started pieces costs O(pieces / 8)
 * over the whole download); from there, one AND of eight indexes with the
 * peer's bitfield per step until a member the peer has. So a peer that has the
 * lowest member (a seed, a peer ahead of us) costs O(1), and any other at most
 * one step per 8 pieces up to the answer: with `from`, a caller's repeated
 * questions for one peer make a single pass, at most pieces / 8 steps (the
 * cost of PiecePicker.interestingFor()), never a step per piece.
 */
import { Bitfield } from '../core/bitfield.js';

export class LowestFirst {
  readonly #bits: Bitfield;
  /** No member in the bytes below this one. */
  #cursor = 0;

  constructor(size: number, members: Iterable<number> = []) {
    this.#bits = new Bitfield(size);
    for (const i of members) this.#bits.set(i);
  }

  get size(): number {
    return this.#bits.count;
  }

  has(index: number): boolean {
    return this.#bits.has(index);
  }

  /** Returns true when `index` was a member. */
  delete(index: number): boolean {
    return this.#bits.clear(index);
  }

  /**
   * The lowest member at or above `from` that `peerHas` has, or undefined.
   * A caller asking again for the same peer passes the last answer as `from`
   * (nothing below it can have appeared), so that its scans together make one pass.
   */
  lowestOf(peerHas: Bitfield | 'all', from = 0): number | undefined {
    if (this.#bits.empty) return undefined;
    const mine = this.#bits.bytes;
    let byte = this.#cursor;
    while (mine[byte] === 0) byte++; // a member exists, so this stops inside the array
    this.#cursor = byte;
    const all = peerHas === 'all' || peerHas.complete;
    const theirs = all ? undefined : peerHas.bytes;
    const fromByte = from >> 3;
    if (fromByte > byte) byte = fromByte;
    for (; byte < mine.length; byte++) {
      let both = theirs ? mine[byte]! & theirs[byte]! : mine[byte]!;
      if (byte === fromByte) both &= 0xff >> (from & 7); // not the members below `from`
      if (both !== 0) return byte * 8 + highBit(both);
    }
    return undefined;
  }
}

/** The lowest index (highest bit, BEP 3 order) set in a nonzero byte. */
function highBit(v: number): number {
  return Math.clz32(v) - 24;
}
