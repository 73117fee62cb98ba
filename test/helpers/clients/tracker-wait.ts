/**
 * Tracker scrape polling for interop tests (BEP 48 scrape over HTTP): wait until a tracker
 * counts N seeders for an info hash, so a leecher started afterwards is told about them.
 * Parses only the small scrape reply of our own loopback opentracker, by pattern.
 */

/** Turn an announce URL into its scrape URL (".../announce" -> ".../scrape"). */
export function scrapeUrlFor(announceUrl: string): string {
  const u = new URL(announceUrl);
  if (!u.pathname.endsWith('/announce')) throw new Error(`cannot scrape ${announceUrl}`);
  u.pathname = u.pathname.replace(/\/announce$/, '/scrape');
  return u.toString();
}

function percentEncodeHex(hex: string): string {
  return hex.replace(/../g, (b) => `%${b}`);
}

export interface ScrapeCounts {
  complete: number;
  incomplete: number;
}

export async function scrape(announceUrl: string, infoHashHex: string): Promise<ScrapeCounts> {
  const res = await fetch(`${scrapeUrlFor(announceUrl)}?info_hash=${percentEncodeHex(infoHashHex)}`, {
    signal: AbortSignal.timeout(5_000),
  });
  const body = Buffer.from(await res.arrayBuffer()).toString('latin1');
  const complete = /8:completei(\d+)e/.exec(body);
  const incomplete = /10:incompletei(\d+)e/.exec(body);
  return { complete: Number(complete?.[1] ?? 0), incomplete: Number(incomplete?.[1] ?? 0) };
}

/** Poll the tracker until it reports at least `seeders` complete peers for the torrent. */
export async function waitForSeeders(announceUrl: string, infoHashHex: string, seeders: number, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: ScrapeCounts = { complete: 0, incomplete: 0 };
  while (Date.now() < deadline) {
    try {
      last = await scrape(announceUrl, infoHashHex);
      if (last.complete >= seeders) return;
    } catch {
      // tracker not up yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`tracker ${announceUrl} saw ${last.complete} of ${seeders} seeders for ${infoHashHex} within ${timeoutMs} ms`);
}
