/**
 * DHT nodes for tests: bound to 127.0.0.1 with no bootstrap (nothing leaves
 * the machine), remembered so one afterEach closes them all.
 */
import { DhtNode, type DhtNodeOptions } from '../../src/dht/node.js';

const open: DhtNode[] = [];

/** A listening DHT node on loopback; `opts` may add bootstrap nodes or a short query timeout. */
export async function loopbackDhtNode(opts: Omit<DhtNodeOptions, 'host'> = {}): Promise<DhtNode> {
  const node = new DhtNode({ port: 0, bootstrap: [], ...opts, host: '127.0.0.1' });
  open.push(node);
  await node.listen();
  return node;
}

export async function closeDhtNodes(): Promise<void> {
  await Promise.all(open.splice(0).map((n) => n.close()));
}
