/**
 * One entry point per tracker operation, dispatching on the URL scheme:
 * http/https (BEP 3, 48) or udp (BEP 15). Anything else (wss:// WebTorrent trackers,
 * typos) is reported as unsupported so callers can skip it.
 */
import { TrackerError } from '../core/errors.js';
import { announceHttp, scrapeHttp } from './http.js';
import { announceUdp, scrapeUdp } from './udp.js';
import type { AnnounceParams, AnnounceResult, ScrapeResult, TrackerRequestOptions } from './types.js';

export type TrackerScheme = 'http' | 'udp';

/** 'http' or 'udp' for a URL we can announce to, undefined otherwise. */
export function trackerScheme(url: string): TrackerScheme | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return undefined;
  }
  // port 0 cannot be dialed: node would dial the scheme's default port, one the torrent did not name
  if (parsed.port === '0') return undefined;
  if (parsed.protocol === 'http:' || parsed.protocol === 'https:') return 'http';
  if (parsed.protocol === 'udp:') return 'udp';
  return undefined;
}

export function announce(url: string, p: AnnounceParams, opts: TrackerRequestOptions = {}): Promise<AnnounceResult> {
  switch (trackerScheme(url)) {
    case 'http':
      return announceHttp(url, p, opts);
    case 'udp':
      return announceUdp(url, p, opts);
    default:
      return Promise.reject(new TrackerError(`unsupported tracker URL: ${url}`));
  }
}

export function scrape(url: string, infoHash: Buffer, opts: TrackerRequestOptions = {}): Promise<ScrapeResult> {
  switch (trackerScheme(url)) {
    case 'http':
      return scrapeHttp(url, infoHash, opts);
    case 'udp':
      return scrapeUdp(url, infoHash, opts);
    default:
      return Promise.reject(new TrackerError(`unsupported tracker URL: ${url}`));
  }
}
