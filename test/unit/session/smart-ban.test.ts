/**
 * session/smart-ban.ts: a sole sender of a corrupt piece is guilty at once;
 * with several, the one whose block differs from the piece that later
 * verified is found, the honest ones are not; a sender in too many shared
 * failures is guilty without proof; undefined senders (holes) are skipped.
 */
import { describe, expect, it } from 'vitest';
import { BLOCK_SIZE } from '../../../src/core/geometry.js';
import { MAX_SHARED_FAILURES, SmartBan } from '../../../src/session/smart-ban.js';

const good = Buffer.alloc(3 * BLOCK_SIZE + 100, 7); // 4 blocks, the last short
function corrupt(block: number): Buffer {
  const b = Buffer.from(good);
  b[block * BLOCK_SIZE + 5] = 0;
  return b;
}

describe('SmartBan', () => {
  it('a sole sender is guilty at once', () => {
    const sb = new SmartBan();
    expect(sb.failed(3, corrupt(0), ['a', 'a', 'a', 'a'])).toEqual({ contributors: ['a'], guilty: [{ key: 'a', reason: 'sent a corrupt piece 3' }] });
  });

  it('several senders: only the one whose block differs from the verified piece, once it verifies', () => {
    const sb = new SmartBan();
    const { contributors, guilty } = sb.failed(1, corrupt(3), ['a', 'b', 'a', 'c']);
    expect(contributors.sort()).toEqual(['a', 'b', 'c']);
    expect(guilty).toEqual([]);
    expect(sb.verified(1, good)).toEqual([{ key: 'c', reason: 'sent corrupt data in piece 1' }]); // block 3, the short one
    expect(sb.verified(1, good)).toEqual([]); // forgotten once judged
    expect(sb.verified(2, good)).toEqual([]); // never suspected
  });

  it('a sender in too many shared failures is guilty without proof', () => {
    const sb = new SmartBan();
    let guilty: string[] = [];
    for (let i = 0; i < MAX_SHARED_FAILURES; i++) guilty = sb.failed(i, corrupt(0), ['x', `honest${i}`]).guilty.map((g) => g.key);
    expect(guilty).toEqual(['x']);
  });

  it('blocks nobody sent (holes) are skipped', () => {
    const sb = new SmartBan();
    const senders: (string | undefined)[] = [];
    senders[1] = 'a';
    senders[2] = 'b';
    sb.failed(0, corrupt(2), senders);
    expect(sb.verified(0, good)).toEqual([{ key: 'b', reason: 'sent corrupt data in piece 0' }]);
  });
});
