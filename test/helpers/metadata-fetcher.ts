/**
 * A MetadataFetcher for tests: the given 127.0.0.1 ports as its peers, no
 * trackers, a short timeout unless told otherwise. And the raw peers such a
 * fetcher dials in the BEP 9 / BEP 11 tests: a listener whose every
 * connection answers with a handshake carrying the BEP 10 bit and a chosen
 * extended handshake, then follows a script (serve the metadata, send ut_pex).
 */
import { generatePeerId } from '../../src/core/ids.js';
import type { PeerAddress } from '../../src/core/peer-address.js';
import { MetadataFetcher, type MetadataFetchOptions } from '../../src/session/metadata-fetch.js';
import { encodeExtendedHandshake, parseExtendedHandshake, type ExtendedHandshake } from '../../src/wire/extension.js';
import type { Message } from '../../src/wire/messages.js';
import { encodePex } from '../../src/wire/pex.js';
import { encodeMetadataData, parseMetadataMessage } from '../../src/wire/ut-metadata.js';
import { RawPeer, type RawPeerServer } from './raw-peer.js';
import { makeFixture, startSession, trackDir, type Running } from './swarm.js';

/** Reserved bytes with the BEP 10 (extension protocol) bit. */
export const EXTENSIONS = Buffer.from([0, 0, 0, 0, 0, 0x10, 0, 0]);
/** The extended ids the raw peers here ask the fetcher to use. */
export const RAW_UT_METADATA_ID = 7;
export const RAW_UT_PEX_ID = 9;

export type Extended = Extract<Message, { type: 'extended' }>;
export const isExtended =
  (id: number) =>
  (m: Message): m is Extended =>
    m.type === 'extended' && m.id === id;

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

export interface ScriptedPeers {
  readonly server: RawPeerServer;
  readonly port: number;
  /** Every connection so far, in order of arrival. */
  readonly connections: RawPeer[];
}

/** What a scripted peer says in its extended handshake: `m` and, when it has the metadata, its size. */
export interface ExtensionOffer {
  m: Record<string, number>;
  metadataSize?: number;
}

const open: ScriptedPeers[] = [];

/** Closes every scriptedPeers listener (and its connections) still open: for afterEach. */
export async function closeScriptedPeers(): Promise<void> {
  await Promise.all(open.splice(0).map((s) => s.server.close()));
}

/** What a fetcher reported: its `pex` events and every close as "peer: reason". */
export function fetcherLog(f: MetadataFetcher): { pex: [string, number, number][]; closed: string[] } {
  const out = { pex: [] as [string, number, number][], closed: [] as string[] };
  f.on('pex', (peer, added, fresh) => out.pex.push([peer, added, fresh]));
  f.on('peer-closed', (peer, reason) => out.closed.push(`${peer}: ${reason}`));
  return out;
}

/**
 * A listener for the fetcher to dial (closeScriptedPeers closes it). Each
 * connection: the fetcher's handshake is answered with ours (the BEP 10 bit
 * set), the fetcher's extended handshake awaited, `offer` sent as ours
 * (none when undefined), then `script` runs with what the fetcher offered.
 * Script errors (the fetcher closed the connection) end that connection's
 * script only.
 */
export async function scriptedPeers(
  infoHash: Buffer,
  offer: ExtensionOffer | undefined,
  script: (peer: RawPeer, theirs: ExtendedHandshake, index: number) => Promise<void> | void = () => undefined,
): Promise<ScriptedPeers> {
  const server = await RawPeer.listen({ timeoutMs: 10_000 });
  const connections: RawPeer[] = [];
  const serve = async (peer: RawPeer, index: number): Promise<void> => {
    await peer.readHandshake();
    peer.sendHandshake(infoHash, undefined, EXTENSIONS);
    const theirs = parseExtendedHandshake(((await peer.waitFor(isExtended(0))) as Extended).payload);
    if (offer) peer.send({ type: 'extended', id: 0, payload: encodeExtendedHandshake(offer) });
    await script(peer, theirs, index);
  };
  void (async () => {
    for (;;) {
      let peer: RawPeer;
      try {
        peer = await server.accept(60_000);
      } catch {
        return;
      }
      connections.push(peer);
      serve(peer, connections.length - 1).catch(() => undefined);
    }
  })();
  const scripted = { server, port: server.port, connections };
  open.push(scripted);
  return scripted;
}

/** A ut_pex message naming `added` (flags 0), under the id the fetcher asked for (RAW peers: theirs.m). */
export function sendPex(peer: RawPeer, id: number, added: readonly PeerAddress[]): void {
  peer.send({ type: 'extended', id, payload: encodePex({ added: added.map((p) => ({ host: p.host, port: p.port, flags: 0 })), dropped: [] }) });
}

/** Answers the fetcher's ut_metadata requests with the pieces of `info` until the connection ends. */
export async function serveMetadata(peer: RawPeer, theirs: ExtendedHandshake, info: Buffer): Promise<void> {
  const theirId = theirs.m.get('ut_metadata') ?? 0;
  for (;;) {
    const m = (await peer.waitFor(isExtended(RAW_UT_METADATA_ID), 30_000)) as Extended;
    const req = parseMetadataMessage(m.payload);
    if (req?.type === 'request') peer.send({ type: 'extended', id: theirId, payload: encodeMetadataData(info, req.piece) });
  }
}

/** A seeding tt of a small fresh torrent (it serves its info dictionary); stopAll stops it. */
export async function metadataSeed(): Promise<{ seed: Running; info: Buffer; infoHash: Buffer }> {
  const fx = await makeFixture({ files: [{ path: ['data.bin'], size: 100_000 }], pieceLength: 16_384 });
  trackDir(fx.work);
  const seed = await startSession({ meta: fx.meta, root: fx.seedRoot, mode: 'seed' });
  return { seed, info: fx.meta.rawInfo, infoHash: fx.meta.infoHash };
}
