/**
 * BEP 11 peer exchange (ut_pex): the payload of an extended message whose id
 * the receiver chose for "ut_pex". `added`/`added6` list peers the sender is
 * connected to (compact, with one flags byte each in `added.f`/`added6.f`),
 * `dropped`/`dropped6` the ones it disconnected from since its last message.
 * Encoder and a strict, bounded parser: anything that is not a bencoded
 * dictionary is a ProtocolError; unusable addresses are dropped and long
 * lists cut, so one message can teach us at most MAX_PEX_PEERS peers. Pure.
 */
import { ProtocolError, errorMessage } from '../core/errors.js';
import { compactEntrySize, encodeCompactPeer, isUsablePeerAddress, parseCompactPeers, unmapIpv4, type IpFamily } from '../core/compact-peer.js';
import type { PeerAddress } from '../core/peer-address.js';
import { decode, encode, getBytes, isDict } from '../metainfo/bencode.js';

export const UT_PEX = 'ut_pex';
/** The extended message id we ask peers to use for ut_pex (BEP 10: our choice; ut_metadata has 2). */
export const OUR_UT_PEX_ID = 1;
/** Peers per list in a message we send (BEP 11 asks for at most 50 added and 50 dropped). */
export const MAX_PEX_SEND = 50;
/** Peers taken from one received message (added and added6 together; libtorrent sends up to 100). */
export const MAX_PEX_PEERS = 200;
/** Largest ut_pex payload we parse; libtorrent drops a peer over 500 KiB, real ones are a few KiB. */
export const MAX_PEX_BYTES = 64 * 1024;
const PEX_DECODE_LIMITS = { maxBytes: MAX_PEX_BYTES, maxDepth: 4, maxItems: 64 };

/** BEP 11 flags of an added peer. */
export const PEX_ENCRYPTION = 0x01;
export const PEX_SEED = 0x02;
export const PEX_UTP = 0x04;
export const PEX_HOLEPUNCH = 0x08;
/** We (the sender) reached it with an outgoing connection: it accepts connections. */
export const PEX_REACHABLE = 0x10;

export interface PexPeer extends PeerAddress {
  flags: number;
}

export interface PexMessage {
  added: PexPeer[];
  dropped: PeerAddress[];
}

export function encodePex(msg: { added: readonly PexPeer[]; dropped: readonly PeerAddress[] }): Buffer {
  const dict: Record<string, Buffer> = {};
  for (const family of [4, 6] as const) {
    const suffix = family === 4 ? '' : '6';
    const added: Buffer[] = [];
    const flags: number[] = [];
    for (const p of msg.added) {
      const entry = encodeCompactPeer(p.host, p.port, family);
      if (!entry) continue;
      added.push(entry);
      flags.push(p.flags & 0xff);
    }
    const dropped = msg.dropped.map((p) => encodeCompactPeer(p.host, p.port, family)).filter((b): b is Buffer => b !== undefined);
    if (family === 4 || added.length > 0 || dropped.length > 0) {
      dict[`added${suffix}`] = Buffer.concat(added);
      dict[`added${suffix}.f`] = Buffer.from(flags);
      dict[`dropped${suffix}`] = Buffer.concat(dropped);
    }
  }
  return encode(dict);
}

export function parsePex(payload: Buffer): PexMessage {
  if (payload.length > MAX_PEX_BYTES) throw new ProtocolError(`ut_pex message of ${payload.length} bytes (at most ${MAX_PEX_BYTES})`);
  let root;
  try {
    root = decode(payload, PEX_DECODE_LIMITS);
  } catch (err) {
    throw new ProtocolError(`bad ut_pex message: ${errorMessage(err)}`);
  }
  if (!isDict(root)) throw new ProtocolError('bad ut_pex message: not a dictionary');
  const added: PexPeer[] = [];
  const dropped: PeerAddress[] = [];
  const seen = new Set<string>();
  for (const family of [4, 6] as IpFamily[]) {
    const suffix = family === 4 ? '' : '6';
    const size = compactEntrySize(family);
    const list = getBytes(root, `added${suffix}`) ?? Buffer.alloc(0);
    // flags count only when there is one per peer (as libtorrent reads them)
    const flags = getBytes(root, `added${suffix}.f`);
    const withFlags = flags !== undefined && flags.length === Math.floor(list.length / size);
    parseCompactPeers(list.subarray(0, MAX_PEX_PEERS * size), family).forEach((p, i) => {
      const host = unmapIpv4(p.host);
      const key = `${host}|${p.port}`;
      if (added.length >= MAX_PEX_PEERS || seen.has(key) || !isUsablePeerAddress(host, p.port)) return;
      seen.add(key);
      added.push({ host, port: p.port, flags: withFlags ? flags[i]! : 0 });
    });
    const gone = getBytes(root, `dropped${suffix}`) ?? Buffer.alloc(0);
    for (const p of parseCompactPeers(gone.subarray(0, MAX_PEX_PEERS * size), family)) if (dropped.length < MAX_PEX_PEERS) dropped.push(p);
  }
  return { added, dropped };
}
