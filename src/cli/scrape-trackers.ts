/**
 * `tt info --scrape`: ask the trackers of a torrent (all BEP 12 tiers, the first
 * MAX_SCRAPED_TRACKERS, SCRAPE_CONCURRENCY at a time: one socket each, so a torrent
 * listing thousands cannot exhaust file descriptors or memory) how many seeders,
 * leechers and completed downloads they count: BEP 48 over HTTP(S), BEP 15 over UDP.
 * Each tracker gets the same time budget; one tracker's failure is its own result
 * line, never an exception. Unsupported schemes are listed as skipped.
 */
import { errorMessage } from '../core/errors.js';
import type { Metainfo } from '../metainfo/metainfo.js';
import { scrape as defaultScrape, trackerScheme } from '../tracker/client.js';
import type { ScrapeResult, TrackerRequestOptions } from '../tracker/types.js';
import { scrapeUrlFor } from '../tracker/url.js';
import { forEachLimit } from '../storage/for-each-limit.js';
import { sanitizeForTerminal } from './format.js';

/** Budget of each tracker's scrape unless --timeout says otherwise. */
export const DEFAULT_SCRAPE_TIMEOUT_MS = 10_000;
/** Extra wait past the budget before a scrape that has not settled is reported as timed out. */
const SCRAPE_GRACE_MS = 1_000;
/** Trackers asked at once (each holds a socket while it is asked). */
export const SCRAPE_CONCURRENCY = 32;
/** Trackers asked at all, in tier order; the rest are counted as not asked. */
export const MAX_SCRAPED_TRACKERS = 200;

export type ScrapeFn = (url: string, infoHash: Buffer, opts: TrackerRequestOptions) => Promise<ScrapeResult>;

/** One tracker's answer (stable --json fields): counts, or an error; `skipped` when it was not asked. */
export type ScrapeReport =
  | { url: string; seeders: number; leechers: number; completed: number }
  | { url: string; error: string; skipped?: true };

export interface ScrapeAllOptions {
  /** Per-tracker budget (default DEFAULT_SCRAPE_TIMEOUT_MS). */
  timeoutMs?: number;
  /** Transport (tests); defaults to the http/udp client. */
  scrape?: ScrapeFn;
}

/** Every distinct tracker URL, in tier order (the same de-duplication as the Announcer). */
export function trackerUrls(announceList: readonly (readonly string[])[]): string[] {
  const seen = new Set<string>();
  for (const tier of announceList) {
    for (const raw of tier) {
      const url = raw.trim();
      if (url !== '') seen.add(url);
    }
  }
  return [...seen];
}

/** Why a URL will not be scraped, or undefined when it can be. */
function skipReason(url: string): string | undefined {
  const scheme = trackerScheme(url);
  if (scheme === undefined) return 'unsupported tracker URL scheme';
  if (scheme === 'http' && scrapeUrlFor(url) === undefined) return 'no scrape URL (BEP 48: the path does not end in /announce)';
  return undefined;
}

async function scrapeOne(url: string, infoHash: Buffer, timeoutMs: number, scrape: ScrapeFn): Promise<ScrapeReport> {
  const skipped = skipReason(url);
  if (skipped !== undefined) return { url, error: skipped, skipped: true };
  let timer: NodeJS.Timeout | undefined;
  // the transports keep their own budget; this guard only makes the bound unconditional
  const guard = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`tracker did not answer within ${timeoutMs} ms`)), timeoutMs + SCRAPE_GRACE_MS);
  });
  try {
    const r = await Promise.race([scrape(url, infoHash, { timeoutMs }), guard]);
    return { url, seeders: r.complete, leechers: r.incomplete, completed: r.downloaded };
  } catch (err) {
    return { url, error: errorMessage(err) };
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Scrape the first MAX_SCRAPED_TRACKERS trackers (the rest: trackerUrls().length
 * minus the reports' length), SCRAPE_CONCURRENCY at a time; resolves (never
 * rejects) within about timeoutMs per round of them, in tier order.
 */
export async function scrapeAll(meta: Pick<Metainfo, 'announceList' | 'infoHash'>, opts: ScrapeAllOptions = {}): Promise<ScrapeReport[]> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_SCRAPE_TIMEOUT_MS;
  const scrape = opts.scrape ?? defaultScrape;
  const asked = trackerUrls(meta.announceList).slice(0, MAX_SCRAPED_TRACKERS);
  const reports = new Array<ScrapeReport>(asked.length);
  await forEachLimit(asked, SCRAPE_CONCURRENCY, async (url, i) => {
    reports[i] = await scrapeOne(url, meta.infoHash, timeoutMs, scrape);
  });
  return reports;
}

/** Human lines: "url  seeders N  leechers N  completed N", "url  error: ...", "url  skipped: ...", then how many were not asked. */
export function formatScrape(reports: readonly ScrapeReport[], notAsked = 0): string {
  if (reports.length === 0) return 'Scrape:      no trackers\n';
  const s = sanitizeForTerminal;
  const lines = ['Scrape:'];
  for (const r of reports) {
    if ('error' in r) lines.push(`  ${s(r.url)}  ${r.skipped ? 'skipped' : 'error'}: ${s(r.error)}`);
    else lines.push(`  ${s(r.url)}  seeders ${r.seeders}  leechers ${r.leechers}  completed ${r.completed}`);
  }
  if (notAsked > 0) lines.push(`  ... and ${notAsked} more not asked (tt asks the first ${MAX_SCRAPED_TRACKERS} trackers)`);
  return `${lines.join('\n')}\n`;
}
