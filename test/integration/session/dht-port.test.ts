/**
 * BEP 5 on the peer wire: a session that runs a DHT node sets the DHT bit in
 * its handshake and tells DHT-capable peers its node's UDP port (PORT); a
 * peer's PORT message makes our node ping theirs, which then joins our routing
 * table. Without a DHT node, or to a peer without the bit, nothing is said.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Message } from '../../../src/wire/messages.js';
import { closeDhtNodes, loopbackDhtNode } from '../../helpers/dht.js';
import { stopAll } from '../../helpers/swarm.js';
import { until } from '../../helpers/until.js';
import { RawPeer } from '../../helpers/raw-peer.js';
import { hostileLeecher, startSeed, type SeedSetup } from '../hostile/harness.js';

afterEach(async () => {
  await stopAll();
  await closeDhtNodes();
});

const DHT_AND_FAST = Buffer.from([0, 0, 0, 0, 0, 0x10, 0, 0x05]);
const FAST_ONLY = Buffer.from([0, 0, 0, 0, 0, 0x10, 0, 0x04]);

/** Connect with `reserved`; returns the peer and tt's reserved bytes. */
async function connect({ fx, seed }: SeedSetup, reserved: Buffer): Promise<{ peer: RawPeer; theirReserved: Buffer }> {
  const peer = await RawPeer.connect('127.0.0.1', seed.address.port);
  peer.sendHandshake(fx.meta.infoHash, undefined, reserved);
  const h = await peer.readHandshake();
  return { peer, theirReserved: h.reserved };
}

function portMessages(received: readonly Message[]): number[] {
  return received.flatMap((m) => (m.type === 'port' ? [m.port] : []));
}

describe('BEP 5 PORT and the DHT handshake bit', () => {
  it('with a DHT node: the DHT bit is set and a DHT peer is told the node port', async () => {
    const ours = await loopbackDhtNode();
    const setup = await startSeed({ dht: ours });
    const { peer, theirReserved } = await connect(setup, DHT_AND_FAST);
    expect(theirReserved[7]! & 0x01).toBe(0x01);
    await peer.waitFor((m) => m.type === 'port');
    expect(portMessages(peer.received)).toEqual([ours.port]);
    const { peer: plain } = await connect(setup, FAST_ONLY);
    await plain.waitFor((m) => m.type === 'have-all');
    await new Promise((r) => setTimeout(r, 300));
    expect(portMessages(plain.received)).toEqual([]);
  });

  it('the DHT bit is clear and no PORT is sent without a DHT node', async () => {
    const { peer, theirReserved } = await connect(await startSeed(), DHT_AND_FAST);
    expect(theirReserved[7]! & 0x01).toBe(0);
    await peer.waitFor((m) => m.type === 'have-all');
    await new Promise((r) => setTimeout(r, 300));
    expect(portMessages(peer.received)).toEqual([]);
  });

  it("a peer's PORT: our node pings theirs once, and it joins our routing table", async () => {
    const ours = await loopbackDhtNode();
    const theirs = await loopbackDhtNode();
    const { fx, seed } = await startSeed({ dht: ours });
    const peer = await hostileLeecher(fx.meta, seed, undefined, DHT_AND_FAST);
    expect(ours.table.has(theirs.id)).toBe(false);
    peer.send({ type: 'port', port: theirs.port });
    await until(() => ours.table.has(theirs.id), 3_000, 'their node in our routing table');
    // the ping that did it also put our node in theirs
    expect(theirs.table.has(ours.id)).toBe(true);
  });
});
