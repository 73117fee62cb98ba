import { describe, expect, it } from 'vitest';
import { UploadQueue } from '../../../src/session/upload-queue.js';

const B = 16_384;

function order(q: UploadQueue): [number, number][] {
  return [...q.pending()].map((r) => [r.index, r.begin]);
}

describe('UploadQueue', () => {
  it('serves in request order and counts only live requests', () => {
    const q = new UploadQueue();
    q.push(3, 0, B);
    q.push(1, B, B);
    q.push(3, B, B);
    expect(q.size).toBe(3);
    expect(q.shift()).toMatchObject({ index: 3, begin: 0, length: B });
    expect(q.peek()).toMatchObject({ index: 1, begin: B });
    expect(order(q)).toEqual([[1, B], [3, B]]);
    expect(q.size).toBe(2);
  });

  it('cancel removes exactly one matching request (index, begin and length), the oldest', () => {
    const q = new UploadQueue();
    q.push(0, 0, B);
    q.push(5, 0, B);
    q.push(5, 0, B); // the same block twice: a confused but legal peer
    expect(q.cancel(5, 0, 100)).toBe(false); // another length: not the same request
    expect(q.cancel(9, 0, B)).toBe(false); // never asked
    expect(q.cancel(5, 0, B)).toBe(true);
    expect(q.size).toBe(2);
    expect(order(q)).toEqual([[0, 0], [5, 0]]);
    expect(q.cancel(5, 0, B)).toBe(true);
    expect(q.cancel(5, 0, B)).toBe(false);
    expect(order(q)).toEqual([[0, 0]]);
  });

  it('a cancelled head is skipped by peek and shift; a served request can no longer be cancelled', () => {
    const q = new UploadQueue();
    q.push(1, 0, B);
    q.push(2, 0, B);
    const head = q.peek()!;
    expect(q.cancel(1, 0, B)).toBe(true);
    expect(head.cancelled).toBe(true); // a loop holding it across an await sees this
    expect(q.peek()).toMatchObject({ index: 2 });
    expect(q.shift()).toMatchObject({ index: 2 });
    expect(q.cancel(2, 0, B)).toBe(false);
    expect(q.shift()).toBeUndefined();
    expect(q.size).toBe(0);
  });

  it('keeps cancelled entries bounded behind a head that is never served', () => {
    const q = new UploadQueue();
    q.push(0, 0, B); // the stalled head
    for (let i = 0; i < 100_000; i++) {
      q.push(1 + (i % 50), 0, B);
      q.cancel(1 + (i % 50), 0, B);
    }
    expect(q.size).toBe(1);
    expect(q.held).toBeLessThanOrEqual(2 * q.size + 65);
    expect(order(q)).toEqual([[0, 0]]);
  });

  it('clear drops everything, including what cancel could still find', () => {
    const q = new UploadQueue();
    q.push(1, 0, B);
    q.push(2, 0, B);
    q.clear();
    expect(q.size).toBe(0);
    expect(q.peek()).toBeUndefined();
    expect(q.cancel(1, 0, B)).toBe(false);
    q.push(1, 0, B);
    expect(q.shift()).toMatchObject({ index: 1 });
  });

  it('keys never collide for the largest pieces and indices', () => {
    const q = new UploadQueue();
    const big = 2 ** 29 - B; // last block of a 512 MiB piece
    q.push(2 ** 24 - 1, big, B);
    q.push(2 ** 24 - 2, big, B);
    expect(q.cancel(2 ** 24 - 1, big, B)).toBe(true);
    expect(order(q)).toEqual([[2 ** 24 - 2, big]]);
  });
});
