/**
 * Peer exchange (BEP 11 ut_pex) with libtorrent, all on 127.0.0.1, nothing else that could name a
 * peer: the torrent lists no tracker, tt runs with --no-trackers and no DHT, libtorrent with its
 * DHT/LSD/UPnP/NAT-PMP off. Two kinds of libtorrent process:
 * - A: a seeder without ut_pex (lt.py never loads it unless asked), so A never learns of anyone,
 *   tells nobody about anyone, and dials nobody: whoever talks to A dialed A's listening port.
 * - a "join" peer (B, L): ut_pex on, no data, downloads nothing (libtorrent's upload mode sends
 *   no requests), reporting every connected peer; an outgoing connection shows the listening port
 *   it dialed, an incoming one an ephemeral port, and `fromPex` the peers it learned through PEX.
 *   Being upload-only, it stays connected to A only because A keeps redundant connections.
 * Tests:
 * - tt given only B downloads everything from A, whose address only B's ut_pex carried.
 * - libtorrent L given only tt ends up connected to A, whose address only tt's ut_pex carried.
 * - with --no-pex, tt given only B hears no peer list, never reaches A and gives up on its
 *   stall timeout although B is connected to A all along.
 * The same in a magnet's metadata phase: A also serves the metadata (ut_metadata), and B joins
 * with the magnet link alone and without ut_metadata, so B never has the metadata and can give
 * tt neither it nor a piece (libtorrent sends PEX before it has the metadata):
 * - tt given the magnet and only B learns A from B's ut_pex, fetches the metadata from A and
 *   downloads everything from it.
 * - with --no-pex, tt never reaches A and gives up: no peer sends the metadata.
 */
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { assertSameTree, writeMultiFileData } from '../helpers/clients/data.js';
import { ltCreate, startLtJoin, startLtSeeder, type LtJoined, type LtSeeder } from '../helpers/clients/libtorrent.js';
import { killAll, type JsonEvent } from '../helpers/clients/process.js';
import { INTEROP_LAYOUT, INTEROP_PIECE_LENGTH } from '../helpers/clients/tracked-torrent.js';
import { LOOPBACK, expectOneErrorLine, startTt, type TtProcess } from '../integration/cli/tt-cli.js';

const TOTAL_LENGTH = Object.values(INTEROP_LAYOUT).reduce((a, b) => a + b, 0);
/** libtorrent sends its first peer list ~1-3 s after the extended handshake; tt as soon as it has one. */
const PEX_WAIT_MS = 10_000;
const DOWNLOAD_TIMEOUT_MS = 20_000;
/** Slow enough that tt is still downloading from A (~3 MiB) long after test 2 is over. */
const SLOW_UPLOAD_BYTES_PER_S = 16 * 1024;
/** --no-pex: how long tt waits for data; libtorrent would have sent its peer list well before. */
const STALL_TIMEOUT_S = 6;
/** NO_PEERS in src/core/errors.ts EXIT_CODES. */
const EXIT_NO_PEERS = 5;
/** tt's --peer-timeout for a magnet, which bounds the metadata phase. */
const MAGNET_PEER_TIMEOUT_S = 15;

let dir: string;
let seedDir: string;
let source: string;
let torrent: string;
/** The same torrent as a magnet link: no tr=, no x.pe. */
let magnet: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tt-interop-pex-'));
  seedDir = join(dir, 'seed');
  source = await writeMultiFileData(seedDir, 'multi', INTEROP_LAYOUT);
  torrent = join(dir, 'bare.torrent');
  const infoHash = await ltCreate(source, torrent, { pieceLength: INTEROP_PIECE_LENGTH }); // no tracker
  magnet = `magnet:?xt=urn:btih:${infoHash}&dn=multi`;
}, 60_000);

afterEach(async () => {
  await killAll();
});

afterAll(async () => {
  await killAll();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const at = (port: number): string => `127.0.0.1:${port}`;
const strings = (v: unknown): string[] => (Array.isArray(v) ? v.map(String) : []);
const isPeers = (e: JsonEvent): boolean => e['event'] === 'peers';

/** The first "peers" report of a join peer (seen so far or later) that satisfies match. */
function waitForPeers(peer: LtJoined, match: (e: JsonEvent) => boolean, what: string, timeoutMs = PEX_WAIT_MS): Promise<JsonEvent> {
  return peer.proc.waitForEvent((e) => isPeers(e) && match(e), timeoutMs, what);
}

/** The next "peers" report after the ones already printed (a fresh look at its state). */
function nextPeersReport(peer: LtJoined): Promise<JsonEvent> {
  const seen = peer.proc.events.length;
  return peer.proc.waitForEvent((e) => isPeers(e) && peer.proc.events.indexOf(e) >= seen, 5_000, 'a fresh "peers" report');
}

/** B has no piece and moved no byte either way; A (stopped here) uploaded at least the whole torrent. */
async function expectEveryByteFrom(seeder: LtSeeder, relay: LtJoined): Promise<void> {
  const after = await nextPeersReport(relay);
  expect(after['pieces'], relay.proc.output()).toBe(0);
  expect(after['downloaded'], relay.proc.output()).toBe(0);
  expect(after['uploaded'], relay.proc.output()).toBe(0);
  await seeder.stop();
  const stopped = seeder.proc.events.find((e) => e['event'] === 'stopped');
  expect(Number(stopped?.['uploaded']), seeder.proc.output()).toBeGreaterThanOrEqual(TOTAL_LENGTH);
}

/** Messages of tt's -v "info" events (peer connects, closes, PEX). */
const infos = (tt: TtProcess): string[] => tt.events.filter((e) => e.event === 'info').map((e) => String(e['message']));
/** tt dialed this listening port and completed the handshake (an incoming peer shows an ephemeral port). */
const ttConnectedTo = (tt: TtProcess, port: number): boolean => infos(tt).some((m) => m.startsWith(`peer ${at(port)}: connected`));
/** Where the first of tt's info lines starting with `prefix` stands among its events (-1: none). */
const infoAt = (tt: TtProcess, prefix: string): number => tt.events.findIndex((e) => e.event === 'info' && String(e['message']).startsWith(prefix));

/**
 * A (no PEX) seeding, and B (PEX, no data) connected to it: B dialed A's listening port. For the
 * metadata phase A also serves the metadata and B joins from the magnet link, never getting it.
 */
async function seederAndRelay(label: string, metadataPhase = false): Promise<{ seeder: LtSeeder; seederPort: number; relay: LtJoined }> {
  const seeder = await startLtSeeder({ torrent, dataDir: seedDir, keepRedundant: true, metadata: metadataPhase });
  const relay = await startLtJoin({ torrent: metadataPhase ? magnet : torrent, outDir: await mkdtemp(join(dir, `relay-${label}-`)), peers: [at(seeder.port)], pex: true });
  await waitForPeers(relay, (e) => strings(e['peers']).includes(at(seeder.port)), 'B connected to A');
  return { seeder, seederPort: seeder.port, relay };
}

describe('peer exchange (BEP 11 ut_pex) with libtorrent', () => {
  it("tt learns a libtorrent seeder only from a libtorrent peer's ut_pex and downloads everything from it", async () => {
    const { seeder, seederPort, relay } = await seederAndRelay('learn');
    const out = await mkdtemp(join(dir, 'out-learn-'));
    const tt = startTt([
      'download', torrent, '--out', out, '--no-trackers', '--peer', at(relay.port), ...LOOPBACK, '--json', '--verbose',
      '--peer-timeout', '10', '--stall-timeout', '10',
    ]);
    const exit = await tt.waitForExit(DOWNLOAD_TIMEOUT_MS);
    expect(exit.code, tt.describe()).toBe(0);
    await assertSameTree(source, join(out, 'multi'), { strict: true });

    // B's ut_pex named A, new to tt ...
    const pex = tt.events.filter((e) => e.event === 'pex');
    const fromRelay = pex.filter((e) => e['peer'] === at(relay.port));
    expect(fromRelay.length, tt.describe()).toBeGreaterThan(0);
    expect(Number(fromRelay[0]!['added']), tt.describe()).toBeGreaterThanOrEqual(1);
    expect(Number(fromRelay[0]!['fresh']), tt.describe()).toBeGreaterThanOrEqual(1);
    // ... and nobody else sent one (A has no ut_pex)
    expect(pex.every((e) => e['peer'] === at(relay.port)), tt.describe()).toBe(true);
    // tt then dialed A's listening port
    expect(ttConnectedTo(tt, relay.port), tt.describe()).toBe(true);
    expect(ttConnectedTo(tt, seederPort), tt.describe()).toBe(true);
    const firstPex = tt.events.indexOf(fromRelay[0]!);
    const firstToSeeder = tt.events.findIndex((e) => e.event === 'info' && String(e['message']).startsWith(`peer ${at(seederPort)}: connected`));
    expect(firstPex, tt.describe()).toBeLessThan(firstToSeeder);

    // B had nothing to give, and gave nothing: every byte came from A
    await expectEveryByteFrom(seeder, relay);
  }, 60_000);

  it("a libtorrent peer given only tt's address connects to the seeder tt names in its ut_pex", async () => {
    // A serves slowly: tt stays connected to A (downloading) for minutes
    const seeder = await startLtSeeder({ torrent, dataDir: seedDir, uploadLimit: SLOW_UPLOAD_BYTES_PER_S, keepRedundant: true });
    const out = await mkdtemp(join(dir, 'out-tell-'));
    const tt = startTt([
      'download', torrent, '--out', out, '--no-trackers', '--peer', at(seeder.port), ...LOOPBACK, '--json', '--verbose', '--peer-timeout', '30',
    ]);
    const ttPort = Number((await tt.waitForEvent('listening'))['port']);
    await tt.waitFor(`tt connected to A (${at(seeder.port)})`, () => (ttConnectedTo(tt, seeder.port) ? true : undefined), PEX_WAIT_MS);

    const learner = await startLtJoin({ torrent, outDir: await mkdtemp(join(dir, 'learner-')), peers: [at(ttPort)], pex: true });
    // L dialed A's listening port, which it learned through ut_pex: only tt could have named it
    const report = await waitForPeers(
      learner,
      (e) => strings(e['fromPex']).includes(at(seeder.port)) && strings(e['peers']).includes(at(seeder.port)),
      "L connected to A, learned through PEX",
    );
    expect(strings(report['peers']), learner.proc.output()).toContain(at(ttPort));
    // A is the only peer L reached through PEX (tt, which L dialed, is not counted as learned)
    expect(strings(report['fromPex']), learner.proc.output()).toEqual([at(seeder.port)]);
    // tt was still downloading from A the whole time (A was connected to tt when tt told L)
    expect(tt.exit, tt.describe()).toBeUndefined();
    expect(tt.events.some((e) => e.event === 'complete'), tt.describe()).toBe(false);
    expect(infos(tt).some((m) => m.startsWith(`peer ${at(seeder.port)}: closed`)), tt.describe()).toBe(false);
  }, 60_000);

  it('with --no-pex tt given only that libtorrent peer hears no peer list, never reaches the seeder and gives up', async () => {
    const { seederPort, relay } = await seederAndRelay('nopex');
    const out = await mkdtemp(join(dir, 'out-nopex-'));
    const tt = startTt([
      'download', torrent, '--out', out, '--no-trackers', '--peer', at(relay.port), ...LOOPBACK, '--json', '--verbose',
      '--no-pex', '--stall-timeout', String(STALL_TIMEOUT_S), '--peer-timeout', String(STALL_TIMEOUT_S),
    ]);
    // B has A and tt at once: had tt asked for ut_pex, B's list naming A would come within ~1-3 s, long before the stall timeout
    await waitForPeers(relay, (e) => strings(e['peers']).includes(at(seederPort)) && strings(e['peers']).length >= 2, 'B connected to A and tt');
    const exit = await tt.waitForExit((STALL_TIMEOUT_S + 10) * 1000);
    expect(exit.code, tt.describe()).toBe(EXIT_NO_PEERS);
    expect(tt.stderr, tt.describe()).toMatch(/no data for/);

    expect(ttConnectedTo(tt, relay.port), tt.describe()).toBe(true);
    expect(tt.events.filter((e) => e.event === 'pex'), tt.describe()).toEqual([]);
    expect(infos(tt).filter((m) => m.includes(`:${seederPort}`)), tt.describe()).toEqual([]);
    // B stayed connected to A all along, with nothing to give
    const after = await nextPeersReport(relay);
    expect(strings(after['peers']), relay.proc.output()).toContain(at(seederPort));
    expect(after['pieces'], relay.proc.output()).toBe(0);
    expect(after['uploaded'], relay.proc.output()).toBe(0);
  }, 60_000);
});

describe("peer exchange with libtorrent in a magnet's metadata phase", () => {
  /** `tt download <magnet> --no-trackers --peer B --json --verbose` into a fresh folder. */
  async function ttMagnet(label: string, relay: LtJoined, extra: readonly string[]): Promise<{ tt: TtProcess; out: string }> {
    const out = await mkdtemp(join(dir, `out-magnet-${label}-`));
    return { out, tt: startTt(['download', magnet, '--out', out, '--no-trackers', '--peer', at(relay.port), ...LOOPBACK, '--json', '--verbose', ...extra]) };
  }

  it("tt's only peer is a libtorrent peer without the metadata: its ut_pex leads tt to the seeder, and tt downloads everything", async () => {
    const { seeder, seederPort, relay } = await seederAndRelay('magnet-learn', true);
    const { tt, out } = await ttMagnet('learn', relay, ['--peer-timeout', String(MAGNET_PEER_TIMEOUT_S)]);
    const exit = await tt.waitForExit(DOWNLOAD_TIMEOUT_MS);
    expect(exit.code, tt.describe()).toBe(0);
    await assertSameTree(source, join(out, 'multi'), { strict: true });

    // B's ut_pex, in the metadata phase, named A (and nobody else sent one: A has no ut_pex)
    const pex = tt.events.filter((e) => e.event === 'pex');
    expect(pex.length, tt.describe()).toBeGreaterThan(0);
    expect(pex.every((e) => e['peer'] === at(relay.port)), tt.describe()).toBe(true);
    expect(Number(pex[0]!['fresh']), tt.describe()).toBeGreaterThanOrEqual(1);
    const firstPex = tt.events.indexOf(pex[0]!);
    const metadata = tt.events.findIndex((e) => e.event === 'metadata');
    expect(firstPex, tt.describe()).toBeLessThan(metadata);
    // tt dialed A's listening port only after B's list, and got the metadata from it
    expect(infoAt(tt, `peer ${at(relay.port)}: connected (metadata)`), tt.describe()).toBeLessThan(firstPex);
    const toSeeder = infoAt(tt, `peer ${at(seederPort)}: connected (metadata)`);
    expect(toSeeder, tt.describe()).toBeGreaterThan(firstPex);
    expect(toSeeder, tt.describe()).toBeLessThan(metadata);
    expect(infos(tt), tt.describe()).toContain(`peer ${at(relay.port)}: closed: peer does not offer the metadata (its ut_pex peer list taken)`);

    // B never had the metadata nor a piece, and gave nothing: every byte came from A
    await expectEveryByteFrom(seeder, relay);
  }, 60_000);

  it('with --no-pex tt asks B for no peer list, never reaches the seeder and gives up without the metadata', async () => {
    const { seederPort, relay } = await seederAndRelay('magnet-nopex', true);
    const { tt, out } = await ttMagnet('nopex', relay, ['--no-pex', '--peer-timeout', String(STALL_TIMEOUT_S)]);
    const exit = await tt.waitForExit((STALL_TIMEOUT_S + 10) * 1000);
    expect(exit.code, tt.describe()).toBe(EXIT_NO_PEERS);
    expectOneErrorLine(tt, /metadata/);
    expect(infos(tt), tt.describe()).toContain(`peer ${at(relay.port)}: connected (metadata)`);
    expect(tt.events.filter((e) => e.event === 'pex'), tt.describe()).toEqual([]);
    expect(infos(tt).filter((m) => m.includes(`:${seederPort}`)), tt.describe()).toEqual([]);
    expect(tt.events.some((e) => e.event === 'metadata'), tt.describe()).toBe(false);
    expect(await readdir(out)).toEqual([]);
    // B stayed connected to A all along: had tt taken ut_pex, B would have named it
    const after = await nextPeersReport(relay);
    expect(strings(after['peers']), relay.proc.output()).toContain(at(seederPort));
  }, 60_000);
});
