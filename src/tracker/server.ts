/**
 * An embedded BitTorrent tracker (HTTP BEP 3/23/7/48 and UDP BEP 15 on the same
 * port number) for `tt demo`, tests and private swarms. It is exposed to peers, so
 * its own inputs are parsed strictly and bounded; a bad request gets a failure
 * reason (or a BEP 15 error), never a crash. Peers expire after two intervals
 * (at least MIN_PEER_LIFETIME_S: swarm-table.ts).
 */
import { createHmac, randomBytes } from 'node:crypto';
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { isIP, type AddressInfo } from 'node:net';
import { encode, type BEncodable } from '../metainfo/bencode.js';
import { encodeCompactPeer, unmapIpv4, type IpFamily } from './compact.js';
import {
  decodeUdpRequest,
  encodeAnnounceReply,
  encodeConnectReply,
  encodeErrorReply,
  encodeScrapeReply,
  MAX_SCRAPE_HASHES,
} from './udp-codec.js';
import { whenStarted } from './start.js';
import { Refusal, SwarmTable, type AnnounceInput, type PeerRecord } from './swarm-table.js';
import { parseQueryBytes } from './url.js';
import type { AnnounceEvent } from './types.js';

export interface TrackerServer {
  /** http://HOST:PORT/announce */
  httpUrl: string;
  /** udp://HOST:PORT */
  udpUrl: string;
  port: number;
  close(): Promise<void>;
  swarmSize(infoHash: Buffer): { seeders: number; leechers: number };
}

export interface TrackerServerOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0 (a free port, the same for TCP and UDP). */
  port?: number;
  /** Announce interval told to clients, seconds (default 120). */
  interval?: number;
  /** When given, only these info hashes are tracked. */
  allowList?: Buffer[];
}

export { MAX_RECORDS_PER_HOST, MAX_SWARMS_PER_HOST } from './swarm-table.js';
export const SERVER_DEFAULT_INTERVAL_S = 120;
const DEFAULT_NUMWANT = 50;
const MAX_NUMWANT = 200;
const MAX_URL_CHARS = 4096;
/** Connection ids are valid for the minute they were issued in and the next one. */
const CONNECTION_ID_WINDOW_MS = 60_000;
const SWEEP_EVERY_MS = 30_000;
const PORT_ATTEMPTS = 20;

function compactPeers(peers: readonly PeerRecord[], family: IpFamily): Buffer {
  const parts: Buffer[] = [];
  for (const p of peers) {
    const b = encodeCompactPeer(p.host, p.port, family);
    if (b) parts.push(b);
  }
  return Buffer.concat(parts);
}

// ---------------------------------------------------------------- HTTP front end

function one(q: Map<string, Buffer[]>, name: string): Buffer | undefined {
  const v = q.get(name);
  if (v === undefined) return undefined;
  if (v.length !== 1) throw new Refusal(`${name} given more than once`);
  return v[0];
}

/** A decimal count of at most 16 digits (safe integer). */
function parseCount(q: Map<string, Buffer[]>, name: string, required: boolean): number | undefined {
  const raw = one(q, name);
  if (raw === undefined) {
    if (required) throw new Refusal(`missing ${name}`);
    return undefined;
  }
  const s = raw.toString('latin1');
  if (!/^\d{1,16}$/.test(s)) throw new Refusal(`invalid ${name}`);
  return Number(s);
}

function parseHttpAnnounce(q: Map<string, Buffer[]>, remote: string): AnnounceInput {
  const infoHash = one(q, 'info_hash');
  if (infoHash === undefined || infoHash.length !== 20) throw new Refusal('info_hash must be 20 bytes');
  const peerId = one(q, 'peer_id');
  if (peerId === undefined || peerId.length !== 20) throw new Refusal('peer_id must be 20 bytes');
  const port = parseCount(q, 'port', true)!;
  if (port < 1 || port > 65535) throw new Refusal('invalid port');
  parseCount(q, 'uploaded', false);
  parseCount(q, 'downloaded', false);
  const left = parseCount(q, 'left', true)!;
  const eventRaw = one(q, 'event')?.toString('latin1') ?? '';
  if (!['', 'started', 'completed', 'stopped', 'empty'].includes(eventRaw)) throw new Refusal('invalid event');
  const event = eventRaw === '' || eventRaw === 'empty' ? undefined : (eventRaw as AnnounceEvent);
  const numwant = Math.min(MAX_NUMWANT, parseCount(q, 'numwant', false) ?? DEFAULT_NUMWANT);
  return { infoHash, peerId, host: remote, port, left, event, numwant };
}

function sendBencoded(res: ServerResponse, value: BEncodable): void {
  const body = encode(value);
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length });
  res.end(body);
}

// ---------------------------------------------------------------- the server

export async function startTrackerServer(opts: TrackerServerOptions = {}): Promise<TrackerServer> {
  const host = opts.host ?? '127.0.0.1';
  const intervalS = Math.max(1, Math.trunc(opts.interval ?? SERVER_DEFAULT_INTERVAL_S));
  const table = new SwarmTable({ intervalS, allowList: opts.allowList });
  const secret = randomBytes(32);
  const family: IpFamily = isIP(host) === 6 ? 6 : 4;

  // bound to the client's address only: clients may use a new source port per request
  const connectionId = (addr: string, windowIndex: number): Buffer =>
    createHmac('sha256', secret).update(`${windowIndex}|${addr}`).digest().subarray(0, 8);
  const validConnectionId = (id: Buffer, addr: string): boolean => {
    const w = Math.floor(Date.now() / CONNECTION_ID_WINDOW_MS);
    return id.equals(connectionId(addr, w)) || id.equals(connectionId(addr, w - 1));
  };

  const onHttp = (req: IncomingMessage, res: ServerResponse): void => {
    try {
      const url = req.url ?? '';
      if (req.method !== 'GET' || url.length > MAX_URL_CHARS) {
        res.writeHead(url.length > MAX_URL_CHARS ? 414 : 405).end();
        return;
      }
      const qAt = url.indexOf('?');
      const path = qAt === -1 ? url : url.slice(0, qAt);
      const q = parseQueryBytes(qAt === -1 ? '' : url.slice(qAt + 1), MAX_SCRAPE_HASHES + 16);
      if (path !== '/announce' && path !== '/scrape') {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
        return;
      }
      try {
        if (q === undefined) throw new Refusal('malformed query string');
        const remote = unmapIpv4(req.socket.remoteAddress ?? '');
        if (path === '/announce') {
          const compact = one(q, 'compact')?.toString('latin1') !== '0';
          const noPeerId = one(q, 'no_peer_id')?.toString('latin1') === '1';
          const r = table.announce(parseHttpAnnounce(q, remote));
          const reply: Record<string, BEncodable> = { interval: intervalS, 'min interval': Math.min(intervalS, 30), complete: r.seeders, incomplete: r.leechers };
          if (compact) {
            reply['peers'] = compactPeers(r.peers, 4);
            const v6 = compactPeers(r.peers, 6);
            if (v6.length > 0) reply['peers6'] = v6;
          } else {
            reply['peers'] = r.peers.map((p) => (noPeerId ? { ip: p.host, port: p.port } : { ip: p.host, port: p.port, 'peer id': p.peerId }));
          }
          sendBencoded(res, reply);
        } else {
          const hashes = q.get('info_hash') ?? [];
          if (hashes.length === 0 || hashes.length > MAX_SCRAPE_HASHES) throw new Refusal('scrape needs 1 to 74 info_hash values');
          const files = new Map<string, BEncodable>();
          for (const h of hashes) {
            if (h.length !== 20) throw new Refusal('info_hash must be 20 bytes');
            if (table.isAllowed(h)) files.set(h.toString('latin1'), { ...table.scrape(h) });
          }
          sendBencoded(res, { files });
        }
      } catch (err) {
        if (!(err instanceof Refusal)) throw err;
        sendBencoded(res, { 'failure reason': err.message });
      }
    } catch {
      if (!res.headersSent) res.writeHead(500);
      res.end();
    }
  };

  const onUdp = (udp: Socket, msg: Buffer, rinfo: RemoteInfo): void => {
    const req = decodeUdpRequest(msg);
    const reply = (b: Buffer): void => udp.send(b, rinfo.port, rinfo.address, () => {});
    if (req === undefined) {
      if (msg.length >= 16) reply(encodeErrorReply(msg.readUInt32BE(12), 'malformed request'));
      return;
    }
    const remote = unmapIpv4(rinfo.address);
    if (req.action === 'connect') {
      reply(encodeConnectReply(req.transactionId, connectionId(remote, Math.floor(Date.now() / CONNECTION_ID_WINDOW_MS))));
      return;
    }
    if (!validConnectionId(req.connectionId, remote)) {
      reply(encodeErrorReply(req.transactionId, 'invalid connection id'));
      return;
    }
    try {
      if (req.action === 'announce') {
        if (req.port === 0) throw new Refusal('invalid port');
        const numwant = req.numwant < 0 ? DEFAULT_NUMWANT : Math.min(MAX_NUMWANT, req.numwant);
        const r = table.announce({ infoHash: req.infoHash, peerId: req.peerId, host: remote, port: req.port, left: req.left, event: req.event, numwant });
        reply(encodeAnnounceReply(req.transactionId, { interval: intervalS, leechers: r.leechers, seeders: r.seeders, compactPeers: compactPeers(r.peers, family) }));
      } else {
        reply(encodeScrapeReply(req.transactionId, req.infoHashes.map((h) => (table.isAllowed(h) ? table.scrape(h) : { complete: 0, incomplete: 0, downloaded: 0 }))));
      }
    } catch (err) {
      reply(encodeErrorReply(req.transactionId, err instanceof Refusal ? err.message : 'internal error'));
    }
  };

  const { http, udp, port } = await bindBoth(host, opts.port ?? 0, family, onHttp, onUdp);
  const sweeper = setInterval(() => table.sweep(), SWEEP_EVERY_MS);
  sweeper.unref();
  const urlHost = family === 6 ? `[${host}]` : host;
  let closing: Promise<void> | undefined;
  return {
    httpUrl: `http://${urlHost}:${port}/announce`,
    udpUrl: `udp://${urlHost}:${port}`,
    port,
    swarmSize: (infoHash) => table.size(infoHash),
    close: () => {
      closing ??= (async () => {
        clearInterval(sweeper);
        http.closeAllConnections();
        await Promise.all([new Promise<void>((r) => http.close(() => r())), new Promise<void>((r) => udp.close(() => r()))]);
      })();
      return closing;
    },
  };
}

/** Listen on TCP and bind UDP to the same port number; with port 0, retry until both fit. */
async function bindBoth(
  host: string,
  port: number,
  family: IpFamily,
  onHttp: (req: IncomingMessage, res: ServerResponse) => void,
  onUdp: (udp: Socket, msg: Buffer, rinfo: RemoteInfo) => void,
): Promise<{ http: Server; udp: Socket; port: number }> {
  let lastError: unknown;
  for (let attempt = 0; attempt < (port === 0 ? PORT_ATTEMPTS : 1); attempt++) {
    const http = createServer({ requestTimeout: 10_000, headersTimeout: 10_000, maxHeaderSize: 8192 }, onHttp);
    http.on('clientError', (_err, socket) => socket.destroy());
    http.maxHeadersCount = 50;
    try {
      await whenStarted(http, (done) => http.listen(port, host, done));
    } catch (err) {
      lastError = err;
      continue;
    }
    const bound = (http.address() as AddressInfo).port;
    const udp = createSocket({ type: family === 6 ? 'udp6' : 'udp4' });
    try {
      await whenStarted(udp, (done) => udp.bind(bound, host, done));
    } catch (err) {
      lastError = err;
      try {
        udp.close();
      } catch {
        // already closed by the failed bind
      }
      await new Promise<void>((r) => http.close(() => r()));
      continue;
    }
    udp.on('error', () => {}); // a send failure to one client must not crash the tracker
    udp.on('message', (msg, rinfo) => {
      try {
        onUdp(udp, msg, rinfo);
      } catch {
        // never let one packet take the tracker down
      }
    });
    return { http, udp, port: bound };
  }
  throw lastError instanceof Error ? lastError : new Error('cannot bind tracker');
}
