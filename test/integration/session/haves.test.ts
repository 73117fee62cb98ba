/**
 * Which peers hear our `have`s: every peer that lacks the piece does, a peer
 * that has it does not (a have per piece per seed only wakes the seeds).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { Bitfield } from '../../../src/core/bitfield.js';
import type { Message } from '../../../src/wire/messages.js';
import { RawPeer } from '../../helpers/raw-peer.js';
import { expectSameData, makeFixture, startLeech, stopAll, torrentBytes, trackDir, whenComplete } from '../../helpers/swarm.js';

afterEach(stopAll);

/** A raw peer that claims `has`, answers requests from `data`, and records what it receives. */
async function recordingPeer(infoHash: Buffer, has: Bitfield, data: Buffer, pieceLength: number) {
  const server = await RawPeer.listen();
  const received: Message[] = [];
  const done = (async () => {
    const peer = await server.accept();
    await peer.readHandshake(5_000);
    peer.sendHandshake(infoHash);
    peer.send({ type: 'bitfield', bitfield: has });
    peer.send({ type: 'unchoke' });
    for (let i = 0; i < 100_000 && !peer.isClosed(); i++) {
      const m = await peer.nextMessage(10_000).catch(() => undefined);
      if (!m) break;
      received.push(m);
      if (m.type === 'request') {
        const at = m.index * pieceLength + m.begin;
        peer.send({ type: 'piece', index: m.index, begin: m.begin, block: data.subarray(at, at + m.length) });
      }
    }
  })().catch(() => undefined);
  return { port: server.port, received, close: () => server.close(), done };
}

describe('have messages', () => {
  it('go to the peer lacking the pieces, not to the seed that has them', async () => {
    const pieceLength = 32_768;
    const fx = await makeFixture({ files: [{ path: ['data.bin'], size: 20 * pieceLength + 500 }], pieceLength });
    trackDir(fx.work);
    const data = await torrentBytes(fx);
    const n = fx.meta.pieceCount;
    const seed = await recordingPeer(fx.meta.infoHash, Bitfield.full(n), data, pieceLength);
    const leecher = await recordingPeer(fx.meta.infoHash, new Bitfield(n), data, pieceLength);
    const out = join(fx.work, 'out');
    const leech = await startLeech(fx.meta, out, [seed.port, leecher.port]);
    await whenComplete(leech.session, 20_000);
    await expectSameData(fx, out);
    const havesTo = (p: { received: Message[] }) => p.received.flatMap((m) => (m.type === 'have' ? [m.index] : []));
    for (let i = 0; i < 200 && havesTo(leecher).length < n; i++) await new Promise((r) => setTimeout(r, 10));
    expect(havesTo(leecher).sort((a, b) => a - b)).toEqual(Array.from({ length: n }, (_, i) => i));
    expect(havesTo(seed)).toEqual([]);
    expect(seed.received.some((m) => m.type === 'request')).toBe(true); // it was talked to, just not told
    await seed.close();
    await leecher.close();
  });
});
