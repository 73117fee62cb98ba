/**
 * Seeders that lie or vanish: a download must complete from the honest peer,
 * the liar must be banned, and no corrupt byte may reach the disk.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Bitfield } from '../../../src/core/bitfield.js';
import type { Metainfo } from '../../../src/metainfo/metainfo.js';
import { RawPeer } from '../../helpers/raw-peer.js';
import { expectSameData, makeFixture, startSession, stopAll, torrentBytes, trackDir, whenComplete } from '../../helpers/swarm.js';

afterEach(stopAll);

/**
 * A scripted seeder: handshakes, claims every piece, unchokes, then answers
 * requests via `answer`, which returns the block to send or 'close'.
 */
async function scriptedSeeder(meta: Metainfo, answer: (index: number, begin: number, length: number, served: number) => Buffer | 'close') {
  const server = await RawPeer.listen();
  const done = (async () => {
    const peer = await server.accept();
    await peer.readHandshake(5_000);
    peer.sendHandshake(meta.infoHash);
    peer.send({ type: 'bitfield', bitfield: Bitfield.full(meta.pieceCount) });
    peer.send({ type: 'unchoke' });
    let served = 0;
    for (let i = 0; i < 100_000 && !peer.isClosed(); i++) {
      const m = await peer.nextMessage(10_000).catch(() => undefined);
      if (!m) break;
      if (m.type !== 'request') continue;
      const block = answer(m.index, m.begin, m.length, served++);
      if (block === 'close') {
        peer.close();
        break;
      }
      peer.send({ type: 'piece', index: m.index, begin: m.begin, block });
    }
  })().catch(() => undefined);
  return { port: server.port, close: () => server.close(), done };
}

describe('hostile seeders', () => {
  it('a seeder sending corrupt blocks is banned; the download completes from an honest one with no bad byte on disk', async () => {
    const fx = await makeFixture({ files: [{ path: ['data.bin'], size: 1024 * 1024 + 99 }], pieceLength: 32_768 });
    trackDir(fx.work);
    const liar = await scriptedSeeder(fx.meta, (_i, _b, length) => randomBytes(length));
    const honest = await startSession({ meta: fx.meta, root: fx.seedRoot, mode: 'seed', uploadLimit: 2 * 1024 * 1024 });
    const out = join(fx.work, 'out');
    const leech = await startSession({
      meta: fx.meta,
      root: out,
      mode: 'download',
      peers: [{ host: '127.0.0.1', port: liar.port }, honest.address],
    });
    const banned: string[] = [];
    leech.session.on('peer-banned', (peer) => banned.push(peer));
    const failed: number[] = [];
    leech.session.on('piece-failed', (index) => failed.push(index));
    await whenComplete(leech.session, 60_000);
    await expectSameData(fx, out);
    expect(failed.length).toBeGreaterThan(0); // the liar really was asked and really lied
    expect(banned).toContain(`127.0.0.1:${liar.port}`);
    await liar.close();
  }, 90_000);

  it('a seeder that disconnects mid-piece: its blocks go to the other seeder', async () => {
    const fx = await makeFixture({ files: [{ path: ['data.bin'], size: 512 * 1024 + 7 }], pieceLength: 65_536 });
    trackDir(fx.work);
    const all = await torrentBytes(fx);
    // serves 5 honest blocks (a piece is 4 blocks), then hangs up in the middle of the second piece
    const flaky = await scriptedSeeder(fx.meta, (index, begin, length, served) =>
      served >= 5 ? 'close' : all.subarray(index * fx.meta.pieceLength + begin, index * fx.meta.pieceLength + begin + length),
    );
    const honest = await startSession({ meta: fx.meta, root: fx.seedRoot, mode: 'seed', uploadLimit: 1024 * 1024 });
    const out = join(fx.work, 'out');
    const leech = await startSession({
      meta: fx.meta,
      root: out,
      mode: 'download',
      peers: [{ host: '127.0.0.1', port: flaky.port }, honest.address],
    });
    const closed: string[] = [];
    leech.session.on('peer-closed', (peer) => closed.push(peer));
    await whenComplete(leech.session, 60_000);
    await expectSameData(fx, out);
    expect(closed).toContain(`127.0.0.1:${flaky.port}`);
    expect(leech.session.stats().failedPieces).toBe(0);
    await flaky.close();
  }, 90_000);
});
