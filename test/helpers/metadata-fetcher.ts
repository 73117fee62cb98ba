/**
 * A MetadataFetcher for tests: the given 127.0.0.1 ports as its peers, no
 * trackers, a short timeout unless told otherwise.
 */
import { generatePeerId } from '../../src/core/ids.js';
import { MetadataFetcher, type MetadataFetchOptions } from '../../src/session/metadata-fetch.js';

export function testFetcher(infoHash: Buffer, ports: number[], extra: Partial<MetadataFetchOptions> = {}): MetadataFetcher {
  return new MetadataFetcher({
    infoHash,
    peerId: generatePeerId(),
    trackers: [],
    peers: ports.map((port) => ({ host: '127.0.0.1', port })),
    port: 1,
    clientName: 'tt-test',
    timeoutMs: 5_000,
    ...extra,
  });
}

/** Run it; a failure names every peer it closed and why. */
export async function fetchExplained(f: MetadataFetcher): ReturnType<MetadataFetcher['run']> {
  const closed: string[] = [];
  f.on('peer-closed', (peer, reason) => closed.push(`${peer}: ${reason}`));
  return f.run().catch((err: unknown) => {
    throw new Error(`${String(err)}; closes: ${closed.join(' | ')}`);
  });
}
