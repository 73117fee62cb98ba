import { describe, expect, it } from 'vitest';
import { Bitfield } from '../../../src/core/bitfield.js';
import { BLOCK_SIZE, PieceGeometry } from '../../../src/core/geometry.js';
import { HEAD_BYTES, PiecePicker, type BlockRequest, type PeerToken, type PickerOptions } from '../../../src/pieces/picker.js';
import { mulberry32 } from '../../helpers/prng.js';

/** "1010" -> bitfield with pieces 0 and 2. */
function bf(picture: string): Bitfield {
  const b = new Bitfield(picture.length);
  [...picture].forEach((c, i) => c === '1' && b.set(i));
  return b;
}

const seeded = mulberry32;

/** Pieces of `blocks` full blocks each. */
function geometry(pieces: number, blocks = 1): PieceGeometry {
  return new PieceGeometry(blocks * BLOCK_SIZE, pieces * blocks * BLOCK_SIZE);
}

/** Availability from a picture: "1213" adds peers so that piece i is held by digit i peers. */
function withAvailability(picker: PiecePicker, picture: string): void {
  const max = Math.max(...[...picture].map(Number));
  for (let k = 1; k <= max; k++) picker.peerHas(bf([...picture].map((c) => (Number(c) >= k ? '1' : '0')).join('')));
}

// peers are identified by object identity, as connections would be
const A = { peer: 'a' };
const B = { peer: 'b' };
const C = { peer: 'c' };
const S = { peer: 's' };

function pieces(reqs: BlockRequest[]): number[] {
  return reqs.map((r) => r.index);
}

describe('availability', () => {
  it('counts bitfields, haves and seeds (a seed once, not per piece)', () => {
    const p = new PiecePicker(geometry(4), new Bitfield(4));
    withAvailability(p, '1213');
    expect([0, 1, 2, 3].map((i) => p.availability(i))).toEqual([1, 2, 1, 3]);
    p.peerHave(2);
    p.peerHasAll();
    expect([0, 1, 2, 3].map((i) => p.availability(i))).toEqual([2, 3, 3, 4]);
    p.peerLost(bf('0101'));
    p.peerLostAll();
    expect([0, 1, 2, 3].map((i) => p.availability(i))).toEqual([1, 1, 2, 2]);
  });

  it('rejects a bitfield of the wrong size and a have out of range', () => {
    const p = new PiecePicker(geometry(4), new Bitfield(4));
    expect(() => p.peerHas(bf('111'))).toThrow(RangeError);
    expect(() => p.peerHave(4)).toThrow(RangeError);
  });
});

describe('rarest first', () => {
  it('starts the rarest piece the peer has, then the next rarest', () => {
    const p = new PiecePicker(geometry(4), new Bitfield(4), { random: seeded(1) });
    withAvailability(p, '3132');
    expect(pieces(p.pick(A, 'all', 1))).toEqual([1]);
    expect(pieces(p.pick(A, 'all', 1))).toEqual([3]);
    expect(pieces(p.pick(A, 'all', 2)).sort()).toEqual([0, 2]);
  });

  it('follows availability changes (have messages and peers leaving)', () => {
    const p = new PiecePicker(geometry(4), new Bitfield(4), { random: seeded(1) });
    withAvailability(p, '2222');
    p.peerLost(bf('0010'));
    expect(pieces(p.pick(A, 'all', 1))).toEqual([2]);
    p.peerHave(0);
    p.peerHave(1);
    expect(pieces(p.pick(A, 'all', 1))).toEqual([3]);
  });

  it('only picks pieces the peer has, and skips pieces we have', () => {
    const p = new PiecePicker(geometry(5), bf('10000'), { random: seeded(2) });
    withAvailability(p, '12221');
    p.peerHas(bf('11010'));
    // piece 0 is ours; piece 4 is rarer but the peer lacks it
    expect(pieces(p.pick(A, bf('11010'), 5)).sort()).toEqual([1, 3]);
  });

  it('breaks ties at random among the rarest pieces, so downloaders spread out', () => {
    const firsts = new Set<number>();
    for (let seed = 1; seed <= 40; seed++) {
      const p = new PiecePicker(geometry(8), new Bitfield(8), { random: seeded(seed) });
      withAvailability(p, '21212121');
      const [first] = pieces(p.pick(A, 'all', 1));
      firsts.add(first!);
    }
    for (const f of firsts) expect([1, 3, 5, 7]).toContain(f);
    expect(firsts.size).toBeGreaterThan(2);
  });

  it('picks pieces only a seed has (have-all)', () => {
    const p = new PiecePicker(geometry(3), new Bitfield(3), { random: seeded(3) });
    p.peerHasAll();
    expect(pieces(p.pick(S, 'all', 3)).sort()).toEqual([0, 1, 2]);
  });
});

describe('blocks and partial pieces', () => {
  it('requests exact block sizes, the last block short', () => {
    const g = new PieceGeometry(3 * BLOCK_SIZE, 4 * BLOCK_SIZE + 100); // piece 1: 1 block + 100 bytes
    const p = new PiecePicker(g, bf('10'));
    p.peerHasAll();
    expect(p.pick(A, 'all', 10)).toEqual([
      { index: 1, begin: 0, length: BLOCK_SIZE },
      { index: 1, begin: BLOCK_SIZE, length: 100 },
    ]);
    expect(p.missingBlocks).toBe(2);
  });

  it('finishes a partial piece before starting a rarer one', () => {
    const p = new PiecePicker(geometry(3, 4), new Bitfield(3), { random: seeded(4) });
    withAvailability(p, '222');
    const first = p.pick(A, 'all', 2);
    expect(first.map((r) => r.begin)).toEqual([0, BLOCK_SIZE]);
    const started = first[0]!.index;
    const other = [0, 1, 2].find((i) => i !== started)!;
    p.peerLost(bf([0, 1, 2].map((i) => (i === other ? '1' : '0')).join(''))); // make another piece rarer
    const second = p.pick(B, 'all', 2);
    expect(second).toEqual([
      { index: started, begin: 2 * BLOCK_SIZE, length: BLOCK_SIZE },
      { index: started, begin: 3 * BLOCK_SIZE, length: BLOCK_SIZE },
    ]);
    expect(pieces(p.pick(B, 'all', 1))).toEqual([other]);
  });

  it('release puts a block back in the pool for the next peer', () => {
    const p = new PiecePicker(geometry(2, 4), new Bitfield(2), { random: seeded(5) });
    p.peerHasAll();
    const started = p.pick(A, 'all', 4)[0]!.index;
    const only = bf(started === 0 ? '10' : '01'); // other peers only have the started piece
    expect(p.pick(B, only, 4)).toEqual([]);
    p.release(A, started, 2 * BLOCK_SIZE);
    expect(p.pick(B, only, 4)).toEqual([{ index: started, begin: 2 * BLOCK_SIZE, length: BLOCK_SIZE }]);
    p.releaseAll(A);
    expect(p.pick(C, only, 4).map((r) => r.begin)).toEqual([0, BLOCK_SIZE, 3 * BLOCK_SIZE]);
  });

  it('a block released while another peer also holds it stays requested', () => {
    const p = new PiecePicker(geometry(1, 1), new Bitfield(1));
    p.peerHasAll();
    p.pick(A, 'all', 1);
    p.pick(B, 'all', 1); // endgame duplicate
    p.release(A, 0, 0);
    expect(p.inEndgame).toBe(true);
    expect(p.requestersOf(0, 0)).toEqual([B]);
  });

  it('tracks completion, verification and missing blocks', () => {
    const p = new PiecePicker(geometry(2, 2), new Bitfield(2));
    p.peerHasAll();
    expect(p.missingBlocks).toBe(4);
    const reqs = p.pick(A, 'all', 2);
    const index = reqs[0]!.index;
    expect(p.received(A, index, 0)).toBe('new');
    expect(p.isPieceComplete(index)).toBe(false);
    expect(p.received(A, index, BLOCK_SIZE)).toBe('new');
    expect(p.isPieceComplete(index)).toBe(true);
    expect(p.missingBlocks).toBe(2);
    p.pieceVerified(index);
    expect(p.have.has(index)).toBe(true);
    expect(p.isPieceComplete(index)).toBe(false);
    expect(p.received(A, index, 0)).toBe('duplicate');
    expect(p.piecesInProgress).toBe(0);
  });

  it('names the peers that delivered a piece, for strikes when its hash fails', () => {
    const p = new PiecePicker(geometry(1, 3), new Bitfield(1));
    p.peerHasAll();
    const [r0, r1, r2] = p.pick(A, 'all', 3);
    p.release(A, 0, r2!.begin);
    p.pick(B, 'all', 1);
    p.received(A, 0, r0!.begin);
    p.received(A, 0, r1!.begin);
    p.received(B, 0, r2!.begin);
    expect(p.contributors(0)).toEqual([A, B]);
    p.pieceFailed(0);
    expect(p.contributors(0)).toEqual([]);
  });

  it('pieceFailed makes every block of the piece missing again', () => {
    const p = new PiecePicker(geometry(1, 3), new Bitfield(1));
    p.peerHasAll();
    for (const r of p.pick(A, 'all', 3)) p.received(A, r.index, r.begin);
    expect(p.missingBlocks).toBe(0);
    p.pieceFailed(0);
    expect(p.isPieceComplete(0)).toBe(false);
    expect(p.missingBlocks).toBe(3);
    expect(p.inEndgame).toBe(false);
    expect(p.pick(B, 'all', 5).map((r) => r.begin)).toEqual([0, BLOCK_SIZE, 2 * BLOCK_SIZE]);
  });

  it("calls a block 'unexpected' when it is not one we asked for", () => {
    const p = new PiecePicker(geometry(2, 2), new Bitfield(2));
    p.peerHasAll();
    const [r] = p.pick(A, 'all', 1);
    const other = 1 - r!.index;
    expect(p.received(A, other, 0)).toBe('unexpected'); // piece never started
    expect(p.received(A, r!.index, 1)).toBe('unexpected'); // not a block boundary
    expect(p.received(A, r!.index, 2 * BLOCK_SIZE)).toBe('unexpected'); // past the piece
    expect(p.received(A, 7, 0)).toBe('unexpected');
    expect(p.received(A, r!.index, 0)).toBe('new');
  });

  it('accepts a late block after its request was released', () => {
    const p = new PiecePicker(geometry(1, 2), new Bitfield(1));
    p.peerHasAll();
    p.pick(A, 'all', 2);
    p.release(A, 0, 0);
    expect(p.received(A, 0, 0)).toBe('new');
    // block 0 is no longer missing: only block 1 (still with 'a') is handed out, as an endgame duplicate
    expect(p.pick(B, 'all', 2)).toEqual([{ index: 0, begin: BLOCK_SIZE, length: BLOCK_SIZE }]);
  });
});

describe('endgame', () => {
  it('keeps every endgame requester of a block, in order, whichever of them lets go first', () => {
    const p = new PiecePicker(geometry(1, 1), new Bitfield(1));
    p.peerHasAll();
    for (const peer of [A, B, C]) expect(p.pick(peer, 'all', 1)).toHaveLength(1);
    expect(p.requestersOf(0, 0)).toEqual([A, B, C]);
    p.release(B, 0, 0); // a middle one
    expect(p.requestersOf(0, 0)).toEqual([A, C]);
    p.release(A, 0, 0); // the first: the next one takes its place
    expect(p.requestersOf(0, 0)).toEqual([C]);
    p.release(A, 0, 0); // not a requester any more: no change
    expect(p.requestersOf(0, 0)).toEqual([C]);
    expect(p.pick(S, 'all', 1)).toHaveLength(1); // still requested: S is only another duplicate
    p.releaseAll(C);
    p.releaseAll(S);
    expect(p.requestersOf(0, 0)).toEqual([]);
    expect(p.inEndgame).toBe(false); // open again
    expect(p.pick(A, 'all', 1)).toEqual([{ index: 0, begin: 0, length: BLOCK_SIZE }]);
  });

  it('hands out blocks requested by others, then reports the second copy as duplicate', () => {
    const p = new PiecePicker(geometry(2, 1), new Bitfield(2));
    p.peerHasAll();
    expect(p.pick(A, 'all', 10)).toHaveLength(2);
    expect(p.inEndgame).toBe(true);
    expect(p.pick(A, 'all', 10)).toEqual([]); // never the same block twice to one peer
    const dup = p.pick(B, 'all', 10);
    expect(dup.map((r) => r.index).sort()).toEqual([0, 1]);
    expect(p.received(A, 0, 0)).toBe('new');
    expect(p.requestersOf(0, 0)).toEqual([B]);
    expect(p.received(B, 0, 0)).toBe('duplicate');
    expect(p.requestersOf(0, 0)).toEqual([]);
  });

  it('prefers blocks with the fewest requesters and only pieces the peer has', () => {
    const p = new PiecePicker(geometry(3, 1), new Bitfield(3));
    p.peerHasAll();
    p.pick(A, 'all', 3);
    expect(pieces(p.pick(B, bf('010'), 1))).toEqual([1]);
    const c = p.pick(C, bf('011'), 1);
    expect(pieces(c)).toEqual([2]); // piece 1 already has two requesters, piece 0 the peer lacks
  });

  it('is not endgame while a block is still open', () => {
    const p = new PiecePicker(geometry(1, 2), new Bitfield(1));
    p.peerHasAll();
    p.pick(A, 'all', 1);
    expect(p.inEndgame).toBe(false);
    // the last open block first, then (now in endgame) a duplicate of a's block
    expect(p.pick(B, 'all', 5)).toEqual([
      { index: 0, begin: BLOCK_SIZE, length: BLOCK_SIZE },
      { index: 0, begin: 0, length: BLOCK_SIZE },
    ]);
    expect(p.inEndgame).toBe(true);
  });

  it('copies only the blocks the caller says are worth it, and passes their requesters', () => {
    const p = new PiecePicker(geometry(3, 1), new Bitfield(3));
    p.peerHasAll();
    p.pick(A, bf('100'), 1);
    p.pick(B, bf('011'), 2);
    expect(p.inEndgame).toBe(true);
    const asked: PeerToken[][] = [];
    const slowA = (requesters: readonly PeerToken[]): boolean => {
      asked.push([...requesters]);
      return requesters.every((r) => r === A);
    };
    expect(pieces(p.pick(C, 'all', 10, slowA))).toEqual([0]); // B's blocks stay B's alone
    expect(asked).toEqual([[A], [B], [B]]);
    expect(p.requestersOf(0, 0)).toEqual([A, C]);
    expect(p.requestersOf(1, 0)).toEqual([B]);
    // without the predicate every block is fair game
    expect(pieces(p.pick(S, 'all', 10)).sort()).toEqual([0, 1, 2]);
  });

  it('copies the newest requests first: the tail of a slow queue, which would come last', () => {
    const p = new PiecePicker(geometry(6, 1), new Bitfield(6));
    p.peerHasAll();
    const first = pieces(p.pick(A, 'all', 3));
    const then = pieces(p.pick(A, 'all', 3));
    expect(pieces(p.pick(B, 'all', 2))).toEqual([then[2], then[1]]);
    expect(pieces(p.pick(B, 'all', 10))).toEqual([then[0], first[2], first[1], first[0]]);
  });

  it('forgets duplicates once the piece is verified', () => {
    const p = new PiecePicker(geometry(1, 1), new Bitfield(1));
    p.peerHasAll();
    p.pick(A, 'all', 1);
    p.pick(B, 'all', 1);
    p.received(A, 0, 0);
    p.pieceVerified(0);
    expect(p.inEndgame).toBe(false);
    expect(p.missingBlocks).toBe(0);
    expect(p.received(B, 0, 0)).toBe('duplicate');
    p.releaseAll(B); // harmless
    expect(p.pick(C, 'all', 1)).toEqual([]);
  });
});

describe('interest', () => {
  it('is interested exactly when the peer has a piece we lack', () => {
    const p = new PiecePicker(geometry(10), bf('1111100000'));
    expect(p.interestingFor(bf('1111100000'))).toBe(false);
    expect(p.interestingFor(bf('0000000001'))).toBe(true);
    expect(p.interestingFor('all')).toBe(true);
    for (let i = 5; i < 10; i++) p.pieceVerified(i);
    expect(p.interestingFor('all')).toBe(false);
  });
});

/** The orders a picker can run in: rarest first, sequential, each with first/last pieces. */
const ORDERS: [string, PickerOptions][] = [
  ['rarest first', {}],
  ['sequential', { sequential: true }],
  ['rarest first, priority pieces', { priority: [0, 40, 41, 96] }],
  ['sequential, priority pieces', { sequential: true, priority: [0, 40, 41, 96] }],
];

describe('never stuck', () => {
  it.each(ORDERS)('completes with random peers joining, leaving, stalling and sending bad data (%s)', (_name, order) => {
    for (let seed = 1; seed <= 5; seed++) {
      const random = seeded(seed);
      const pieceCount = 97;
      const g = new PieceGeometry(3 * BLOCK_SIZE, 97 * 3 * BLOCK_SIZE - 5000);
      const p = new PiecePicker(g, new Bitfield(pieceCount), { random, ...order });
      interface Peer { id: number; has: Bitfield | 'all'; inflight: BlockRequest[]; stalls: boolean }
      let nextId = 0;
      const peers: Peer[] = [];
      const join = (): void => {
        let has: Bitfield | 'all';
        if (random() < 0.3) {
          has = 'all';
          p.peerHasAll();
        } else {
          has = new Bitfield(pieceCount);
          for (let i = 0; i < pieceCount; i++) if (random() < 0.5) has.set(i);
          p.peerHas(has);
        }
        peers.push({ id: nextId++, has, inflight: [], stalls: random() < 0.2 });
      };
      const leave = (k: number): void => {
        const [peer] = peers.splice(k, 1);
        p.releaseAll(peer!.id);
        if (peer!.has === 'all') p.peerLostAll();
        else p.peerLost(peer!.has);
      };
      for (let i = 0; i < 4; i++) join();
      p.peerHasAll(); // one steady seed that never leaves, so completion is possible
      peers.push({ id: nextId++, has: 'all', inflight: [], stalls: false });
      const steady = peers[peers.length - 1]!;
      let steps = 0;
      while (!p.have.complete && steps < 200_000) {
        steps++;
        const r = random();
        if (r < 0.02 && peers.length < 12) join();
        else if (r < 0.04 && peers.length > 1) {
          const k = Math.floor(random() * peers.length);
          if (peers[k] !== steady) leave(k);
        }
        for (const peer of peers) {
          if (peer.inflight.length < 4) peer.inflight.push(...p.pick(peer.id, peer.has, 4 - peer.inflight.length));
          if (peer.stalls || peer.inflight.length === 0) continue;
          const req = peer.inflight.shift()!;
          if (p.received(peer.id, req.index, req.begin) !== 'new') continue;
          if (!p.isPieceComplete(req.index)) continue;
          if (random() < 0.05) p.pieceFailed(req.index);
          else p.pieceVerified(req.index);
        }
      }
      expect(p.have.complete).toBe(true);
      expect(p.missingBlocks).toBe(0);
      expect(p.piecesInProgress).toBe(0);
    }
  });
});

describe('scale', () => {
  it('keeps per-block state only for pieces in progress (4 GiB torrent, 16 KiB pieces)', () => {
    const g = new PieceGeometry(BLOCK_SIZE, 4 * 1024 ** 3);
    const p = new PiecePicker(g, new Bitfield(g.pieceCount));
    p.peerHasAll();
    expect(p.pick(A, 'all', 64)).toHaveLength(64);
    expect(p.piecesInProgress).toBe(64);
  });

  it.each(ORDERS.slice(0, 2))('picks every block of a 4096-piece torrent with 8 peers quickly (%s)', (_name, order) => {
    const g = new PieceGeometry(256 * 1024, 4096 * 256 * 1024);
    const p = new PiecePicker(g, new Bitfield(4096), { random: seeded(9), ...order });
    const random = seeded(10);
    const peers: Bitfield[] = [];
    for (let k = 0; k < 8; k++) {
      const b = new Bitfield(4096);
      for (let i = 0; i < 4096; i++) if (k === 0 || random() < 0.7) b.set(i);
      peers.push(b);
      p.peerHas(b);
    }
    const started = performance.now();
    let blocks = 0;
    for (let round = 0; round < 100_000 && !p.have.complete; round++) {
      for (let k = 0; k < 8; k++) {
        for (const r of p.pick(k, peers[k]!, 16)) {
          blocks++;
          if (p.received(k, r.index, r.begin) === 'new' && p.isPieceComplete(r.index)) p.pieceVerified(r.index);
        }
      }
    }
    const ms = performance.now() - started;
    expect(p.have.complete).toBe(true);
    expect(blocks).toBe(4096 * 16);
    expect(ms).toBeLessThan(2000);
  });
});

describe('a wanted set (file selection)', () => {
  it('picks only wanted pieces, however rare the others are', () => {
    const p = new PiecePicker(geometry(6), new Bitfield(6), { wanted: bf('010010'), random: seeded(1) });
    withAvailability(p, '111911'); // pieces 0, 2, 3, 5 rarer than 4, still never picked
    const got = p.pick(A, 'all', 10);
    expect(pieces(got).sort()).toEqual([1, 4]);
    const copies = p.pick(B, 'all', 10); // endgame: copies, of wanted pieces only
    expect(p.inEndgame).toBe(true);
    expect(pieces(copies).sort()).toEqual([1, 4]);
  });

  it('counts only wanted blocks as missing, and is done when they verify', () => {
    const p = new PiecePicker(geometry(4, 2), bf('0100'), { wanted: bf('0110') });
    expect(p.missingBlocks).toBe(2); // piece 2's two blocks; piece 1 is had
    expect(p.done).toBe(false);
    for (const r of p.pick(A, 'all', 10)) expect(p.received(A, r.index, r.begin)).toBe('new');
    p.pieceVerified(2);
    expect(p.missingBlocks).toBe(0);
    expect(p.done).toBe(true);
    expect(p.inEndgame).toBe(false);
  });

  it('a peer holding only unwanted pieces is not interesting; one holding a wanted missing piece is', () => {
    const p = new PiecePicker(geometry(10), new Bitfield(10), { wanted: bf('0000000001') });
    expect(p.interestingFor(bf('1111111110'))).toBe(false);
    expect(p.interestingFor(bf('0000000001'))).toBe(true);
    expect(p.interestingFor('all')).toBe(true);
    p.pieceVerified(9);
    expect(p.interestingFor('all')).toBe(false);
    expect(p.interestingFor(Bitfield.full(10))).toBe(false);
  });

  it('blocks of an unwanted piece are unexpected', () => {
    const p = new PiecePicker(geometry(3), new Bitfield(3), { wanted: bf('100') });
    expect(p.received(A, 1, 0)).toBe('unexpected');
  });

  it('without a wanted set, every missing piece is wanted (done only when complete)', () => {
    const p = new PiecePicker(geometry(3), bf('110'));
    expect(p.done).toBe(false);
    expect(p.interestingFor(bf('001'))).toBe(true);
    p.pieceVerified(2);
    expect(p.done).toBe(true);
  });

  it('refuses a wanted set of the wrong size', () => {
    expect(() => new PiecePicker(geometry(3), new Bitfield(3), { wanted: new Bitfield(4) })).toThrow(RangeError);
  });
});

/** Every block of the requests, received from `peer`, and the complete pieces verified. */
function deliver(p: PiecePicker, peer: PeerToken, reqs: BlockRequest[]): void {
  for (const r of reqs) if (p.received(peer, r.index, r.begin) === 'new' && p.isPieceComplete(r.index)) p.pieceVerified(r.index);
}

describe('sequential (--sequential)', () => {
  it('one peer: pieces start in increasing index order, however rare each is', () => {
    const p = new PiecePicker(geometry(6), new Bitfield(6), { sequential: true, random: seeded(1) });
    withAvailability(p, '391213'); // rarest first would start piece 2
    expect(pieces(p.pick(A, 'all', 1))).toEqual([0]);
    expect(pieces(p.pick(A, 'all', 3))).toEqual([1, 2, 3]);
    expect(pieces(p.pick(A, 'all', 10))).toEqual([4, 5]);
  });

  it('takes every block of a piece, in order, before the next piece', () => {
    const p = new PiecePicker(geometry(3, 3), new Bitfield(3), { sequential: true });
    p.peerHasAll();
    expect(p.pick(A, 'all', 4).map((r) => [r.index, r.begin / BLOCK_SIZE])).toEqual([[0, 0], [0, 1], [0, 2], [1, 0]]);
  });

  it('several peers: each gets the lowest-index missing pieces it has that nobody else is fetching', () => {
    const p = new PiecePicker(geometry(10, 2), new Bitfield(10), { sequential: true });
    const cHas = bf('0001111111'); // C lacks the first three pieces
    p.peerHasAll();
    p.peerHas(cHas);
    expect(pieces(p.pick(A, 'all', 4))).toEqual([0, 0, 1, 1]);
    expect(pieces(p.pick(C, cHas, 4))).toEqual([3, 3, 4, 4]);
    expect(pieces(p.pick(B, 'all', 4))).toEqual([2, 2, 5, 5]); // the lowest nobody fetches, 2 before 5
    expect(pieces(p.pick(A, 'all', 2))).toEqual([6, 6]);
    expect(p.inEndgame).toBe(false);
  });

  it('only pieces we lack and want (--select), lowest first', () => {
    const p = new PiecePicker(geometry(8), bf('01000000'), { sequential: true, wanted: bf('01101011') });
    p.peerHasAll();
    expect(pieces(p.pick(A, 'all', 10))).toEqual([2, 4, 6, 7]); // 1 is had; 0, 3, 5 not wanted
  });

  it('partial pieces finish first, lowest index first', () => {
    const p = new PiecePicker(geometry(6, 2), new Bitfield(6), { sequential: true });
    p.peerHasAll();
    p.pick(A, 'all', 6); // pieces 0, 1, 2
    expect(pieces(p.pick(B, 'all', 1))).toEqual([3]); // piece 3 left with an open block
    p.releaseAll(A); // pieces 0-2 open again, after 3
    expect(pieces(p.pick(C, 'all', 8))).toEqual([0, 0, 1, 1, 2, 2, 3, 4]);
  });

  it('follows availability: a piece the peer lacks waits for the first peer that has it', () => {
    const p = new PiecePicker(geometry(6), new Bitfield(6), { sequential: true });
    const aHas = bf('001111');
    p.peerHas(aHas);
    expect(pieces(p.pick(A, aHas, 1))).toEqual([2]);
    aHas.set(1); // A announces piece 1: now the lowest it has
    p.peerHave(1);
    expect(pieces(p.pick(A, aHas, 1))).toEqual([1]);
    p.peerLost(aHas); // availability does not change the order
    p.peerHasAll();
    expect(pieces(p.pick(B, 'all', 4))).toEqual([0, 3, 4, 5]);
  });

  it('endgame still copies blocks of slow peers, newest first, and the download completes', () => {
    const p = new PiecePicker(geometry(4), new Bitfield(4), { sequential: true });
    p.peerHasAll();
    const a = p.pick(A, 'all', 10);
    expect(pieces(a)).toEqual([0, 1, 2, 3]);
    expect(p.inEndgame).toBe(true);
    const b = p.pick(B, 'all', 10);
    expect(pieces(b)).toEqual([3, 2, 1, 0]);
    deliver(p, B, b);
    expect(p.received(A, 0, 0)).toBe('duplicate');
    expect(p.done).toBe(true);
  });

  it("the head: a slow peer's blocks of the lowest missing pieces are copied by a peer that would deliver them sooner", () => {
    const p = new PiecePicker(geometry(8, 2), new Bitfield(8), { sequential: true });
    p.peerHasAll();
    expect(pieces(p.pick(A, 'all', 4))).toEqual([0, 0, 1, 1]); // A (slow) holds pieces 0 and 1
    const asked: [PeerToken, number, number][] = [];
    const hurryForA = (requester: PeerToken, index: number, begin: number): boolean => {
      asked.push([requester, index, begin / BLOCK_SIZE]);
      return requester === A;
    };
    // B first copies A's head blocks, then goes on with the lowest pieces nobody fetches
    const b = p.pick(B, 'all', 6, undefined, hurryForA);
    expect(b.map((r) => [r.index, r.begin / BLOCK_SIZE])).toEqual([[0, 0], [0, 1], [1, 0], [1, 1], [2, 0], [2, 1]]);
    expect(asked).toEqual([[A, 0, 0], [A, 0, 1], [A, 1, 0], [A, 1, 1]]);
    expect(p.requestersOf(0, 0)).toEqual([A, B]); // the first copy to arrive cancels the other
    // one copy at most: C is not even asked about the blocks A and B both hold; B's piece 2 it may not copy
    asked.length = 0;
    expect(pieces(p.pick(C, 'all', 2, undefined, hurryForA))).toEqual([3, 3]);
    expect(asked).toEqual([[B, 2, 0], [B, 2, 1]]);
    deliver(p, B, b);
    expect(p.received(A, 0, 0)).toBe('duplicate');
    expect(p.pick(A, 'all', 0)).toEqual([]);
  });

  it('the head: no copies when hurry says no, outside sequential, or beyond HEAD_BYTES', () => {
    const seq = new PiecePicker(geometry(8, 2), new Bitfield(8), { sequential: true });
    seq.peerHasAll();
    seq.pick(A, 'all', 4);
    expect(pieces(seq.pick(B, 'all', 2, undefined, () => false))).toEqual([2, 2]);

    const rarest = new PiecePicker(geometry(8, 2), new Bitfield(8), { random: seeded(3) });
    rarest.peerHasAll();
    const a = rarest.pick(A, 'all', 4);
    const b = rarest.pick(B, 'all', 2, undefined, () => true);
    expect(pieces(b).some((i) => pieces(a).includes(i))).toBe(false);

    // 1 MiB pieces: the head is the lowest HEAD_BYTES (4 MiB) of missing pieces, so 4 pieces
    const big = new PiecePicker(geometry(8, 64), new Bitfield(8), { sequential: true });
    big.peerHasAll();
    expect(HEAD_BYTES).toBe(4 * 1024 * 1024);
    const held = big.pick(A, 'all', 64 * 6); // A holds pieces 0-5
    expect(new Set(pieces(held))).toEqual(new Set([0, 1, 2, 3, 4, 5]));
    // B asks for every block left: pieces 0-3 copied, 4-5 not (beyond the head: left to endgame), then 6-7 new
    expect(new Set(pieces(big.pick(B, 'all', 64 * 6, undefined, (r) => r === A)))).toEqual(new Set([0, 1, 2, 3, 6, 7]));
  });

  it('the head moves up as the lowest pieces are verified', () => {
    const p = new PiecePicker(geometry(8, 64), new Bitfield(8), { sequential: true });
    p.peerHasAll();
    p.pick(A, 'all', 64 * 6); // A holds pieces 0-5
    p.pieceVerified(0);
    p.pieceVerified(1);
    const copied = new Set(pieces(p.pick(B, 'all', 64 * 4, undefined, (r) => r === A)));
    expect(copied).toEqual(new Set([2, 3, 4, 5])); // the head is now pieces 2-5
  });

  it('with peers holding different pieces: a piece starts only when every lower one the peer has is started', () => {
    const n = 4096;
    const p = new PiecePicker(geometry(n, 2), new Bitfield(n), { sequential: true });
    const random = seeded(11);
    const peers: Bitfield[] = [];
    for (let k = 0; k < 4; k++) {
      const b = new Bitfield(n);
      for (let i = 0; i < n; i++) if (k === 0 || random() < 0.5) b.set(i);
      peers.push(b);
      p.peerHas(b);
    }
    const started = new Uint8Array(n);
    const skipped: string[] = [];
    for (let round = 0; round < 100_000 && !p.done; round++) {
      for (let k = 0; k < peers.length; k++) {
        const reqs = p.pick(k, peers[k]!, 3);
        for (const r of reqs) {
          if (started[r.index]) continue;
          started[r.index] = 1;
          for (let j = 0; j < r.index; j++) if (!started[j] && peers[k]!.has(j)) skipped.push(`peer ${k} started ${r.index} before ${j}`);
        }
        deliver(p, k, reqs);
      }
    }
    expect(p.done).toBe(true);
    expect(skipped.slice(0, 5)).toEqual([]);
  });
});

/** Counts the reads of `bitfield`'s bytes from now on (what a scan over it costs). */
function countReads(bitfield: Bitfield): { reads: number } {
  const counter = { reads: 0 };
  const bytes = bitfield.bytes;
  const counting = new Proxy(bytes, {
    get(target, key) {
      if (typeof key === 'string' && /^\d+$/.test(key)) counter.reads++;
      const value: unknown = Reflect.get(target, key, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  Object.defineProperty(bitfield, 'bytes', { value: counting });
  return counter;
}

describe('cost of a pick in index order', () => {
  const n = 1 << 14;
  /** A peer holding only the upper half, which 1,000 one-block pieces of one pick come from. */
  function upperHalfPeer(p: PiecePicker): { has: Bitfield; counter: { reads: number } } {
    const has = new Bitfield(n);
    for (let i = n / 2; i < n; i++) has.set(i);
    p.peerHas(has);
    return { has, counter: countReads(has) };
  }

  it('sequential: one pass over the peer\'s bitfield per pick, not one per piece started', () => {
    const p = new PiecePicker(geometry(n), new Bitfield(n), { sequential: true });
    const { has, counter } = upperHalfPeer(p);
    expect(pieces(p.pick(A, has, 1000))).toEqual(Array.from({ length: 1000 }, (_, k) => n / 2 + k));
    expect(counter.reads).toBeLessThan(n / 8 + 1000 + 8); // a rescan per piece would be ~1000 * n / 16
  });

  it('priority: the same, while the peer has none of the priority pieces left', () => {
    const lower = Array.from({ length: 100 }, (_, k) => k * 10); // all in the half the peer lacks
    const p = new PiecePicker(geometry(n), new Bitfield(n), { priority: lower, random: seeded(3) });
    const { has, counter } = upperHalfPeer(p);
    expect(p.pick(A, has, 1000)).toHaveLength(1000);
    expect(counter.reads).toBeLessThan(n / 8 + 2 * 1000 + 8); // + a has() per piece started rarest first
  });
});

describe('priority pieces (--first-last)', () => {
  it('starts the priority pieces first, lowest index first, then rarest first', () => {
    const p = new PiecePicker(geometry(10), new Bitfield(10), { priority: [9, 0, 4, 5], random: seeded(1) });
    withAvailability(p, '3233333133'); // 1 and 7 rarer than any priority piece
    expect(pieces(p.pick(A, 'all', 4))).toEqual([0, 4, 5, 9]);
    expect(pieces(p.pick(A, 'all', 1))).toEqual([7]); // then the rarest
  });

  it('with sequential: the priority pieces, then lowest index first', () => {
    const p = new PiecePicker(geometry(6), new Bitfield(6), { priority: [0, 5], sequential: true });
    p.peerHasAll();
    expect(pieces(p.pick(A, 'all', 10))).toEqual([0, 5, 1, 2, 3, 4]);
  });

  it('a priority piece nobody has does not hold up the rest; the first peer that has it gets it first', () => {
    const p = new PiecePicker(geometry(6), new Bitfield(6), { priority: [0, 5], sequential: true });
    const aHas = bf('111110');
    p.peerHas(aHas);
    expect(pieces(p.pick(A, aHas, 2))).toEqual([0, 1]);
    aHas.set(5);
    p.peerHave(5);
    expect(pieces(p.pick(A, aHas, 2))).toEqual([5, 2]);
  });

  it('partial pieces still finish before a priority piece starts', () => {
    const p = new PiecePicker(geometry(4, 2), new Bitfield(4), { priority: [3], sequential: true });
    p.peerHasAll();
    expect(pieces(p.pick(A, 'all', 3))).toEqual([3, 3, 0]);
    p.releaseAll(A); // pieces 3 and 0 are partial, open again
    expect(pieces(p.pick(B, 'all', 5))).toEqual([0, 0, 3, 3, 1]);
  });

  it('ignores priority pieces we have or do not want, and refuses one out of range', () => {
    const p = new PiecePicker(geometry(6), bf('100000'), { priority: [0, 2, 5], wanted: bf('111110'), sequential: true });
    p.peerHasAll();
    expect(pieces(p.pick(A, 'all', 10))).toEqual([2, 1, 3, 4]);
    expect(() => new PiecePicker(geometry(6), new Bitfield(6), { priority: [6] })).toThrow(RangeError);
  });

  it('endgame copies priority pieces like any other', () => {
    const p = new PiecePicker(geometry(2), new Bitfield(2), { priority: [1] });
    p.peerHasAll();
    expect(pieces(p.pick(A, 'all', 2))).toEqual([1, 0]);
    expect(p.inEndgame).toBe(true);
    expect(pieces(p.pick(B, 'all', 2))).toEqual([0, 1]);
  });
});

describe('a verified piece lost from disk (pieceLost)', () => {
  /** Start, receive and verify piece `index` from peer `who`. */
  function verify(p: PiecePicker, who: PeerToken, index: number): void {
    for (const r of p.pickFrom(who, index, 1000)) p.received(who, r.index, r.begin);
    p.pieceVerified(index);
  }

  it('is missing again: counted, interesting, picked, and done only once it verifies again', () => {
    const p = new PiecePicker(geometry(3, 2), new Bitfield(3));
    p.peerHasAll();
    for (const i of [0, 1, 2]) verify(p, A, i);
    expect(p.done).toBe(true);
    p.pieceLost(1);
    expect(p.have.has(1)).toBe(false);
    expect(p.done).toBe(false);
    expect(p.missingBlocks).toBe(2);
    expect(p.interestingFor('all')).toBe(true);
    expect(p.interestingFor(bf('101'))).toBe(false);
    expect(p.pick(B, 'all', 10).map((r) => `${r.index}/${r.begin}`)).toEqual(['1/0', `1/${BLOCK_SIZE}`]);
    for (const begin of [0, BLOCK_SIZE]) expect(p.received(B, 1, begin)).toBe('new');
    expect(p.isPieceComplete(1)).toBe(true);
    p.pieceVerified(1);
    expect(p.done).toBe(true);
    expect(p.missingBlocks).toBe(0);
  });

  it('takes its place by availability: the rarest is still picked first', () => {
    const p = new PiecePicker(geometry(5), new Bitfield(5), { random: seeded(3) });
    withAvailability(p, '32413');
    for (const i of [0, 1, 2, 3, 4]) verify(p, A, i);
    for (const i of [2, 0, 3, 1]) p.pieceLost(i); // availability 4, 3, 1, 2
    expect(pieces(p.pick(B, 'all', 4))).toEqual([3, 1, 0, 2]);
    // and it follows availability changes afterwards, as any unstarted piece
    const q = new PiecePicker(geometry(3), new Bitfield(3));
    withAvailability(q, '111');
    for (const i of [0, 1, 2]) verify(q, A, i);
    q.pieceLost(0);
    q.pieceLost(2);
    q.peerHave(0);
    expect(pieces(q.pick(B, 'all', 1))).toEqual([2]);
  });

  it('sequential and priority: a lost piece is the lowest again, and a lost priority piece comes first', () => {
    const seq = new PiecePicker(geometry(6), new Bitfield(6), { sequential: true });
    seq.peerHasAll();
    for (const i of [0, 1, 2, 3]) verify(seq, A, i);
    seq.pieceLost(1);
    expect(pieces(seq.pick(B, 'all', 3))).toEqual([1, 4, 5]);
    const pri = new PiecePicker(geometry(6), new Bitfield(6), { priority: [5], sequential: true });
    pri.peerHasAll();
    for (const i of [5, 0, 1]) verify(pri, A, i);
    pri.pieceLost(5);
    pri.pieceLost(0);
    expect(pieces(pri.pick(B, 'all', 4))).toEqual([5, 0, 2, 3]);
  });

  it('a lost piece outside the wanted set is not wanted; a piece never verified is not touched', () => {
    const p = new PiecePicker(geometry(4), bf('1100'), { wanted: bf('0111') });
    p.peerHasAll();
    p.pieceLost(0);
    expect(p.have.has(0)).toBe(false);
    expect(p.missingBlocks).toBe(2);
    expect(pieces(p.pick(A, 'all', 10)).sort()).toEqual([2, 3]);
    const q = new PiecePicker(geometry(2), new Bitfield(2));
    q.peerHasAll();
    q.pieceLost(1);
    q.pieceLost(7);
    expect(q.missingBlocks).toBe(2);
    expect(pieces(q.pick(A, 'all', 10)).sort()).toEqual([0, 1]);
  });
});

describe('pickFrom (one piece at a time, for a peer on probation)', () => {
  it('only blocks of that piece, starting it; the rest go to others; none when it is had, unwanted or all requested', () => {
    const p = new PiecePicker(geometry(3, 4), new Bitfield(3), { wanted: bf('011') });
    p.peerHasAll();
    expect(p.pickFrom(A, 1, 2).map((r) => `${r.index}/${r.begin / BLOCK_SIZE}`)).toEqual(['1/0', '1/1']);
    expect(p.pickFrom(A, 0, 4)).toEqual([]); // not wanted
    expect(pieces(p.pick(B, 'all', 3))).toEqual([1, 1, 2]); // the open blocks of the started piece first
    expect(p.pickFrom(A, 1, 4)).toEqual([]); // every block requested: no endgame copy
    for (const r of [0, 1]) p.received(A, 1, r * BLOCK_SIZE);
    for (const r of [2, 3]) p.received(B, 1, r * BLOCK_SIZE);
    p.pieceVerified(1);
    expect(p.pickFrom(A, 1, 4)).toEqual([]); // had
    expect(p.pickFrom(A, 2, 0)).toEqual([]);
    expect(p.pickFrom(A, 2, 9).map((r) => r.begin / BLOCK_SIZE)).toEqual([1, 2, 3]);
  });
});

describe('never stuck, with lost pieces and peers on probation', () => {
  it.each(ORDERS)('completes when verified pieces are lost at random and some peers work on one piece at a time (%s)', (_name, order) => {
    for (let seed = 1; seed <= 5; seed++) {
      const random = seeded(seed);
      const pieceCount = 97;
      const g = new PieceGeometry(3 * BLOCK_SIZE, 97 * 3 * BLOCK_SIZE - 5000);
      const p = new PiecePicker(g, new Bitfield(pieceCount), { random, ...order });
      interface Peer { id: number; inflight: BlockRequest[]; probation: boolean; piece: number | undefined }
      const peers: Peer[] = [];
      for (let id = 0; id < 6; id++) {
        p.peerHasAll();
        peers.push({ id, inflight: [], probation: id % 2 === 1, piece: undefined });
      }
      let lost = 0;
      let steps = 0;
      while (!p.have.complete && steps < 200_000) {
        steps++;
        if (random() < 0.2 && p.have.count > 0 && lost < 60) {
          const had = [...Array(pieceCount).keys()].filter((i) => p.have.has(i));
          p.pieceLost(had[Math.floor(random() * had.length)]!);
          lost++;
        }
        for (const peer of peers) {
          const room = 4 - peer.inflight.length;
          if (room > 0) {
            if (!peer.probation) peer.inflight.push(...p.pick(peer.id, 'all', room));
            else {
              if (peer.piece !== undefined && p.have.has(peer.piece)) peer.piece = undefined;
              if (peer.piece === undefined) {
                const first = p.pick(peer.id, 'all', 1);
                if (first[0]) peer.piece = first[0].index;
                peer.inflight.push(...first);
              }
              if (peer.piece !== undefined) {
                const more = p.pickFrom(peer.id, peer.piece, 4 - peer.inflight.length);
                expect(more.every((r) => r.index === peer.piece)).toBe(true);
                peer.inflight.push(...more);
              }
            }
          }
          if (peer.inflight.length === 0) continue;
          const req = peer.inflight.shift()!;
          if (p.received(peer.id, req.index, req.begin) !== 'new') continue;
          if (!p.isPieceComplete(req.index)) continue;
          if (random() < 0.05) p.pieceFailed(req.index);
          else p.pieceVerified(req.index);
        }
      }
      expect(lost).toBeGreaterThan(5);
      expect(p.have.complete).toBe(true);
      expect(p.missingBlocks).toBe(0);
      expect(p.piecesInProgress).toBe(0);
    }
  });
});

describe('BEP 47 padding (the padding option)', () => {
  it('blocks wholly in padding are never picked, a piece completes with its data blocks, and a failed piece asks again only for those', () => {
    // 2 pieces of 4 blocks; piece 0's blocks 1-3 are padding
    const p = new PiecePicker(geometry(2, 4), new Bitfield(2), { padding: new Map([[0, [1, 2, 3]]]), sequential: true });
    expect(p.missingBlocks).toBe(8);
    const first = p.pick(A, 'all', 3);
    expect(first.map((r) => [r.index, r.begin / BLOCK_SIZE])).toEqual([[0, 0], [1, 0], [1, 1]]);
    expect(p.missingBlocks).toBe(5); // the 3 padding blocks counted received when piece 0 started
    expect(p.received(A, 0, 0)).toBe('new');
    expect(p.isPieceComplete(0)).toBe(true);
    p.pieceFailed(0);
    expect(p.isPieceComplete(0)).toBe(false);
    const again = p.pickFrom(B, 0, 4);
    expect(again.map((r) => r.begin / BLOCK_SIZE)).toEqual([0]);
    expect(p.received(B, 0, 0)).toBe('new');
    p.pieceVerified(0);
    deliver(p, A, first.slice(1));
    deliver(p, A, p.pick(A, 'all', 10));
    expect(p.done).toBe(true);
    expect(p.missingBlocks).toBe(0);
  });
});

describe('maxBytesInProgress (the session piece-buffer budget)', () => {
  it('starts no piece past the budget: peers share the pieces started; one verified makes room for the next', () => {
    // 6 pieces of 4 blocks, a budget of 2 pieces
    const p = new PiecePicker(geometry(6, 4), new Bitfield(6), { maxBytesInProgress: 8 * BLOCK_SIZE, sequential: true });
    p.peerHasAll();
    const a = p.pick(A, 'all', 100);
    expect(pieces(a)).toEqual([0, 0, 0, 0, 1, 1, 1, 1]); // two pieces, not all six
    expect(p.bytesInProgress).toBe(8 * BLOCK_SIZE);
    expect(p.pick(B, 'all', 100)).toEqual([]); // nothing open, no room to start one
    expect(p.inEndgame).toBe(false); // unstarted pieces remain: no copies either
    for (const r of a.slice(0, 4)) p.received(A, r.index, r.begin);
    expect(p.isPieceComplete(0)).toBe(true);
    expect(p.pick(B, 'all', 100)).toEqual([]); // piece 0 is complete but not verified (hashing, writing): it still holds its buffer
    p.pieceVerified(0);
    expect(p.bytesInProgress).toBe(4 * BLOCK_SIZE);
    expect(pieces(p.pick(B, 'all', 100))).toEqual([2, 2, 2, 2]);
    p.releaseAll(A); // A's blocks of piece 1 go back: B takes them, still no new piece
    expect(pieces(p.pick(B, 'all', 100))).toEqual([1, 1, 1, 1]);
  });

  it('one piece may always be in progress, however far over the budget; pickFrom obeys the budget too', () => {
    const p = new PiecePicker(geometry(3, 4), new Bitfield(3), { maxBytesInProgress: 1 });
    p.peerHasAll();
    const first = p.pickFrom(A, 1, 2);
    expect(pieces(first)).toEqual([1, 1]);
    expect(p.pickFrom(B, 2, 4)).toEqual([]); // would be a second piece
    const rest = p.pick(B, 'all', 100);
    expect(pieces(rest)).toEqual([1, 1]); // the open blocks of the one piece, nothing new
    deliver(p, A, first);
    deliver(p, B, rest);
    p.pieceVerified(1);
    expect(p.piecesInProgress).toBe(0);
    expect(p.bytesInProgress).toBe(0);
    expect(pieces(p.pickFrom(B, 2, 4))).toEqual([2, 2, 2, 2]);
  });

  it('never stuck: a random swarm with a one-piece budget completes', () => {
    const random = seeded(7);
    const p = new PiecePicker(geometry(20, 3), new Bitfield(20), { maxBytesInProgress: 3 * BLOCK_SIZE, random });
    const peers = [A, B, C];
    for (const _ of peers) p.peerHasAll();
    for (let round = 0; round < 10_000 && !p.done; round++) {
      const peer = peers[round % 3]!;
      const got = p.pick(peer, 'all', 1 + Math.floor(random() * 4));
      expect(p.piecesInProgress).toBeLessThanOrEqual(1);
      if (random() < 0.2) p.releaseAll(peer);
      else deliver(p, peer, got);
      for (let i = 0; i < 20; i++) if (p.isPieceComplete(i)) p.pieceVerified(i);
    }
    expect(p.done).toBe(true);
    expect(p.bytesInProgress).toBe(0);
  });
});

describe('waitingForRoom (pick again once a piece is verified)', () => {
  it('is set when a pick could not start a piece for the budget, and cleared by the verification that makes room', () => {
    const p = new PiecePicker(geometry(3, 2), new Bitfield(3), { maxBytesInProgress: 2 * BLOCK_SIZE });
    p.peerHasAll();
    const a = p.pick(A, 'all', 2);
    expect(p.waitingForRoom).toBe(false); // it asked for no more than one piece
    expect(p.pick(A, 'all', 2)).toEqual([]);
    expect(p.waitingForRoom).toBe(true);
    deliver(p, A, a); // verifies it
    expect(p.waitingForRoom).toBe(false);
    expect(p.pick(A, 'all', 2)).toHaveLength(2);
  });
});
