/**
 * `tt download magnet:?...`: turn a magnet link into a Metainfo by fetching the
 * info dictionary from peers (BEP 9), reporting progress, and stopping on
 * Ctrl-C, SIGTERM, SIGHUP or a dead stdout during that phase (stop.ts). The listener is opened first so trackers and peers learn
 * the port the download will use; it is handed on to the download, and so are
 * the peers heard of through PEX meanwhile, unless the metadata turns out to
 * be a private torrent's (BEP 27).
 */
import { TtError } from '../core/errors.js';
import { generatePeerId, peerKey } from '../core/ids.js';
import { withoutSelf, type PeerAddress } from '../core/peer-address.js';
import { parseMagnet, type MagnetLink } from '../metainfo/magnet.js';
import type { Metainfo } from '../metainfo/metainfo.js';
import { torrentFileBytes } from '../metainfo/metadata.js';
import { parseTorrent } from '../metainfo/parse-torrent.js';
import type { DhtNode } from '../dht/node.js';
import type { Listener } from '../session/listener.js';
import { MetadataFetcher } from '../session/metadata-fetch.js';
import { CLIENT_NAME } from '../session/extension-handshake.js';
import { sanitizeForTerminal } from './format.js';
import type { Reporter } from './reporter.js';
import { reportPex } from './run-session.js';
import { trackerScheme } from '../tracker/client.js';
import { unsupportedTrackerReason } from '../tracker/announcer.js';
import { onStop, stopError } from './stop.js';
import { reportDhtLookup } from './dht-setup.js';

/** Anything starting with `magnet:` is a magnet link (a bad one is exit 4, never "no such file"). */
export function isMagnet(source: string): boolean {
  return /^magnet:/i.test(source);
}

/** The link parsed, before anything listens or connects; a bad one is exit 4 with a terminal-safe reason. */
export function readMagnet(uri: string): MagnetLink {
  try {
    return parseMagnet(uri);
  } catch (err) {
    if (err instanceof TtError) err.message = sanitizeForTerminal(err.message);
    throw err;
  }
}

export interface MagnetResolved {
  meta: Metainfo;
  peerId: Buffer;
  /** Peers that answered during the metadata phase: dialed first by the download. */
  peers: PeerAddress[];
  /** Peers heard of through PEX during the metadata phase (none for a private torrent): the download's PEX peers. */
  pexPeers: PeerAddress[];
  /** The .torrent file: the verified info dictionary as the peers sent it, with the link's trackers and web seeds. */
  torrentFile: Buffer;
  /** The link's own peers (x.pe): the user's, like --peer, so the download never forgets them either. */
  linkPeers: PeerAddress[];
}

export async function resolveMagnet(
  magnet: MagnetLink,
  opts: {
    listener: Listener;
    dht?: DhtNode | undefined;
    /** The DHT was asked for (--dht, --dht-bootstrap, --dht-port), whether or not its node started. */
    dhtWanted?: boolean;
    peers: readonly PeerAddress[];
    maxPeersPerIp?: number;
    useTrackers: boolean;
    timeoutMs: number;
    verbose: boolean;
    /** Take peers from ut_pex messages (--no-pex: false). */
    pex: boolean;
  },
  reporter: Reporter,
): Promise<MagnetResolved> {
  const peerId = generatePeerId();
  const trackers = opts.useTrackers ? magnet.trackers : [];
  const peers = [...opts.peers, ...magnet.peers];
  // tt's own listening address is no peer (the fetcher says so and never dials it): with nothing else, nothing can come
  const others = withoutSelf(peers, opts.listener.port);
  const onlySelf = peers.length > 0 && others.length === 0 ? ` (${peerKey(peers[0]!.host, peers[0]!.port)}, the only peer given, is tt's own listening address)` : '';
  // a tracker tt cannot speak (javascript:, wss:) is no way to find peers: said now, not as 'every tracker failed'
  const usableTrackers = trackers.filter((t) => trackerScheme(t) !== undefined);
  // x.pe values that are no host:port (a peer without its port, say): named, never dropped in silence
  const badPeers = (magnet.badPeers ?? []).map((p) => `x.pe=${p}`).join(', ');
  if (usableTrackers.length === 0 && others.length === 0 && !opts.dht && opts.dhtWanted) {
    // "use --dht" would be wrong advice: it was asked for, and could not start
    const pe = badPeers ? `no usable peer (${badPeers}: not host:port)` : 'no peer (x.pe)';
    throw new TtError('NO_PEERS', sanitizeForTerminal(`the DHT node could not start (see the warning above); the magnet link names no tracker tt can use and ${pe}, and no --peer was given${onlySelf}: tt cannot find peers`));
  }
  if (usableTrackers.length === 0 && others.length === 0 && !opts.dht) {
    const peer = badPeers ? 'usable peer' : 'peer';
    const why =
      trackers.length > 0
        ? `no tracker of the magnet link can be used (${trackers[0]}: ${unsupportedTrackerReason(trackers[0]!)}${trackers.length > 1 ? `, and ${trackers.length - 1} more` : ''}), no ${peer}`
        : magnet.trackers.length > 0
          ? `with --no-trackers, the magnet link names no ${peer}`
          : `the magnet link names no tracker or ${peer}`;
    const pe = badPeers ? `(${badPeers}: not host:port)` : '(x.pe)';
    throw new TtError('USAGE', sanitizeForTerminal(`${why} ${pe} and no --peer given${onlySelf}, tt cannot find peers: use --dht, or give peers with --peer host:port`));
  }
  if (badPeers) reporter.warn(`the magnet link's ${badPeers}: not host:port, ignored`);
  const fetcher = new MetadataFetcher({
    infoHash: magnet.infoHash,
    peerId,
    trackers,
    peers,
    port: opts.listener.port,
    ...(opts.maxPeersPerIp !== undefined ? { maxPeersPerIp: opts.maxPeersPerIp } : {}),
    clientName: CLIENT_NAME,
    timeoutMs: opts.timeoutMs,
    requireEncryption: opts.listener.requireEncryption,
    dht: opts.dht,
    pex: opts.pex,
  });
  fetcher.on('warning', (m) => reporter.warn(m));
  fetcher.on('pex', reportPex(reporter, opts.verbose));
  fetcher.on('dht-lookup', reportDhtLookup(reporter, opts.verbose, opts.dht));
  fetcher.on('peer-banned', (peer, reason) => reporter.warn(`banned peer ${peer}: ${reason}`));
  if (opts.verbose) {
    fetcher.on('peer-connected', (peer) => reporter.info(`peer ${peer}: connected (metadata)`));
    fetcher.on('peer-closed', (peer, reason) => reporter.info(`peer ${peer}: closed: ${reason}`));
  }
  let rejectInterrupted!: (e: TtError) => void;
  const interrupted = new Promise<never>((_, reject) => (rejectInterrupted = reject));
  interrupted.catch(() => undefined); // may reject before the race below awaits it
  const removeStop = onStop((cause) => {
    fetcher.stop();
    rejectInterrupted(stopError(cause, ' while fetching the metadata; nothing written'));
  });
  const hex = magnet.infoHash.toString('hex');
  reporter.info(`fetching the torrent's metadata from peers (${magnet.name ?? hex})`);
  reporter.event('metadata-fetching', { infoHash: hex, trackers: trackers.length });
  try {
    const started = Date.now();
    const { metadata, peers, pexPeers } = await Promise.race([fetcher.run(), interrupted]);
    let meta: Metainfo;
    const torrentFile = torrentFileBytes(metadata, magnet.trackers, magnet.webSeeds);
    try {
      meta = parseTorrent(torrentFile);
    } catch (err) {
      // the bytes hash to the magnet's info hash, yet are no usable torrent
      if (err instanceof TtError) err.message = sanitizeForTerminal(`metadata from peers: ${err.message}`);
      throw err;
    }
    reporter.event('metadata', { infoHash: hex, bytes: metadata.length, seconds: (Date.now() - started) / 1000 });
    reporter.info(`metadata: ${meta.name}, ${metadata.length} bytes from peers`);
    if (meta.private && pexPeers.length > 0 && opts.verbose) {
      reporter.info(`private torrent: ${pexPeers.length} peer${pexPeers.length === 1 ? '' : 's'} heard of through PEX left out of the download (BEP 27)`);
    }
    return { meta, peerId, peers, pexPeers: meta.private ? [] : pexPeers, torrentFile, linkPeers: [...magnet.peers] };
  } finally {
    fetcher.stop();
    removeStop();
  }
}
