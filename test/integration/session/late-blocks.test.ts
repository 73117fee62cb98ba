/**
 * Blocks that arrive after we stopped waiting for them: a cancel crossed on
 * the wire in endgame, or a fast-extension peer served what it was asked
 * after choking us (BEP 6: a choke no longer discards requests). They are
 * good data, used when still missing and counted as waste otherwise, never a
 * protocol error: libtorrent and aria2c do both things, and tt used to drop
 * such peers after 64 of them.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { Bitfield } from '../../../src/core/bitfield.js';
import type { Metainfo } from '../../../src/metainfo/metainfo.js';
import type { Message } from '../../../src/wire/messages.js';
import { RawPeer } from '../../helpers/raw-peer.js';
import { expectSameData, makeFixture, startLeech, stopAll, torrentBytes, trackDir, whenComplete } from '../../helpers/swarm.js';

afterEach(stopAll);

type Request = Extract<Message, { type: 'request' }>;

/** A raw seed with its own request-handling script; records the cancels it gets. */
async function scriptedSeed(meta: Metainfo, opts: { fast: boolean; has?: Bitfield; onBitfield?: () => void }, script: (peer: RawPeer, serve: (r: Request) => void) => Promise<void>) {
  const server = await RawPeer.listen();
  const data: { bytes: Buffer } = { bytes: Buffer.alloc(0) };
  const done = (async () => {
    const peer = await server.accept();
    await peer.readHandshake(5_000);
    const reserved = Buffer.alloc(8);
    if (opts.fast) reserved[7] = 0x04; // BEP 6
    peer.sendHandshake(meta.infoHash, undefined, reserved);
    peer.send({ type: 'bitfield', bitfield: opts.has ?? Bitfield.full(meta.pieceCount) });
    opts.onBitfield?.();
    const serve = (r: Request): void => {
      const at = r.index * meta.pieceLength + r.begin;
      peer.send({ type: 'piece', index: r.index, begin: r.begin, block: data.bytes.subarray(at, at + r.length) });
    };
    await script(peer, serve);
  })().catch(() => undefined);
  return { port: server.port, data, close: () => server.close(), done };
}

describe('late blocks', () => {
  it('a fast-extension seed that chokes and then serves every request keeps its connection, and those blocks are used', async () => {
    const fx = await makeFixture({ files: [{ path: ['data.bin'], size: 3 * 1024 * 1024 + 1234 }], pieceLength: 65_536 });
    trackDir(fx.work);
    let rounds = 0;
    let servedAfterChoke = 0;
    const seed = await scriptedSeed(fx.meta, { fast: true }, async (peer, serve) => {
      // rounds: unchoke, gather what tt asks, choke, then serve all of it anyway
      for (let round = 0; round < 1000 && !peer.isClosed(); round++) {
        peer.send({ type: 'unchoke' });
        const asked: Request[] = [];
        for (;;) {
          const m = await peer.nextMessage(asked.length > 0 ? 100 : 5_000).catch(() => undefined);
          if (!m) break;
          if (m.type === 'request') asked.push(m);
        }
        if (asked.length === 0) return; // tt has everything (or is gone)
        peer.send({ type: 'choke' });
        for (const r of asked) serve(r);
        servedAfterChoke += asked.length;
        rounds++;
        await new Promise((r) => setTimeout(r, 20));
      }
    });
    seed.data.bytes = await torrentBytes(fx);
    const out = join(fx.work, 'out');
    const closes: string[] = [];
    const leech = await startLeech(fx.meta, out, [seed.port], (s) => s.on('peer-closed', (_peer, reason) => closes.push(reason)));
    await whenComplete(leech.session, 20_000);
    await expectSameData(fx, out);
    // the script did what it says: well over the 64 blocks that used to cost the connection
    expect(servedAfterChoke).toBeGreaterThan(64);
    expect(rounds).toBeGreaterThan(2);
    expect(closes.filter((r) => r.startsWith('protocol error'))).toEqual([]);
    // each late block was still missing, so it was kept: nothing asked twice, nothing wasted
    const stats = leech.session.stats();
    expect(stats.downloaded).toBe(fx.meta.totalLength);
    expect(stats.wastedBytes).toBe(0);
    await seed.close();
  });

  it('in endgame, blocks that crossed our cancel are dropped as waste and the sender stays connected', async () => {
    const fx = await makeFixture({ files: [{ path: ['data.bin'], size: 2 * 1024 * 1024 }], pieceLength: 32_768 });
    trackDir(fx.work);
    const last = fx.meta.pieceCount - 1;
    let slowFilled = (): void => {};
    const slowWasAsked = new Promise<void>((resolve) => (slowFilled = resolve));
    let fastAnnounced = (): void => {};
    const fastHasSaid = new Promise<void>((resolve) => (fastAnnounced = resolve));
    // the fast seed answers at once, but lacks the last piece: only the slow seed can finish the torrent.
    // It unchokes once the slow seed holds a full pipe of requests, the rarest piece (the last) first.
    const fastHas = new Bitfield(fx.meta.pieceCount);
    for (let i = 0; i < last; i++) fastHas.set(i);
    const fast = await scriptedSeed(fx.meta, { fast: false, has: fastHas, onBitfield: () => fastAnnounced() }, async (peer, serve) => {
      await Promise.race([slowWasAsked, new Promise((r) => setTimeout(r, 3_000))]);
      peer.send({ type: 'unchoke' });
      for (let i = 0; i < 100_000 && !peer.isClosed(); i++) {
        const m = await peer.nextMessage(10_000).catch(() => undefined);
        if (!m) return;
        if (m.type === 'request') serve(m);
      }
    });
    // the slow seed sits on its requests until cancels come, then sends the cancelled blocks, then the rest
    let cancelledAtDump = 0;
    const slow = await scriptedSeed(fx.meta, { fast: false }, async (peer, serve) => {
      // unchoke once tt knows what the fast seed has, so the last piece is the rarest
      await Promise.race([fastHasSaid, new Promise((r) => setTimeout(r, 3_000))]);
      await new Promise((r) => setTimeout(r, 100));
      peer.send({ type: 'unchoke' });
      const held: Request[] = [];
      const cancelled = new Set<string>();
      for (let i = 0; i < 100_000 && !peer.isClosed(); i++) {
        const m = await peer.nextMessage(cancelled.size > 0 ? 100 : 10_000).catch(() => undefined);
        if (m?.type === 'request' && held.push(m) >= 32) slowFilled();
        else if (m?.type === 'cancel') cancelled.add(`${m.index}:${m.begin}`);
        else if (!m && cancelled.size > 0) break; // the cancels have stopped coming
        else if (!m) return;
      }
      cancelledAtDump = cancelled.size;
      const isCancelled = (r: Request): boolean => cancelled.has(`${r.index}:${r.begin}`);
      for (const r of held.filter(isCancelled)) serve(r);
      for (const r of held.filter((r) => !isCancelled(r))) serve(r);
      for (let i = 0; i < 100_000 && !peer.isClosed(); i++) {
        const m = await peer.nextMessage(10_000).catch(() => undefined);
        if (!m) return;
        if (m.type === 'request') serve(m);
      }
    });
    const bytes = await torrentBytes(fx);
    fast.data.bytes = bytes;
    slow.data.bytes = bytes;
    const out = join(fx.work, 'out');
    const closes: string[] = [];
    const leech = await startLeech(fx.meta, out, [slow.port, fast.port], (s) => s.on('peer-closed', (peer, reason) => closes.push(`${peer} ${reason}`)));
    await whenComplete(leech.session, 20_000);
    await expectSameData(fx, out);
    // the cancelled blocks came (before the last piece, which only the slow seed has): all waste, no violation
    expect(cancelledAtDump).toBeGreaterThan(16);
    expect(leech.session.stats().wastedBytes).toBeGreaterThanOrEqual(cancelledAtDump * 16_384);
    expect(closes.filter((r) => r.includes('protocol error'))).toEqual([]);
    await fast.close();
    await slow.close();
  });

  it("a fast seed's reject of a cancelled block, arriving after tt asked it for that block again, does not refuse the new request", async () => {
    // pieces 0-2 come at once from the fast seed; it sits on the last piece's blocks. A lying seed that has only the
    // last piece unchokes once they are held there: endgame copies them to it, its corrupt copies come first (tt
    // cancels the fast seed's), fail the hash, and the piece is asked of the fast seed again. Its reject of the
    // cancelled copy (BEP 6) comes only then, as when it crosses the new request on the wire, followed by the block.
    // Taken for a refusal of the new request, the block was not asked of that seed for 30 s and the download stalled.
    const fx = await makeFixture({ files: [{ path: ['data.bin'], size: 4 * 32_768 }], pieceLength: 32_768 });
    trackDir(fx.work);
    const last = fx.meta.pieceCount - 1;
    const blocksOfLast = 32_768 / 16_384;
    let heldAll = (): void => {};
    const lastIsHeld = new Promise<void>((resolve) => (heldAll = resolve));
    let rejectedThenServed = 0;
    const honest = await scriptedSeed(fx.meta, { fast: true }, async (peer, serve) => {
      peer.send({ type: 'unchoke' });
      const held = new Set<string>();
      const cancelled = new Set<string>();
      for (let i = 0; i < 10_000 && !peer.isClosed(); i++) {
        const m = await peer.nextMessage(15_000).catch(() => undefined);
        if (!m) return;
        const key = m.type === 'request' || m.type === 'cancel' ? `${m.index}:${m.begin}` : '';
        if (m.type === 'cancel' && held.delete(key)) cancelled.add(key); // its reject is held back too
        if (m.type !== 'request') continue;
        if (m.index !== last) serve(m);
        else if (cancelled.delete(key)) {
          peer.send({ type: 'reject', index: m.index, begin: m.begin, length: m.length }); // the old request's answer
          serve(m); // the new one's
          rejectedThenServed++;
        } else if (held.add(key).size === blocksOfLast) heldAll();
      }
    });
    const has = new Bitfield(fx.meta.pieceCount);
    has.set(last);
    let lies = 0;
    const liar = await scriptedSeed(fx.meta, { fast: false, has }, async (peer, serve) => {
      await Promise.race([lastIsHeld, new Promise((r) => setTimeout(r, 5_000))]);
      peer.send({ type: 'unchoke' });
      for (let i = 0; i < 10_000 && !peer.isClosed(); i++) {
        const m = await peer.nextMessage(15_000).catch(() => undefined);
        if (!m) return;
        if (m.type !== 'request' || lies >= blocksOfLast) continue; // one corrupt copy of the piece, then silence
        lies++;
        peer.send({ type: 'piece', index: m.index, begin: m.begin, block: Buffer.alloc(m.length, 0x5a) });
      }
    });
    const bytes = await torrentBytes(fx);
    honest.data.bytes = bytes;
    liar.data.bytes = bytes;
    const out = join(fx.work, 'out');
    const leech = await startLeech(fx.meta, out, [honest.port, liar.port]);
    await whenComplete(leech.session, 10_000);
    await expectSameData(fx, out);
    expect(lies).toBe(blocksOfLast); // the script ran as described: the piece failed once...
    expect(rejectedThenServed).toBeGreaterThan(0); // ...and was asked of the fast seed again, rejected then served
    await honest.close();
    await liar.close();
  });

  it('endgame asks nobody for a copy of a block its peer is about to send: two prompt seeds, no block comes twice', async () => {
    const fx = await makeFixture({ files: [{ path: ['data.bin'], size: 4 * 1024 * 1024 }], pieceLength: 32_768 });
    trackDir(fx.work);
    const prompt = async (peer: RawPeer, serve: (r: Request) => void): Promise<void> => {
      peer.send({ type: 'unchoke' });
      for (let i = 0; i < 100_000 && !peer.isClosed(); i++) {
        const m = await peer.nextMessage(10_000).catch(() => undefined);
        if (!m) return;
        if (m.type === 'request') serve(m);
      }
    };
    const seeds = [await scriptedSeed(fx.meta, { fast: false }, prompt), await scriptedSeed(fx.meta, { fast: false }, prompt)];
    const bytes = await torrentBytes(fx);
    for (const seed of seeds) seed.data.bytes = bytes;
    const out = join(fx.work, 'out');
    const leech = await startLeech(fx.meta, out, seeds.map((s) => s.port));
    await whenComplete(leech.session, 20_000);
    await expectSameData(fx, out);
    const { downloaded, wastedBytes } = leech.session.stats();
    expect(wastedBytes).toBe(0);
    expect(downloaded).toBe(fx.meta.totalLength);
    for (const seed of seeds) await seed.close();
  });
});
