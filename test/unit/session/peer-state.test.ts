/**
 * session/peer-state.ts: a request's key gives back its index and begin;
 * released requests are remembered newest last, a repeat moves to the end,
 * and past MAX_RELEASED the oldest is forgotten; a PeerState knows the
 * listening address of a peer we dialed, not of one that dialed us.
 */
import { describe, expect, it } from 'vitest';
import { BLOCK_SIZE } from '../../../src/core/geometry.js';
import type { PeerConnection } from '../../../src/peer/connection.js';
import { MAX_RELEASED, PeerState, blockKey, keyBegin, keyIndex, rememberReleased } from '../../../src/session/peer-state.js';

function fakeConn(direction: 'outgoing' | 'incoming'): PeerConnection {
  return { key: '10.0.0.1:6881', host: '10.0.0.1', port: 6881, direction } as unknown as PeerConnection;
}

describe('blockKey', () => {
  it('round-trips index and begin, also at the largest index and block', () => {
    for (const [index, begin] of [
      [0, 0],
      [7, 3 * BLOCK_SIZE],
      [1_000_000, 65_535 * BLOCK_SIZE],
    ] as const) {
      const key = blockKey(index, begin);
      expect([keyIndex(key), keyBegin(key)]).toEqual([index, begin]);
    }
    expect(blockKey(1, 0)).not.toBe(blockKey(0, 65_535 * BLOCK_SIZE));
  });
});

describe('rememberReleased', () => {
  it('keeps the newest MAX_RELEASED, a repeat counting as new', () => {
    const state = { released: new Set<number>() };
    for (let k = 0; k < MAX_RELEASED; k++) rememberReleased(state, k);
    rememberReleased(state, 0); // moves to the end: 1 is now the oldest
    rememberReleased(state, MAX_RELEASED);
    expect(state.released.size).toBe(MAX_RELEASED);
    expect(state.released.has(1)).toBe(false);
    expect(state.released.has(0)).toBe(true);
    expect([...state.released].at(-1)).toBe(MAX_RELEASED);
  });
});

describe('PeerState', () => {
  it('a dialed peer listens where we reached it; an incoming one has told us nothing yet', () => {
    expect(new PeerState(fakeConn('outgoing'), '10.0.0.1:6881', '10.0.0.1').listenAddress).toEqual({ host: '10.0.0.1', port: 6881 });
    const incoming = new PeerState(fakeConn('incoming'), undefined, '10.0.0.1');
    expect(incoming.listenAddress).toBeUndefined();
    expect(incoming.key).toBe('10.0.0.1:6881');
    expect(incoming.outstanding.size + incoming.released.size + incoming.metadataRequests).toBe(0);
  });
});
