/**
 * cli/magnet-source.ts before anything is dialed: a magnet link with no
 * source of peers says so at once, and when the DHT was asked for but its
 * node could not start, it says that instead of advising "use --dht".
 */
import { describe, expect, it } from 'vitest';
import { TtError } from '../../../src/core/errors.js';
import { readMagnet, resolveMagnet } from '../../../src/cli/magnet-source.js';
import { Reporter } from '../../../src/cli/reporter.js';
import type { Listener } from '../../../src/session/listener.js';

const BARE = `magnet:?xt=urn:btih:${'7e'.repeat(20)}`;

async function failure(dhtWanted: boolean): Promise<TtError> {
  const opts = { listener: { port: 1 } as Listener, dht: undefined, dhtWanted, peers: [], useTrackers: true, timeoutMs: 1_000, verbose: false, pex: true };
  const err: unknown = await resolveMagnet(readMagnet(BARE), opts, new Reporter('quiet')).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(TtError);
  return err as TtError;
}

describe('resolveMagnet with no way to find peers', () => {
  it('without the DHT: a usage error that points to --dht (exit 2)', async () => {
    const err = await failure(false);
    expect(err.code).toBe('USAGE');
    expect(err.message).toMatch(/use --dht/);
  });

  it('with the DHT asked for but not started: says so, and no peer could be found (exit 5), never "use --dht"', async () => {
    const err = await failure(true);
    expect(err.code).toBe('NO_PEERS');
    expect(err.message).toBe('the DHT node could not start (see the warning above); the magnet link names no tracker tt can use and no peer (x.pe), and no --peer was given: tt cannot find peers');
    expect(err.message).not.toMatch(/use --dht/);
  });

  it('a magnet whose only peer is tt itself (x.pe or --peer naming its own listening port) fails at once, not after --peer-timeout', async () => {
    const listener = { port: 6881 } as Listener;
    const opts = { listener, dht: undefined, dhtWanted: false, peers: [{ host: '127.0.0.1', port: 6881 }], useTrackers: true, timeoutMs: 8_000, verbose: false, pex: true };
    const started = Date.now();
    const err: unknown = await resolveMagnet(readMagnet(`${BARE}&x.pe=localhost:6881`), opts, new Reporter('quiet')).catch((e: unknown) => e);
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(err).toBeInstanceOf(TtError);
    expect((err as TtError).code).toBe('USAGE');
    expect((err as TtError).message).toMatch(/127\.0\.0\.1:6881, the only peer given, is tt's own listening address/);
  });
});

