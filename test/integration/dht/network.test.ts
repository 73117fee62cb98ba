/**
 * tt's DHT nodes among themselves on loopback, beyond one router: 24 nodes
 * bootstrap from one; a torrent announced by one node is found by another
 * through iterative lookups (several hops: the router does not hold it), and
 * a caller's throwing callback neither stalls a lookup nor escapes it.
 */
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import type { DhtNode } from '../../../src/dht/node.js';
import { closeDhtNodes, loopbackDhtNode } from '../../helpers/dht.js';
import { until } from '../../helpers/until.js';

afterEach(closeDhtNodes);

/** All on 127.0.0.1, so the per-address rate limit is raised (every node is the same address). */
async function network(size: number): Promise<DhtNode[]> {
  const router = await loopbackDhtNode({ queriesPerAddressPerS: 1000 });
  const nodes = [router];
  for (let i = 1; i < size; i++) {
    nodes.push(await loopbackDhtNode({ bootstrap: [{ host: '127.0.0.1', port: router.port }], queriesPerAddressPerS: 1000 }));
  }
  // the router verifies each newcomer (a ping) before it names it to others
  // (its table keeps at most K per bucket, so not all of them)
  await until(() => router.table.size >= Math.min(8, size - 1) && router.table.entries().every((e) => e.verified), 5_000, 'the router verified the nodes it keeps');
  // every node fills its table with a bootstrap lookup of its own id
  await Promise.all(nodes.map((n) => n.bootstrap()));
  // a node enters others' tables once it answered their ping (which may still be on its way when
  // the bootstrap lookups end, more so on a loaded machine): a node nobody knows yet cannot be
  // reached, and the "closest nodes" asserted below would include it
  const knownBy = (n: DhtNode): number => nodes.filter((m) => m !== n && m.table.has(n.id)).length;
  await until(() => nodes.every((n) => knownBy(n) >= Math.min(2, size - 1)), 5_000, 'every node known to others');
  return nodes;
}

describe('a network of tt DHT nodes', () => {
  it('an announce by one node is found by another; the announce went to the nodes closest to the info hash', async () => {
    const nodes = await network(24);
    for (const n of nodes.slice(1)) expect(n.table.size, 'every node learnt others').toBeGreaterThan(4);
    const infoHash = randomBytes(20);
    const announcer = nodes[7]!;
    const first = await announcer.getPeers(infoHash, { announcePort: 40_007 });
    expect(first.announcedTo).toBeGreaterThanOrEqual(4);
    // the nodes that stored it are among the 8 closest to the hash (XOR), not just the router
    const holders = nodes.filter((n) => n.store.peers(infoHash, Date.now()).length > 0);
    const closest = [...nodes.filter((n) => n !== announcer)]
      .sort((a, b) => Buffer.compare(xor(a.id, infoHash), xor(b.id, infoHash)))
      .slice(0, 8);
    expect(holders.filter((h) => closest.includes(h)).length).toBeGreaterThanOrEqual(Math.min(4, holders.length));
    const found = await nodes[13]!.getPeers(infoHash);
    expect(found.peers).toContainEqual({ host: '127.0.0.1', port: 40_007 });
  });

  it("a caller's callback that throws: the lookup still ends with the peers, and the node keeps working", async () => {
    const [router, a, b] = await network(3);
    const infoHash = randomBytes(20);
    await a!.getPeers(infoHash, { announcePort: 40_100 });
    const warnings: string[] = [];
    b!.on('warning', (m) => warnings.push(m));
    const found = await b!.getPeers(infoHash, {
      onPeers: () => {
        throw new Error('listener bug');
      },
    });
    expect(found.peers).toContainEqual({ host: '127.0.0.1', port: 40_100 });
    expect(warnings.some((w) => w.includes('listener bug'))).toBe(true);
    expect((await b!.query({ host: '127.0.0.1', port: router!.port }, { q: 'ping', id: b!.id }))?.id.equals(router!.id)).toBe(true);
  });
});

function xor(a: Buffer, b: Buffer): Buffer {
  return Buffer.from(a.map((x, i) => x ^ b[i]!));
}
