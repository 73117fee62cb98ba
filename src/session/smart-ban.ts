/**
 * Who to blame for a piece that failed its hash (libtorrent's smart ban).
 * A sole sender is guilty at once. With several senders, each block's sender
 * and SHA-1 are kept; when the piece later verifies, a sender whose block
 * differs from the good data lied. As a fallback, a sender involved in
 * MAX_SHARED_FAILURES failed pieces is guilty too. Senders are plain keys
 * (peers' address:port, web seeds' URL). Pure: the session does the banning.
 */
import { createHash } from 'node:crypto';
import { BLOCK_SIZE } from '../core/geometry.js';

/** Failed pieces a sender may share with others before it is banned without proof. */
export const MAX_SHARED_FAILURES = 8;

export interface Verdict {
  key: string;
  reason: string;
}

export class SmartBan {
  /** For pieces that failed with several senders: each block's sender and SHA-1. */
  readonly #suspects = new Map<number, ({ sender: string; digest: Buffer } | undefined)[]>();
  readonly #strikes = new Map<string, number>();

  /**
   * Piece `index` (its bytes in `piece`, block k sent by senders[k]) failed:
   * its distinct contributors, and who to ban now.
   */
  failed(index: number, piece: Buffer, senders: readonly (string | undefined)[]): { contributors: string[]; guilty: Verdict[] } {
    const contributors = [...new Set(senders.filter((k): k is string => k !== undefined))];
    if (contributors.length === 1) return { contributors, guilty: [{ key: contributors[0]!, reason: `sent a corrupt piece ${index}` }] };
    this.#suspects.set(
      index,
      senders.map((sender, block) => (sender === undefined ? undefined : { sender, digest: blockDigest(piece, block) })),
    );
    const guilty: Verdict[] = [];
    for (const key of contributors) {
      const strikes = (this.#strikes.get(key) ?? 0) + 1;
      this.#strikes.set(key, strikes);
      if (strikes >= MAX_SHARED_FAILURES) guilty.push({ key, reason: 'involved in too many corrupt pieces' });
    }
    return { contributors, guilty };
  }

  /** Piece `index` verified with bytes `good`: the earlier senders whose block differed. */
  verified(index: number, good: Buffer): Verdict[] {
    const blocks = this.#suspects.get(index);
    if (!blocks) return [];
    this.#suspects.delete(index);
    const guilty: Verdict[] = [];
    blocks.forEach((b, block) => {
      if (b && !blockDigest(good, block).equals(b.digest)) guilty.push({ key: b.sender, reason: `sent corrupt data in piece ${index}` });
    });
    return guilty;
  }
}

function blockDigest(piece: Buffer, block: number): Buffer {
  const begin = block * BLOCK_SIZE;
  return createHash('sha1').update(piece.subarray(begin, Math.min(piece.length, begin + BLOCK_SIZE))).digest();
}
