/**
 * Data that becomes unreadable under a running session (a file truncated
 * behind our back): the first piece found unreadable leaves `have` at once,
 * then every piece past the end of the shortened file, with one warning for
 * the file; their requests get a BEP 6 reject (nothing, for a plain peer)
 * and the connection stays, every readable piece still served. A download (and
 * --seed after completion) fetches the lost piece again; the same piece lost
 * MAX_PIECE_LOSSES times is a disk error. A seed never downloads, whether it
 * lost pieces or was started with --partial.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { truncate } from 'node:fs/promises';
import { join } from 'node:path';
import { BLOCK_SIZE } from '../../../src/core/geometry.js';
import type { TtError } from '../../../src/core/errors.js';
import { MAX_PIECE_LOSSES } from '../../../src/session/torrent-session.js';
import { defaultReserved } from '../../../src/wire/handshake.js';
import { RawPeer } from '../../helpers/raw-peer.js';
import { until } from '../../helpers/until.js';
import { expectSameData, makeFixture, startSession, stopAll, trackDir, whenComplete, type Fixture, type Running } from '../../helpers/swarm.js';

afterEach(stopAll);

/** lstat of paths under `slowLstat.under` waits `slowLstat.ms` first: the file check after a loss, made slow. */
const slowLstat = vi.hoisted(() => ({ under: '', ms: 0 }));
vi.mock('node:fs/promises', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:fs/promises')>();
  const lstat = (async (file: string, opts?: object) => {
    if (slowLstat.under !== '' && String(file).startsWith(slowLstat.under)) await new Promise((r) => setTimeout(r, slowLstat.ms));
    return actual.lstat(file, opts as never);
  }) as typeof actual.lstat;
  return { ...actual, lstat };
});
afterEach(() => {
  slowLstat.under = '';
});

const PIECE = 32_768;
/** 64 pieces of 32 KiB in one file. */
const SIZE = 64 * PIECE;

async function fixture(): Promise<Fixture> {
  const fx = await makeFixture({ files: [{ path: ['data.bin'], size: SIZE }], pieceLength: PIECE, single: true });
  trackDir(fx.work);
  return fx;
}

/** A seed of `fx` and a download of it into `<work>/out` from that seed, complete. */
async function downloaded(fx: Fixture, opts: { stallTimeoutMs?: number } = {}): Promise<{ seed: Running; out: string; leech: Running }> {
  const seed = await startSession({ meta: fx.meta, root: fx.seedRoot, mode: 'seed' });
  const out = join(fx.work, 'out');
  const leech = await startSession({ meta: fx.meta, root: out, mode: 'download', peers: [seed.address], ...opts });
  await whenComplete(leech.session, 15_000);
  return { seed, out, leech };
}

/** A raw leecher of `to`: handshake (fast extension unless `plain`), interested, waits for the unchoke. */
async function leecher(fx: Fixture, to: Running, plain = false): Promise<RawPeer> {
  const peer = await RawPeer.connect('127.0.0.1', to.address.port);
  peer.sendHandshake(fx.meta.infoHash, undefined, plain ? Buffer.alloc(8) : defaultReserved());
  await peer.readHandshake();
  peer.send({ type: 'interested' });
  await peer.waitFor((m) => m.type === 'unchoke');
  return peer;
}

/** Ask for the first block of `index`: 'piece' (with the right bytes), 'reject', or 'nothing' within `waitMs`. */
async function ask(peer: RawPeer, fx: Fixture, index: number, waitMs = 1_000): Promise<'piece' | 'reject' | 'nothing'> {
  peer.send({ type: 'request', index, begin: 0, length: BLOCK_SIZE });
  const m = await peer
    .waitFor((x) => (x.type === 'piece' || x.type === 'reject') && x.index === index && x.begin === 0, waitMs)
    .catch(() => undefined);
  if (!m) return 'nothing';
  if (m.type === 'piece') {
    expect(m.block.equals(fx.files[0]!.data.subarray(index * PIECE, index * PIECE + BLOCK_SIZE))).toBe(true);
    return 'piece';
  }
  return 'reject';
}

describe('a seed whose file is truncated under it', () => {
  it('drops the lost pieces from have (one warning for the file), rejects their requests, and keeps serving the rest on the same connection', async () => {
    const fx = await fixture();
    const seed = await startSession({ meta: fx.meta, root: fx.seedRoot, mode: 'seed' });
    const warnings: string[] = [];
    seed.session.on('warning', (m) => warnings.push(m));
    const closed: string[] = [];
    seed.session.on('peer-closed', (_p, reason) => closed.push(reason));
    const fast = await leecher(fx, seed);
    const plain = await leecher(fx, seed, true);
    expect(await ask(fast, fx, 40)).toBe('piece'); // read into the read cache before the loss
    await truncate(join(fx.seedRoot, fx.meta.name), 16 * PIECE); // pieces 16..63 are gone

    for (const index of [20, 21, 20, 63]) expect(await ask(fast, fx, index)).toBe('reject');
    // the first unreadable piece makes the seed look up the file's size (async): then every piece past its end goes,
    // the one still in the read cache too (asked for before that, it was served from memory: the right bytes, but flaky here)
    await until(() => warnings.length > 0, 5_000, 'the warning for the truncated file');
    expect(await ask(fast, fx, 40)).toBe('reject');
    for (const index of [0, 5, 15]) expect(await ask(fast, fx, index)).toBe('piece');
    expect(await ask(plain, fx, 22, 500)).toBe('nothing'); // a plain peer may not get a reject: nothing, and it stays
    expect(await ask(plain, fx, 3)).toBe('piece');
    expect(fast.isClosed() || plain.isClosed()).toBe(false);
    expect(closed).toEqual([]);

    // one warning, for the file, however often its pieces were asked for
    expect(warnings).toEqual([`${fx.meta.name} is ${16 * PIECE} bytes, not ${SIZE}: pieces 16..63 past its end can no longer be read: no longer served`]);
    const stats = seed.session.stats();
    expect(stats.have).toBe(16);
    expect(stats.left).toBe(48 * PIECE);
    expect(seed.session.have.has(20)).toBe(false);
    expect(seed.session.seeding).toBe(false);
    // a peer that connects now is not told it has them (no have-all, a bitfield without them)
    const late = await RawPeer.connect('127.0.0.1', seed.address.port);
    late.sendHandshake(fx.meta.infoHash, undefined, defaultReserved());
    const field = await late.waitFor((m) => m.type === 'bitfield' || m.type === 'have-all');
    expect(field.type).toBe('bitfield');
    if (field.type === 'bitfield') expect([...Array(64).keys()].filter((i) => field.bitfield.has(i))).toEqual([...Array(16).keys()]);
  });

  it('a tt leecher gets every piece that is still readable, over one connection', async () => {
    const fx = await fixture();
    const seed = await startSession({ meta: fx.meta, root: fx.seedRoot, mode: 'seed' });
    await truncate(join(fx.seedRoot, fx.meta.name), 16 * PIECE);
    const closed: string[] = [];
    seed.session.on('peer-closed', (_p, reason) => closed.push(reason));
    const leech = await startSession({ meta: fx.meta, root: join(fx.work, 'out'), mode: 'download', peers: [seed.address] });
    await until(() => leech.session.have.count === 16, 15_000, 'the 16 readable pieces');
    expect([...leech.session.have.indices()]).toEqual([...Array(16).keys()]);
    expect(closed).toEqual([]);
    expect(seed.session.stats().have).toBeLessThan(64);
  });

  it('a seed never downloads what it lost, even from a seed that has it (its storage is read-only)', async () => {
    const fx = await fixture();
    const other = await startSession({ meta: fx.meta, root: fx.seedRoot, mode: 'seed' });
    const lossy = await startSession({ meta: fx.meta, root: await copyOf(fx), mode: 'seed' });
    const errors: TtError[] = [];
    lossy.session.on('error', (e) => errors.push(e));
    const fast = await leecher(fx, lossy);
    await truncate(join(lossy.session.opts.root, fx.meta.name), 60 * PIECE);
    expect(await ask(fast, fx, 62)).toBe('reject');
    lossy.session.addPeers([other.address]);
    await until(() => lossy.session.peerCount >= 2, 5_000, 'the other seed');
    await new Promise((r) => setTimeout(r, 1_000));
    expect(errors).toEqual([]);
    expect(lossy.session.stats().downloaded).toBe(0);
    expect(lossy.session.have.has(62)).toBe(false);
  });

  it('--partial: a seed with pieces missing from the start does not download them either', async () => {
    const fx = await fixture();
    const other = await startSession({ meta: fx.meta, root: fx.seedRoot, mode: 'seed' });
    const root = await copyOf(fx);
    await truncate(join(root, fx.meta.name), 32 * PIECE);
    const partial = await startSession({ meta: fx.meta, root, mode: 'seed', allowPartial: true, peers: [other.address] });
    const errors: TtError[] = [];
    partial.session.on('error', (e) => errors.push(e));
    await until(() => partial.session.peerCount >= 1, 5_000, 'the other seed');
    await new Promise((r) => setTimeout(r, 1_500));
    expect(errors).toEqual([]);
    expect(partial.session.stats().downloaded).toBe(0);
    expect(partial.session.have.count).toBe(32);
  });
});

describe('a download whose file is truncated under it', () => {
  it('after completion (--seed): the lost pieces are fetched again from the seed it had parted from, and the file is whole again', async () => {
    const fx = await fixture();
    const { out, leech } = await downloaded(fx, { stallTimeoutMs: 5_000 });
    await until(() => leech.session.peerCount === 0, 5_000, 'the two seeds to part');
    const warnings: string[] = [];
    leech.session.on('warning', (m) => warnings.push(m));
    const errors: TtError[] = [];
    leech.session.on('error', (e) => errors.push(e));

    await truncate(join(out, fx.meta.name), 48 * PIECE);
    const asker = await leecher(fx, leech);
    expect(await ask(asker, fx, 50)).toBe('reject');
    await until(() => warnings.length > 0, 2_000, 'the warning');
    expect(warnings).toEqual([`${fx.meta.name} is ${48 * PIECE} bytes, not ${SIZE}: pieces 48..63 past its end can no longer be read: fetching again`]);
    // fetched again, all of them (not only those asked for: our own writes past a hole would make it read as zeros),
    // well before the minute two seeds wait before meeting again
    await until(() => leech.session.have.complete, 10_000, 'pieces 48..63 fetched again');
    expect(leech.session.done).toBe(true);
    expect(leech.session.stats().left).toBe(0);
    for (let i = 48; i < 64; i++) expect(await ask(asker, fx, i)).toBe('piece');
    await leech.session.flush();
    await expectSameData(fx, out);
    expect(errors).toEqual([]);
  }, 60_000);

  it('a lost piece fetched again is written only once the truncated file was measured: the pieces it cut off are lost too, never holes had as data', async () => {
    const fx = await fixture();
    const { out, leech } = await downloaded(fx);
    const warnings: string[] = [];
    leech.session.on('warning', (m) => warnings.push(m));
    await truncate(join(out, fx.meta.name), 48 * PIECE);
    // measuring the file takes a while; piece 50 comes back from the seed meanwhile (written at once, it made the file 51 pieces long)
    slowLstat.under = out;
    slowLstat.ms = 400;
    const asker = await leecher(fx, leech);
    expect(await ask(asker, fx, 50)).toBe('reject');
    await until(() => warnings.length > 0, 15_000, 'the warning');
    expect(warnings).toEqual([`${fx.meta.name} is ${48 * PIECE} bytes, not ${SIZE}: pieces 48..63 past its end can no longer be read: fetching again`]);
    slowLstat.under = '';
    await until(() => leech.session.have.complete, 10_000, 'pieces 48..63 fetched again');
    await leech.session.flush();
    await expectSameData(fx, out);
  }, 60_000);

  it(`the same piece lost ${MAX_PIECE_LOSSES} times stops the session with a disk error`, async () => {
    const fx = await fixture();
    const { out, leech } = await downloaded(fx);
    const errors: TtError[] = [];
    leech.session.on('error', (e) => errors.push(e));
    const asker = await leecher(fx, leech);
    asker.send({ type: 'have', index: 63 }); // nobody lacks it: once fetched again it is not kept in memory for serving
    for (let loss = 1; loss <= MAX_PIECE_LOSSES; loss++) {
      await truncate(join(out, fx.meta.name), 63 * PIECE);
      expect(await ask(asker, fx, 63)).toBe('reject');
      if (loss < MAX_PIECE_LOSSES) await until(() => leech.session.have.has(63), 10_000, `piece 63 fetched again (${loss})`);
    }
    await until(() => errors.length > 0, 2_000, 'the disk error');
    expect(errors[0]!.code).toBe('DISK');
    expect(errors[0]!.message).toMatch(/piece 63 was lost from disk 3 times/);
  }, 60_000);
});

/** A copy of the fixture's complete data in a folder of its own; returns that root. */
async function copyOf(fx: Fixture): Promise<string> {
  const { cp } = await import('node:fs/promises');
  const root = join(fx.work, `copy-${Math.random().toString(36).slice(2)}`);
  await cp(fx.seedRoot, root, { recursive: true });
  return root;
}
