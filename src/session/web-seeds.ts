/**
 * A download's BEP 19 web seeds together: which of the torrent's url-list
 * are used (usableWebSeeds), and the loop that takes blocks from the picker
 * for each ready seed (a piece's worth per request), fetches them as byte
 * runs (webseed/fetch.ts) and hands them to the session as blocks, giving
 * them back to the picker when a request fails. One seed's backoff and
 * agents are web-seed.ts; whether requests may start, what counts as worth
 * copying in endgame and where blocks go are the session's (WebSeedHost).
 */
import { BLOCK_SIZE } from '../core/geometry.js';
import { errorMessage } from '../core/errors.js';
import type { Metainfo } from '../metainfo/metainfo.js';
import type { BlockRequest, PeerToken, PiecePicker } from '../pieces/picker.js';
import { fetchRange } from '../webseed/fetch.js';
import { checkWebSeed } from '../webseed/url.js';
import { displayUrl } from '../core/display-url.js';
import { WebSeed } from './web-seed.js';

/** Web seeds used from one torrent's url-list (the rest are ignored). */
export const MAX_WEB_SEEDS = 8;

/** A run of blocks contiguous in the torrent's byte space: [offset, offset + length). */
export interface BlockRun {
  offset: number;
  length: number;
  blocks: BlockRequest[];
}

/**
 * The web seeds to use from a url-list: distinct, at most MAX_WEB_SEEDS,
 * and a warning for each URL that cannot be used (all of them, however many
 * are used).
 */
export function usableWebSeeds(urlList: readonly string[]): { bases: URL[]; refused: string[] } {
  const bases: URL[] = [];
  const refused: string[] = [];
  const seen = new Set<string>();
  for (const url of urlList) {
    const checked = checkWebSeed(url);
    if ('problem' in checked) {
      refused.push(`web seed ${displayUrl(url)} not used: ${checked.problem}`);
      continue;
    }
    if (seen.has(checked.base.href) || seen.size >= MAX_WEB_SEEDS) continue;
    seen.add(checked.base.href);
    bases.push(checked.base);
  }
  return { bases, refused };
}

/** Blocks grouped into runs contiguous in the torrent's byte space (one HTTP range each per file). */
export function contiguousRuns(blocks: readonly BlockRequest[], pieceLength: number): BlockRun[] {
  const sorted = [...blocks].sort((a, b) => a.index - b.index || a.begin - b.begin);
  const runs: BlockRun[] = [];
  for (const b of sorted) {
    const offset = b.index * pieceLength + b.begin;
    const last = runs[runs.length - 1];
    if (last && last.offset + last.length === offset) {
      last.length += b.length;
      last.blocks.push(b);
    } else runs.push({ offset, length: b.length, blocks: [b] });
  }
  return runs;
}

/** What the web seeds need of their session. */
export interface WebSeedHost {
  /** The picker while new requests may start; undefined when none may (not started, stopped, done, disk backlog). */
  picker(): PiecePicker | undefined;
  /** Endgame: whether a block outstanding at `requesters` may be asked of one more source (as for peers). */
  worthCopying(): (requesters: readonly PeerToken[]) => boolean;
  /** Bytes arrived from a web seed at `now`: it counts as a connected peer. */
  alive(now: number): void;
  /** One block `ws` delivered (taken from `picker`), to be stored as a peer's would be. */
  store(picker: PiecePicker, ws: WebSeed, block: BlockRequest, data: Buffer, now: number): void;
  /** A failed request's blocks are back in the picker: peers may take them. */
  released(): void;
  /** `url` was given up for `reason` (web-seed-dropped). */
  dropped(url: string, reason: string): void;
  warning(message: string): void;
  /** Runs `fn` from a callback; an exception must not escape (TorrentSession #guard). */
  guard(fn: () => void): void;
}

export class WebSeeds {
  readonly #meta: Metainfo;
  readonly #host: WebSeedHost;
  readonly #seeds: WebSeed[] = [];
  /** Stops every request when the session stops (close). */
  readonly #abort = new AbortController();

  constructor(meta: Metainfo, host: WebSeedHost) {
    this.#meta = meta;
    this.#host = host;
  }

  /** Use a web seed at each of `bases` (usableWebSeeds). */
  add(bases: readonly URL[]): void {
    for (const base of bases) this.#seeds.push(new WebSeed(base));
  }

  get size(): number {
    return this.#seeds.length;
  }

  /** Payload bytes the web seeds delivered. */
  get bytes(): number {
    return this.#seeds.reduce((n, w) => n + w.bytes, 0);
  }

  /** Some web seed is still in use (not given up). */
  get active(): boolean {
    return this.#seeds.some((w) => w.disabled === undefined);
  }

  /** Some request is in flight. */
  get busy(): boolean {
    return this.#seeds.some((w) => w.inFlight > 0);
  }

  /** Starts web seed requests while there is something to fetch, room in flight and no disk backlog. */
  pump(): void {
    const picker = this.#host.picker();
    if (!picker) return;
    const now = Date.now();
    const blocksPerPiece = Math.max(1, Math.ceil(this.#meta.pieceLength / BLOCK_SIZE));
    for (const ws of this.#seeds) {
      while (ws.ready(now)) {
        // a piece's worth at a time; in endgame only copies of blocks that slow peers hold (as for peers)
        const blocks = picker.pick(ws, 'all', blocksPerPiece, this.#host.worthCopying());
        if (blocks.length === 0) break;
        ws.inFlight++;
        void this.#fetch(picker, ws, blocks).finally(() => {
          ws.inFlight--;
          this.#host.guard(() => this.pump());
        });
      }
    }
  }

  /** The smart ban found the sender `key` guilty: a web seed of that name is given up. */
  ban(key: string, reason: string): void {
    for (const ws of this.#seeds) if (ws.key === key) this.#drop(ws, reason);
  }

  /** The session stops: requests are aborted and keep-alive sockets closed. */
  close(): void {
    this.#abort.abort();
    for (const ws of this.#seeds) ws.close();
  }

  get #closed(): boolean {
    return this.#abort.signal.aborted;
  }

  async #fetch(picker: PiecePicker, ws: WebSeed, blocks: BlockRequest[]): Promise<void> {
    const pending = new Set(blocks);
    try {
      for (const run of contiguousRuns(blocks, this.#meta.pieceLength)) {
        const data = Buffer.alloc(run.length); // zeros where a BEP 47 padding file lies
        let fetched = 0;
        // one file at a time: each request's 30 s "no progress" clock starts when it is sent, not while it
        // waits for a socket behind the others (a piece may cross hundreds of small files)
        for (const r of ws.ranges(this.#meta, run.offset, run.length)) {
          const part = await fetchRange(r, { agents: ws.agents, signal: this.#abort.signal });
          part.copy(data, r.torrentOffset - run.offset);
          fetched += part.length;
        }
        if (this.#closed) return;
        // given up meanwhile (the smart ban found it guilty): its bytes are not stored, its blocks go back
        if (ws.disabled !== undefined) throw new Error(`dropped: ${ws.disabled}`);
        const now = Date.now();
        this.#host.alive(now);
        ws.succeeded(fetched);
        for (const b of run.blocks) {
          pending.delete(b);
          const at = b.index * this.#meta.pieceLength + b.begin - run.offset;
          this.#host.guard(() => this.#host.store(picker, ws, b, data.subarray(at, at + b.length), now));
        }
      }
    } catch (err) {
      if (this.#closed) return;
      for (const b of pending) picker.release(ws, b.index, b.begin);
      if (ws.disabled !== undefined) {
        this.#host.released(); // dropped while this was in flight (said then): peers take its blocks
        return;
      }
      if (ws.failed(Date.now(), errorMessage(err))) this.#host.dropped(ws.base.href, ws.disabled!);
      else this.#host.warning(`${ws.key}: ${errorMessage(err)}; retrying later`);
      this.#host.released(); // its blocks are free for peers now
    }
  }

  #drop(ws: WebSeed, reason: string): void {
    if (ws.disabled !== undefined) return;
    ws.disable(reason);
    this.#host.dropped(ws.base.href, reason);
  }
}
