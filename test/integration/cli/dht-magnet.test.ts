/**
 * The DHT in a magnet's metadata phase, from the command line: its lookups are
 * reported there too (`dht-lookup`, and a `DHT:` line with -v), as they are
 * for a .torrent; an --dht-port that is taken falls back to any free port
 * with a warning naming both (README), instead of turning the DHT off and
 * then telling the user to "use --dht".
 */
import { createSocket, type Socket } from 'node:dgram';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { closeDhtNodes, loopbackDhtNode } from '../../helpers/dht.js';
import { stopAll, trackDir } from '../../helpers/swarm.js';
import { LOOPBACK, expectErrorLastLine, expectOneErrorLine, killAllTt, runTt } from './tt-cli.js';

const held: Socket[] = [];
afterEach(async () => {
  await killAllTt();
  await stopAll();
  await closeDhtNodes();
  await Promise.all(held.splice(0).map((s) => new Promise<void>((r) => s.close(() => r()))));
});

/** A magnet nobody has: the phase runs until --peer-timeout. */
const NOBODY = `magnet:?xt=urn:btih:${'11'.repeat(20)}`;

async function out(): Promise<string> {
  const work = await mkdtemp(join(tmpdir(), 'tt-dht-magnet-'));
  trackDir(work);
  return join(work, 'o');
}

/** A UDP port on 127.0.0.1 that someone else holds. */
async function takenUdpPort(): Promise<number> {
  const s = createSocket('udp4');
  held.push(s);
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  return s.address().port;
}

describe("a magnet's metadata phase and the DHT", () => {
  it('reports each DHT lookup that ends (dht-lookup; a DHT: line with -v), as for a .torrent', async () => {
    // a router of its own for each run: the first run's announce would be the second's peer
    const args = async (): Promise<string[]> => ['download', NOBODY, ...LOOPBACK, '--dht-bootstrap', `127.0.0.1:${(await loopbackDhtNode()).port}`, '--peer-timeout', '4', '--out', await out()];
    const json = await runTt([...(await args()), '--json'], 20_000);
    expect(json.exit?.code, json.describe()).toBe(5);
    expect(json.events.some((e) => e.event === 'metadata-fetching')).toBe(true);
    const lookups = json.events.filter((e) => e.event === 'dht-lookup');
    expect(lookups.length, json.describe()).toBeGreaterThan(0);
    expect(lookups[0]).toMatchObject({ peers: 0, nodes: 1 });
    const verbose = await runTt([...(await args()), '-v'], 20_000);
    expect(verbose.exit?.code, verbose.describe()).toBe(5);
    expect(verbose.stderr).toMatch(/^DHT: 0 peers from 1 node \(routing table \d+\)$/m);
  });

  it('an --dht-port that is taken: any free port instead, with a warning naming both; the DHT still runs', async () => {
    const r = await loopbackDhtNode();
    const taken = await takenUdpPort();
    const dl = await runTt(['download', NOBODY, ...LOOPBACK, '--out', await out(), '--dht-bootstrap', `127.0.0.1:${r.port}`, '--dht-port', String(taken), '--peer-timeout', '4', '--json'], 20_000);
    const dht = dl.events.find((e) => e.event === 'dht');
    expect(dht, dl.describe()).toBeDefined();
    expect(Number(dht!.port)).not.toBe(taken);
    const warning = dl.events.find((e) => e.event === 'warning' && String(e.message).includes('--dht-port'));
    expect(String(warning?.message), dl.describe()).toBe(`--dht-port ${taken} cannot be used (bind EADDRINUSE 127.0.0.1:${taken}): the DHT node is on UDP port ${String(dht!.port)} instead`);
    // it looked for peers, found none within --peer-timeout: exit 5, not "use --dht" (exit 2)
    expect(dl.events.some((e) => e.event === 'dht-lookup')).toBe(true);
    expect(dl.exit?.code, dl.describe()).toBe(5);
    expectOneErrorLine(dl, /no peer sent the torrent's metadata within 4 s/);
  });

  it('the same warning as a line on stderr without --json', async () => {
    const taken = await takenUdpPort();
    const dl = await runTt(['download', NOBODY, ...LOOPBACK, '--out', await out(), '--dht-bootstrap', '127.0.0.1:1', '--dht-port', String(taken), '--peer-timeout', '2'], 20_000);
    expect(dl.stderr).toContain(`warning: --dht-port ${taken} cannot be used (bind EADDRINUSE 127.0.0.1:${taken}): the DHT node is on UDP port `);
    expectErrorLastLine(dl, /no peer sent the torrent's metadata within 2 s/);
  });
});
