/**
 * A magnet's metadata phase never dials tt itself: an x.pe or --peer that is
 * our own listening address (by IP, or by a name that leads there) is said
 * once and not dialed. Nothing answers such a dial with our peer id (the
 * listener serves no torrent yet), so before, tt dialed itself plain, then
 * encrypted, again and again for the whole phase.
 */
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { TtError } from '../../../src/core/errors.js';
import { Listener } from '../../../src/session/listener.js';
import { fetcherLog, testFetcher } from '../../helpers/metadata-fetcher.js';

const listeners: Listener[] = [];
afterEach(async () => {
  await Promise.all(listeners.splice(0).map((l) => l.close()));
});

describe('MetadataFetcher: our own address', () => {
  it.each(['127.0.0.1', 'localhost', '::ffff:127.0.0.1'])('a peer at %s on our listening port is never dialed again', async (host) => {
    const listener = await Listener.listen({ port: 0 });
    if (host.includes(':') && listener.host !== '::') return; // no IPv6 here: nothing listens where that spelling leads
    listeners.push(listener);
    let accepted = 0;
    listener.on('accepted', () => accepted++);
    const f = testFetcher(randomBytes(20), [], { peers: [{ host, port: listener.port }], port: listener.port, timeoutMs: 2_500 });
    const warnings: string[] = [];
    f.on('warning', (m) => warnings.push(m));
    const seen = fetcherLog(f);
    const err = await f.run().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(TtError);
    expect((err as TtError).message).toMatch(/no peer sent the torrent's metadata within 3 s \(0 peers known\)/);
    // our own address as written is never dialed; another spelling once (plain, never again encrypted)
    expect(accepted).toBe(host.includes(':') ? 1 : 0);
    if (!host.includes(':')) expect(warnings).toEqual([`peer ${host}:${listener.port} is tt's own listening address: not dialed`]);
    // another spelling is dialed once, seen to be us (the listener never hears a handshake), and forgotten
    else expect(seen.closed).toEqual([`[${host}]:${listener.port}: connected to ourselves`]);
  });
});
