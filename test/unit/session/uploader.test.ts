import { describe, expect, it } from 'vitest';
import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import { Bitfield } from '../../../src/core/bitfield.js';
import { BLOCK_SIZE, PieceGeometry } from '../../../src/core/geometry.js';
import { DiskError } from '../../../src/core/errors.js';
import { RateMeter } from '../../../src/core/rate.js';
import type { PeerConnection } from '../../../src/peer/connection.js';
import { READ_CACHE_BYTES } from '../../../src/session/read-cache.js';
import { UploadQueue } from '../../../src/session/upload-queue.js';
import { MAX_PEER_REQUESTS, SEND_HIGH_WATER_BYTES, Uploader, type UploadPeer } from '../../../src/session/uploader.js';

/** What the uploader may do to a connection, recorded; `writableLength` is what the test says. */
class FakeConn {
  amChoking = false;
  fastExtension = true;
  closed = false;
  closeReason: string | undefined;
  writableLength = 0;
  readonly socket = Object.assign(new EventEmitter(), { cork: () => undefined, uncork: () => undefined });
  readonly sent: { index: number; begin: number; block: Buffer }[] = [];
  readonly rejects: string[] = [];
  close(reason: string): void {
    this.closed = true;
    this.closeReason = reason;
  }
  reject(index: number, begin: number, length: number): void {
    if (this.fastExtension) this.rejects.push(`${index}/${begin}/${length}`);
  }
  batch(fn: () => void): void {
    fn();
  }
  sendPiece(index: number, begin: number, block: Buffer, onSent?: () => void): void {
    this.sent.push({ index, begin, block: Buffer.from(block) });
    onSent?.();
  }
}

function setup(opts: { pieceLength?: number; pieces?: number; have?: number[]; keepLost?: boolean } = {}) {
  const pieceLength = opts.pieceLength ?? 4 * BLOCK_SIZE;
  const pieces = opts.pieces ?? 4;
  const data = randomBytes(pieceLength * pieces);
  const geometry = new PieceGeometry(pieceLength, data.length);
  const have = new Bitfield(pieces);
  for (const i of opts.have ?? Array.from({ length: pieces }, (_, i) => i)) have.set(i);
  const reads = { pieces: 0, blocks: 0 };
  let failWith: Error | undefined;
  /** Pieces whose reads fail (a file truncated under us). */
  const unreadable = new Set<number>();
  /** onUnreadable calls, as `index: message`; like the session, it takes the piece out of `have` (unless keepLost). */
  const lost: string[] = [];
  const uploader = new Uploader({
    geometry,
    have,
    readPiece: async (index) => {
      reads.pieces++;
      if (failWith) throw failWith;
      if (unreadable.has(index)) throw new DiskError(`piece ${index} is gone`);
      return Buffer.from(data.subarray(index * pieceLength, (index + 1) * pieceLength));
    },
    readBlock: async (index, begin, length) => {
      reads.blocks++;
      if (unreadable.has(index)) throw new DiskError(`piece ${index} is gone`);
      const at = index * pieceLength + begin;
      return Buffer.from(data.subarray(at, at + length));
    },
    freePiece: () => undefined,
    uploadLimit: 0,
    uploadRate: new RateMeter(),
    isStopped: () => false,
    onUnreadable: (index, err) => {
      lost.push(`${index}: ${(err as Error).message}`);
      if (!opts.keepLost) have.clear(index);
    },
  });
  const conn = new FakeConn();
  const peer: UploadPeer = { conn: conn as unknown as PeerConnection, uploads: new UploadQueue(), serving: false, requestsWhileChoked: 0 };
  const block = (index: number, begin: number, length = BLOCK_SIZE): Buffer => data.subarray(index * pieceLength + begin, index * pieceLength + begin + length);
  const newPeer = (): { conn: FakeConn; peer: UploadPeer } => {
    const c = new FakeConn();
    return { conn: c, peer: { conn: c as unknown as PeerConnection, uploads: new UploadQueue(), serving: false, requestsWhileChoked: 0 } };
  };
  return { uploader, conn, peer, block, reads, lost, have, unreadable, newPeer, failWith: (e: Error) => (failWith = e) };
}

const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 20));

describe('Uploader.request', () => {
  it('serves queued requests in order with the right bytes', async () => {
    const { uploader, conn, peer, block } = setup();
    uploader.request(peer, 2, BLOCK_SIZE, BLOCK_SIZE);
    uploader.request(peer, 0, 0, BLOCK_SIZE);
    uploader.request(peer, 2, 0, 100);
    await settle();
    expect(conn.sent.map((s) => `${s.index}/${s.begin}/${s.block.length}`)).toEqual([`2/${BLOCK_SIZE}/${BLOCK_SIZE}`, `0/0/${BLOCK_SIZE}`, '2/0/100']);
    expect(conn.sent[0]!.block.equals(block(2, BLOCK_SIZE))).toBe(true);
    expect(conn.sent[2]!.block.equals(block(2, 0, 100))).toBe(true);
    expect(peer.serving).toBe(false);
  });

  it('out of range, zero length or over 16 KiB closes the peer as a protocol error', () => {
    for (const [index, begin, length] of [[4, 0, 1], [0, 0, 0], [0, 0, BLOCK_SIZE + 1], [0, 4 * BLOCK_SIZE - 1, 2]] as const) {
      const { uploader, conn, peer } = setup();
      uploader.request(peer, index, begin, length);
      expect(conn.closeReason).toMatch(/^protocol error: request out of range/);
    }
  });

  it('a piece we do not have is rejected, not served, and the peer stays', async () => {
    const { uploader, conn, peer } = setup({ have: [0] });
    uploader.request(peer, 1, 0, BLOCK_SIZE);
    await settle();
    expect(conn.rejects).toEqual([`1/0/${BLOCK_SIZE}`]);
    expect(conn.sent).toEqual([]);
    expect(conn.closed).toBe(false);
  });

  it('while choked: each request is rejected; 200 in a row are tolerated, the 201st closes; an accepted one resets the count', () => {
    const { uploader, conn, peer } = setup();
    conn.amChoking = true;
    for (let i = 0; i < 150; i++) uploader.request(peer, 0, 0, BLOCK_SIZE);
    conn.amChoking = false;
    uploader.request(peer, 0, 0, BLOCK_SIZE);
    conn.amChoking = true;
    for (let i = 0; i < 200; i++) uploader.request(peer, 0, 0, BLOCK_SIZE);
    expect(conn.closed).toBe(false);
    expect(conn.rejects.length).toBe(350);
    uploader.request(peer, 0, 0, BLOCK_SIZE);
    expect(conn.closeReason).toBe('protocol error: too many requests while choked');
  });

  it(`more than ${MAX_PEER_REQUESTS} queued (the socket not draining) is a flood and closes the peer`, async () => {
    const { uploader, conn, peer } = setup();
    conn.writableLength = SEND_HIGH_WATER_BYTES + 1; // the serve loop waits for 'drain', which never comes
    for (let i = 0; i < MAX_PEER_REQUESTS; i++) uploader.request(peer, i % 4, 0, BLOCK_SIZE);
    await settle();
    expect(conn.closed).toBe(false);
    expect(conn.sent).toEqual([]);
    uploader.request(peer, 0, 0, BLOCK_SIZE);
    expect(conn.closeReason).toBe('protocol error: request flood');
  });

  it("waits for 'drain' above the high-water mark, then goes on", async () => {
    const { uploader, conn, peer } = setup();
    conn.writableLength = SEND_HIGH_WATER_BYTES + 1;
    uploader.request(peer, 0, 0, BLOCK_SIZE);
    await settle();
    expect(conn.sent.length).toBe(0);
    conn.writableLength = 0;
    conn.socket.emit('drain');
    await settle();
    expect(conn.sent.length).toBe(1);
  });

  it('pieces too large for the read cache are read block by block', async () => {
    const pieceLength = READ_CACHE_BYTES; // two would not fit
    const { uploader, conn, peer, block, reads } = setup({ pieceLength, pieces: 1 });
    uploader.request(peer, 0, pieceLength - BLOCK_SIZE, BLOCK_SIZE);
    await settle();
    expect(reads).toEqual({ pieces: 0, blocks: 1 });
    expect(conn.sent[0]!.block.equals(block(0, pieceLength - BLOCK_SIZE))).toBe(true);
  });

  it('a disk error while reading is reported, the request rejected, and the peer stays', async () => {
    const { uploader, conn, peer, lost, failWith } = setup();
    failWith(new DiskError('disk gone'));
    uploader.request(peer, 0, 0, BLOCK_SIZE);
    await settle();
    expect(conn.closed).toBe(false);
    expect(lost).toEqual(['0: disk gone']);
    expect(conn.rejects).toEqual([`0/0/${BLOCK_SIZE}`]);
  });
});

describe('Uploader: a piece that can no longer be read', () => {
  it('is reported once and left out of have; its requests, queued and new, are rejected; every other piece is served; the peer stays', async () => {
    const { uploader, conn, peer, block, lost, have, unreadable, newPeer, reads } = setup({ pieces: 4 });
    unreadable.add(1);
    for (const index of [0, 1, 2]) for (let b = 0; b < 4; b++) uploader.request(peer, index, b * BLOCK_SIZE, BLOCK_SIZE);
    await settle();
    expect(lost).toEqual(['1: piece 1 is gone']);
    expect(have.has(1)).toBe(false);
    expect(conn.closed).toBe(false);
    expect(conn.rejects).toEqual([0, 1, 2, 3].map((b) => `1/${b * BLOCK_SIZE}/${BLOCK_SIZE}`));
    expect(conn.sent.map((s) => `${s.index}/${s.begin}`)).toEqual([0, 2].flatMap((i) => [0, 1, 2, 3].map((b) => `${i}/${b * BLOCK_SIZE}`)));
    for (const s of conn.sent) expect(s.block.equals(block(s.index, s.begin))).toBe(true);
    // a later request for it, from this peer or another, is rejected without reading the disk again
    const before = reads.pieces;
    const other = newPeer();
    uploader.request(other.peer, 1, 0, BLOCK_SIZE);
    uploader.request(other.peer, 3, 0, BLOCK_SIZE);
    await settle();
    expect(reads.pieces - before).toBe(1); // piece 3 only
    expect(other.conn.rejects).toEqual([`1/0/${BLOCK_SIZE}`]);
    expect(other.conn.sent.map((s) => s.index)).toEqual([3]);
    expect(lost).toHaveLength(1);
  });

  it('a peer without the fast extension gets no reject (it may not take one), is not closed, and gets the other pieces', async () => {
    const { uploader, conn, peer, unreadable } = setup({ pieces: 4 });
    conn.fastExtension = false;
    unreadable.add(0);
    uploader.request(peer, 0, 0, BLOCK_SIZE);
    uploader.request(peer, 3, 0, BLOCK_SIZE);
    await settle();
    expect(conn.closed).toBe(false);
    expect(conn.rejects).toEqual([]);
    expect(conn.sent.map((s) => s.index)).toEqual([3]);
  });

  it('block by block (pieces too large for the read cache): the same', async () => {
    const pieceLength = READ_CACHE_BYTES;
    const { uploader, conn, peer, lost, unreadable, have } = setup({ pieceLength, pieces: 2 });
    unreadable.add(0);
    uploader.request(peer, 0, 0, BLOCK_SIZE);
    uploader.request(peer, 0, BLOCK_SIZE, BLOCK_SIZE);
    uploader.request(peer, 1, 0, BLOCK_SIZE);
    await settle();
    expect(lost).toEqual(['0: piece 0 is gone']);
    expect(have.has(0)).toBe(false);
    expect(conn.rejects).toEqual([`0/0/${BLOCK_SIZE}`, `0/${BLOCK_SIZE}/${BLOCK_SIZE}`]);
    expect(conn.sent.map((s) => s.index)).toEqual([1]);
    expect(conn.closed).toBe(false);
  });

  it('a read-ahead that fails reports the piece before any request waits for it', async () => {
    const { uploader, peer, lost, unreadable } = setup({ pieces: 4 });
    unreadable.add(2);
    uploader.request(peer, 0, 0, BLOCK_SIZE);
    uploader.request(peer, 2, 0, BLOCK_SIZE); // read ahead while piece 0 is read
    await settle();
    expect(lost).toEqual(['2: piece 2 is gone']);
  });

  it('when the caller keeps the piece in have, each request still gets its reject and the loop goes on', async () => {
    const { uploader, conn, peer, lost, unreadable } = setup({ pieces: 4, keepLost: true });
    unreadable.add(1);
    uploader.request(peer, 1, 0, BLOCK_SIZE);
    uploader.request(peer, 1, BLOCK_SIZE, BLOCK_SIZE);
    uploader.request(peer, 2, 0, BLOCK_SIZE);
    await settle();
    expect(conn.rejects).toEqual([`1/0/${BLOCK_SIZE}`, `1/${BLOCK_SIZE}/${BLOCK_SIZE}`]);
    expect(conn.sent.map((s) => s.index)).toEqual([2]);
    expect(lost.length).toBeGreaterThanOrEqual(1);
    expect(conn.closed).toBe(false);
  });
});

describe('Uploader.cancel and discard', () => {
  it('a cancelled queued request gets a reject (BEP 6) and is never sent', async () => {
    const { uploader, conn, peer } = setup();
    conn.writableLength = SEND_HIGH_WATER_BYTES + 1;
    uploader.request(peer, 0, 0, BLOCK_SIZE);
    uploader.request(peer, 1, 0, BLOCK_SIZE);
    uploader.cancel(peer, 1, 0, BLOCK_SIZE);
    uploader.cancel(peer, 3, 0, BLOCK_SIZE); // never asked: nothing
    conn.writableLength = 0;
    conn.socket.emit('drain');
    await settle();
    expect(conn.rejects).toEqual([`1/0/${BLOCK_SIZE}`]);
    expect(conn.sent.map((s) => s.index)).toEqual([0]);
  });

  it('choking discards the queue: one reject per request for a fast-extension peer, none for a plain one', async () => {
    for (const fast of [true, false]) {
      const { uploader, conn, peer } = setup();
      conn.fastExtension = fast;
      conn.writableLength = SEND_HIGH_WATER_BYTES + 1;
      for (let i = 0; i < 3; i++) uploader.request(peer, i, 0, BLOCK_SIZE);
      conn.amChoking = true;
      conn.writableLength = 0;
      conn.socket.emit('drain');
      await settle();
      expect(conn.sent).toEqual([]);
      expect(conn.rejects.length).toBe(fast ? 3 : 0);
      expect(peer.uploads.size).toBe(0);
    }
  });
});
