/**
 * BEP 6 on a seeding tt, seen from raw peers: a fast peer is told "have all"
 * in one message, and every request it makes gets exactly one answer, a piece
 * or a reject (asked while choked, cancelled, or dropped by a choke). A plain
 * peer (no fast bit) sees BEP 3 only: a bitfield, and no reject ever.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { BLOCK_SIZE } from '../../../src/core/geometry.js';
import type { Message } from '../../../src/wire/messages.js';
import type { RawPeer } from '../../helpers/raw-peer.js';
import { until } from '../../helpers/until.js';
import { stopAll } from '../../helpers/swarm.js';
import { PIECE_LENGTH, delay, expectKept, getUnchoked, hostileLeecher, startSeed, type SeedSetup } from '../hostile/harness.js';

afterEach(stopAll);

const FAST = Buffer.from([0, 0, 0, 0, 0, 0, 0, 0x04]);
const PLAIN = Buffer.alloc(8);

async function connect({ fx, seed }: SeedSetup, reserved: Buffer): Promise<RawPeer> {
  const peer = await hostileLeecher(fx.meta, seed, undefined, reserved);
  const theirs = await peer.readHandshake();
  expect(theirs.reserved[7]! & 0x04).toBe(0x04); // tt advertises BEP 6 to everyone
  return peer;
}

type Answer = { type: 'piece' | 'reject'; key: string };

/** The pieces and rejects received so far, as "index:begin". */
function answers(peer: RawPeer): Answer[] {
  const out: Answer[] = [];
  for (const m of peer.received) {
    if (m.type === 'piece' || m.type === 'reject') out.push({ type: m.type, key: `${m.index}:${m.begin}` });
  }
  return out;
}


function blocks(count: number): { index: number; begin: number; length: number }[] {
  const perPiece = PIECE_LENGTH / BLOCK_SIZE;
  return Array.from({ length: count }, (_, i) => ({ index: Math.floor(i / perPiece), begin: (i % perPiece) * BLOCK_SIZE, length: BLOCK_SIZE }));
}

function request(peer: RawPeer, list: { index: number; begin: number; length: number }[]): void {
  for (const b of list) peer.send({ type: 'request', ...b });
}

describe('BEP 6 fast extension (tt seeding)', () => {
  it('a fast peer is told have-all; a plain peer gets a bitfield', async () => {
    const setup = await startSeed();
    const fast = await connect(setup, FAST);
    const plain = await connect(setup, PLAIN);
    expect((await fast.nextMessage()).type).toBe('have-all');
    const first: Message = await plain.nextMessage();
    expect(first.type).toBe('bitfield');
  });

  it('requests while choked: a fast peer gets one reject each and stays; a plain peer gets silence', async () => {
    const setup = await startSeed();
    const fast = await connect(setup, FAST);
    const plain = await connect(setup, PLAIN);
    const asked = blocks(5);
    request(fast, asked); // never interested: tt keeps both choked
    request(plain, asked);
    await until(() => answers(fast).length === asked.length);
    expect(answers(fast)).toEqual(asked.map((b) => ({ type: 'reject', key: `${b.index}:${b.begin}` })));
    await expectKept(fast);
    await expectKept(plain);
    expect(plain.received.some((m) => m.type === 'reject' || m.type === 'piece')).toBe(false);
  });

  it('a cancelled request is answered by a reject; the others by their pieces, each exactly once', async () => {
    // 16 KiB/s: the first block goes at once, each next one a second later, so the cancels find them queued
    const setup = await startSeed({ uploadLimit: 16 * 1024 });
    const fast = await connect(setup, FAST);
    await getUnchoked(fast);
    const asked = blocks(4);
    request(fast, asked);
    await fast.waitFor((m) => m.type === 'piece');
    for (const b of asked.slice(2)) fast.send({ type: 'cancel', ...b });
    await until(() => answers(fast).length === asked.length);
    await delay(300); // nothing more may follow
    const got = answers(fast);
    expect(got).toHaveLength(asked.length);
    expect(new Set(got.map((a) => a.key)).size).toBe(asked.length);
    expect(got.filter((a) => a.type === 'reject').map((a) => a.key).sort()).toEqual(asked.slice(2).map((b) => `${b.index}:${b.begin}`));
  });

  it('choking a fast peer rejects what it still had queued; a plain peer just loses its queue', async () => {
    const setup = await startSeed({ uploadLimit: 16 * 1024 });
    const fast = await connect(setup, FAST);
    const plain = await connect(setup, PLAIN);
    const asked = blocks(6);
    for (const peer of [fast, plain]) {
      await getUnchoked(peer);
      request(peer, asked);
    }
    await fast.waitFor((m) => m.type === 'piece');
    // not interested any more: tt chokes each and drops its queue
    for (const peer of [fast, plain]) peer.send({ type: 'not-interested' });
    await fast.waitFor((m) => m.type === 'choke');
    await until(() => answers(fast).length === asked.length);
    await delay(300);
    const got = answers(fast);
    expect(got).toHaveLength(asked.length);
    expect(new Set(got.map((a) => a.key)).size).toBe(asked.length);
    expect(got.filter((a) => a.type === 'reject').length).toBeGreaterThan(0);
    await plain.waitFor((m) => m.type === 'choke');
    await delay(300);
    expect(plain.received.some((m) => m.type === 'reject')).toBe(false);
    expect(answers(plain).length).toBeLessThan(asked.length);
  });
});
