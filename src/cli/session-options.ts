/**
 * The options `tt download` and `tt seed` share (listening, peers, limits,
 * seeding goals, output mode) and their translation into runSession options,
 * declared once so the two commands cannot drift apart.
 */
import { InvalidArgumentError, type Command } from 'commander';
import type { PeerAddress } from '../core/peer-address.js';
import { dhtConfigFrom } from './dht-setup.js';
import type { RunGoal } from './run-session.js';
import { DEFAULT_MAX_PEERS_PER_IP } from '../session/peer-pool.js';
import { parseBindAddress, parseCount, parseDuration, parsePeer, parsePort, parseRatio, parseSize } from './units.js';

export interface SharedOptions {
  port?: number;
  bind?: string;
  maxPeers: number;
  maxPeersPerIp: number;
  peer?: PeerAddress[];
  uploadLimit?: number;
  uploadSlots: number;
  seedRatio?: number;
  seedTime?: number;
  quiet?: boolean;
  verbose?: boolean;
  json?: boolean;
  encryption: 'allow' | 'require';
  dht?: boolean;
  dhtPort?: number;
  dhtBootstrap?: PeerAddress[];
  pex: boolean;
}

function parseEncryption(text: string): 'allow' | 'require' {
  if (text === 'allow' || text === 'require') return text;
  throw new InvalidArgumentError(`'${text}' is not allow or require`);
}

/** Adds the shared options; `peerHelp` and `goalPrefix` word them for each command. */
export function addSharedOptions(cmd: Command, peerHelp: string, goalPrefix: string): Command {
  return cmd
    .option('-p, --port <port>', 'TCP port to listen on (default: first free of 6881-6889; 0 = any)', parsePort)
    .option('--bind <address>', 'address to listen on (default: every address, IPv6 and IPv4)', parseBindAddress)
    .option('--max-peers <n>', 'most peers connected at once', parseCount, 50)
    .option('--max-peers-per-ip <n>', 'most connections one IP address may have at once', parseCount, DEFAULT_MAX_PEERS_PER_IP)
    .option('--peer <host:port>', peerHelp, parsePeer)
    .option('--upload-limit <rate>', 'upload limit in bytes/s (e.g. 500K, 2M)', parseSize)
    .option('--upload-slots <n>', 'peers unchoked at once', parseCount, 4)
    .option(
      '--encryption <mode>',
      'allow: plain BitTorrent first, an encrypted (MSE) handshake with peers that want one; require: RC4-encrypted connections only, both ways',
      parseEncryption,
      'allow',
    )
    .option('--dht', 'also find peers through the DHT (BEP 5); never for private torrents')
    .option('--dht-port <port>', 'UDP port of the DHT node (default: the TCP port\'s number; any free one when taken; implies --dht)', parsePort)
    .option('--dht-bootstrap <host:port>', 'DHT node to start from instead of the public routers (repeatable; implies --dht)', parsePeer)
    .option('--no-pex', 'do not exchange peer lists with peers (BEP 11 PEX; never used for private torrents)')
    .option('--seed-ratio <ratio>', `${goalPrefix}stop once uploaded/size reaches this`, parseRatio)
    .option('--seed-time <duration>', `${goalPrefix}stop after seeding this long (e.g. 30m)`, parseDuration)
    .option('-v, --verbose', 'show each peer connecting and disconnecting, with the reason')
    .option('-q, --quiet', 'print nothing but errors')
    .option('--json', 'print newline-delimited JSON events on stdout');
}

/** The runSession options that follow from the shared options. */
export function sharedRunOptions(opts: SharedOptions) {
  return {
    ...(opts.bind !== undefined ? { host: opts.bind } : {}),
    ...(opts.port !== undefined ? { port: opts.port } : {}),
    maxPeers: opts.maxPeers,
    maxPeersPerIp: opts.maxPeersPerIp,
    uploadSlots: opts.uploadSlots,
    uploadLimit: opts.uploadLimit ?? 0,
    peers: opts.peer ?? [],
    verbose: opts.verbose === true,
    requireEncryption: opts.encryption === 'require',
    dhtConfig: dhtConfigFrom(opts),
    pex: opts.pex !== false,
  };
}

/** Seeding goals (ratio, time) as a RunGoal. */
export function seedGoal(opts: SharedOptions, stopWhenComplete: boolean): RunGoal {
  return {
    stopWhenComplete,
    ...(opts.seedRatio !== undefined ? { seedRatio: opts.seedRatio } : {}),
    ...(opts.seedTime !== undefined ? { seedTimeS: opts.seedTime } : {}),
  };
}
