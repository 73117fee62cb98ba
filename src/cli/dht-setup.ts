/**
 * The DHT options of `tt download` and `tt seed` (--dht, --dht-port,
 * --dht-bootstrap) and opening the node they ask for. Off by default: a run
 * touches only the trackers and peers it was given unless the user opts in
 * (and never for a private torrent, BEP 27).
 */
import { isIP } from 'node:net';
import { errorMessage } from '../core/errors.js';
import type { PeerAddress } from '../core/peer-address.js';
import { DhtNode } from '../dht/node.js';
import type { Reporter } from './reporter.js';

export interface DhtConfig {
  /** UDP port (--dht-port; any free one, with a warning naming both, when it is taken); undefined = the TCP listening port's number when free, else any. */
  port?: number | undefined;
  /** Bootstrap nodes; undefined = the public routers. */
  bootstrap?: readonly PeerAddress[] | undefined;
  /** Address to bind (the --bind address when it is IPv4). */
  host: string;
}

/** The DhtConfig the shared options ask for, or undefined when the DHT is off. */
export function dhtConfigFrom(opts: { dht?: boolean; dhtPort?: number; dhtBootstrap?: PeerAddress[]; bind?: string }): DhtConfig | undefined {
  if (opts.dht !== true && opts.dhtBootstrap === undefined && opts.dhtPort === undefined) return undefined;
  const bind = opts.bind ?? '0.0.0.0';
  return { port: opts.dhtPort, bootstrap: opts.dhtBootstrap, host: isIP(bind) === 4 ? bind : '0.0.0.0' };
}

/** What a session or a magnet's metadata phase reports when one of its DHT lookups ends (`dht-lookup`, and a line with -v). */
export function reportDhtLookup(reporter: Reporter, verbose: boolean, dht: DhtNode | undefined): (found: number, queried: number) => void {
  return (found, queried) => {
    const table = dht?.table.size ?? 0;
    reporter.event('dht-lookup', { peers: found, nodes: queried, routingTable: table });
    if (verbose) reporter.info(`DHT: ${found} peer${found === 1 ? '' : 's'} from ${queried} node${queried === 1 ? '' : 's'} (routing table ${table})`);
  };
}

/**
 * Open a DHT node on `config.port`, or on `tcpPort`'s number when none was
 * given; any free port when that is taken (as README promises for
 * --dht-port too: a warning then names both, since a port forwarded for the
 * DHT no longer reaches it). A node that cannot be opened at all is a
 * warning, not a failure: trackers and --peer still work (a magnet whose
 * only source was the DHT says so, see magnet-source.ts).
 */
export async function openDht(config: DhtConfig, tcpPort: number, reporter: Reporter): Promise<DhtNode | undefined> {
  const tries = [config.port ?? tcpPort, 0];
  let lastError: unknown;
  for (const port of tries) {
    const node = new DhtNode({ host: config.host, port, ...(config.bootstrap ? { bootstrap: config.bootstrap } : {}) });
    try {
      await node.listen();
    } catch (err) {
      lastError ??= err;
      await node.close();
      continue;
    }
    if (config.port !== undefined && config.port !== 0 && node.port !== config.port) {
      reporter.warn(`--dht-port ${config.port} cannot be used (${errorMessage(lastError)}): the DHT node is on UDP port ${node.port} instead`);
    }
    node.on('warning', (m) => reporter.warn(m));
    reporter.event('dht', { port: node.port, nodeId: node.id.toString('hex') });
    reporter.info(`DHT node on UDP port ${node.port}`);
    return node;
  }
  reporter.warn(`DHT not started: ${errorMessage(lastError)}`);
  return undefined;
}
