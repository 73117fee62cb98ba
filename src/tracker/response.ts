/**
 * Parsing of HTTP tracker replies (BEP 3 dictionary peers, BEP 23 compact peers,
 * BEP 7 `peers6`, BEP 48 scrape). Untrusted bytes in, validated values out; every
 * problem becomes a TrackerError. Pure: no I/O.
 */
import { TrackerError, errorMessage } from '../core/errors.js';
import type { PeerAddress } from '../core/peer-address.js';
import { decode, getBytes, getDict, getInt, isBytes, isDict, type BDict, type BValue } from '../metainfo/bencode.js';
import { filterPeers, parseCompactPeers } from './compact.js';
import {
  TrackerRefusedError,
  clampInterval,
  clampMinInterval,
  sanitizeTrackerText,
  type AnnounceResult,
  type ScrapeResult,
} from './types.js';

/** Bounds for decoding a reply that is already capped at 1 MiB by the transport. */
const REPLY_LIMITS = { maxDepth: 8, maxItems: 200_000, maxBytes: 1024 * 1024 } as const;

function decodeReply(body: Uint8Array): BDict {
  let value;
  try {
    value = decode(body, REPLY_LIMITS);
  } catch (err) {
    throw new TrackerError(`tracker sent an invalid reply: ${errorMessage(err)}`, { cause: err });
  }
  if (!isDict(value)) throw new TrackerError('tracker reply is not a dictionary');
  const failure = value.get('failure reason');
  if (failure !== undefined) {
    const reason = isBytes(failure) ? sanitizeTrackerText(failure.toString('utf8')) : '';
    throw new TrackerRefusedError(reason === '' ? '(no reason given)' : reason);
  }
  return value;
}

/** A non-negative safe integer field, or undefined when absent or not one. */
function countField(d: BDict, key: string): number | undefined {
  const v = getInt(d, key);
  return v !== undefined && v >= 0 ? v : undefined;
}

/** BEP 3 dictionary form: a list of {ip, port, peer id?}; malformed entries are skipped. */
function parseDictPeers(list: readonly BValue[]): PeerAddress[] {
  const peers: PeerAddress[] = [];
  for (const d of list) {
    if (!isDict(d)) continue;
    const ip = getBytes(d, 'ip');
    const port = getInt(d, 'port');
    if (ip === undefined || port === undefined || ip.length > 64) continue;
    const peerId = getBytes(d, 'peer id');
    const host = ip.toString('latin1');
    peers.push(peerId !== undefined && peerId.length === 20 ? { host, port, peerId } : { host, port });
  }
  return peers;
}

export function parseAnnounceResponse(body: Uint8Array): AnnounceResult {
  const d = decodeReply(body);
  // concat, not push(...list): a 1 MiB compact list is ~175,000 peers, too many call arguments (RangeError)
  let peers: PeerAddress[] = [];
  const rawPeers = d.get('peers');
  if (isBytes(rawPeers)) peers = parseCompactPeers(rawPeers, 4);
  else if (Array.isArray(rawPeers)) peers = parseDictPeers(rawPeers);
  else if (rawPeers !== undefined) throw new TrackerError('tracker reply: peers is neither a string nor a list');
  const peers6 = getBytes(d, 'peers6');
  if (peers6 !== undefined) peers = peers.concat(parseCompactPeers(peers6, 6));
  if (rawPeers === undefined && peers6 === undefined) throw new TrackerError('tracker reply has no peers');

  const interval = clampInterval(getInt(d, 'interval'));
  const result: AnnounceResult = { peers: filterPeers(peers), interval };
  const minInterval = getInt(d, 'min interval');
  if (minInterval !== undefined) result.minInterval = clampMinInterval(minInterval, interval);
  const warning = getBytes(d, 'warning message');
  if (warning !== undefined) {
    const text = sanitizeTrackerText(warning.toString('utf8'));
    if (text !== '') result.warning = text;
  }
  const trackerId = getBytes(d, 'tracker id');
  if (trackerId !== undefined && trackerId.length > 0 && trackerId.length <= 256) result.trackerId = trackerId.toString('latin1');
  const complete = countField(d, 'complete');
  if (complete !== undefined) result.complete = complete;
  const incomplete = countField(d, 'incomplete');
  if (incomplete !== undefined) result.incomplete = incomplete;
  return result;
}

/** BEP 48: `files` maps the raw 20-byte info hash to {complete, incomplete, downloaded}. */
export function parseScrapeResponse(body: Uint8Array, infoHash: Buffer): ScrapeResult {
  const d = decodeReply(body);
  const files = getDict(d, 'files');
  if (files === undefined) throw new TrackerError('scrape reply has no files dictionary');
  const entry = files.get(infoHash.toString('latin1'));
  if (entry === undefined) throw new TrackerError('scrape reply does not mention this torrent');
  if (!isDict(entry)) throw new TrackerError('scrape reply entry is not a dictionary');
  return {
    complete: countField(entry, 'complete') ?? 0,
    incomplete: countField(entry, 'incomplete') ?? 0,
    downloaded: countField(entry, 'downloaded') ?? 0,
  };
}
