/**
 * session/web-seeds.ts: blocks become runs contiguous in the torrent's byte
 * space, whatever order they come in; a url-list gives distinct usable web
 * seeds, at most MAX_WEB_SEEDS, and a warning for every unusable one.
 * WebSeeds against a local HTTP server and a real picker: a piece's worth
 * per request, every block stored with its bytes; nothing starts while the
 * host says no; a failed request gives its blocks back and warns; close()
 * aborts what is in flight and nothing is stored after it.
 */
import { createServer, type Server } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { Bitfield } from '../../../src/core/bitfield.js';
import { BLOCK_SIZE, PieceGeometry } from '../../../src/core/geometry.js';
import { parseTorrent } from '../../../src/metainfo/parse-torrent.js';
import { PiecePicker, type BlockRequest } from '../../../src/pieces/picker.js';
import { MAX_WEB_SEEDS, WebSeeds, contiguousRuns, usableWebSeeds, type WebSeedHost } from '../../../src/session/web-seeds.js';
import { SINGLE_DATA, SINGLE_PIECE_LENGTH, rdict, singleInfo, torrent } from '../../helpers/torrent-factory.js';
import { until } from '../../helpers/until.js';

const block = (index: number, begin: number, length = BLOCK_SIZE): BlockRequest => ({ index, begin, length });

describe('contiguousRuns', () => {
  it('joins blocks that follow each other in the byte space, across pieces, in any order', () => {
    const pieceLength = 2 * BLOCK_SIZE;
    const runs = contiguousRuns([block(1, 0), block(0, BLOCK_SIZE), block(3, 0, 100), block(0, 0)], pieceLength);
    expect(runs.map((r) => [r.offset, r.length, r.blocks.map((b) => `${b.index}/${b.begin}`)])).toEqual([
      [0, 3 * BLOCK_SIZE, ['0/0', `0/${BLOCK_SIZE}`, '1/0']],
      [3 * pieceLength, 100, ['3/0']],
    ]);
  });

  it('a gap starts a new run; no blocks, no runs', () => {
    expect(contiguousRuns([block(0, 0), block(0, 2 * BLOCK_SIZE)], 4 * BLOCK_SIZE).map((r) => r.offset)).toEqual([0, 2 * BLOCK_SIZE]);
    expect(contiguousRuns([], BLOCK_SIZE)).toEqual([]);
  });
});

describe('usableWebSeeds', () => {
  it('keeps distinct http(s) URLs up to MAX_WEB_SEEDS and names every unusable one', () => {
    const urls = [
      'http://a.example/x',
      'http://a.example/x#same',
      'ftp://b.example/x',
      ...Array.from({ length: MAX_WEB_SEEDS + 2 }, (_, i) => `https://s${i}.example/`),
      'http://user:secret@c.example/',
    ];
    const { bases, refused } = usableWebSeeds(urls);
    expect(bases.length).toBe(MAX_WEB_SEEDS);
    expect(bases[0]!.href).toBe('http://a.example/x');
    expect(new Set(bases.map((b) => b.href)).size).toBe(MAX_WEB_SEEDS);
    expect(refused).toHaveLength(2); // past the cap, unusable URLs are still reported
    expect(refused[0]).toMatch(/^web seed ftp:\/\/b\.example\/x not used: /);
    expect(refused[1]).not.toContain('secret');
  });
});

describe('WebSeeds', () => {
  const meta = parseTorrent(torrent(rdict(singleInfo())));
  let server: Server | undefined;
  /** Bytes each range request asked for. */
  let asked: number[] = [];
  let seeds: WebSeeds | undefined;
  afterEach(async () => {
    seeds?.close();
    server?.closeAllConnections();
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    server = undefined;
    seeds = undefined;
    asked = [];
  });

  /** Serves SINGLE_DATA by range; `status` other than 206 fails every request, 0 never answers. */
  async function serve(status = 206): Promise<URL> {
    server = createServer((req, res) => {
      if (status === 0) return;
      const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
      if (status !== 206 || !m) return void res.writeHead(status).end();
      asked.push(Number(m[2]) - Number(m[1]) + 1);
      const body = SINGLE_DATA.subarray(Number(m[1]), Number(m[2]) + 1);
      res.writeHead(206, { 'content-range': `bytes ${m[1]}-${m[2]}/${SINGLE_DATA.length}`, 'content-length': body.length }).end(body);
    });
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    const a = server.address();
    return new URL(`http://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}/file`);
  }

  function setUp(base: URL, open = () => true) {
    const geometry = new PieceGeometry(SINGLE_PIECE_LENGTH, SINGLE_DATA.length);
    const picker = new PiecePicker(geometry, new Bitfield(geometry.pieceCount));
    const got = Buffer.alloc(SINGLE_DATA.length);
    const log = { stored: 0, bytes: 0, alive: 0, released: 0, warnings: [] as string[], dropped: [] as string[], runs: [] as number[] };
    const host: WebSeedHost = {
      picker: () => (open() ? picker : undefined),
      worthCopying: () => () => false,
      alive: () => void log.alive++,
      store: (p, ws, b, data, now) => {
        expect(p).toBe(picker);
        expect(now).toBeGreaterThan(0);
        expect(p.received(ws, b.index, b.begin)).toBe('new');
        data.copy(got, b.index * SINGLE_PIECE_LENGTH + b.begin);
        log.stored++;
        log.bytes += data.length;
      },
      released: () => void log.released++,
      dropped: (url, reason) => void log.dropped.push(`${url}: ${reason}`),
      warning: (message) => void log.warnings.push(message),
      guard: (fn) => fn(),
    };
    seeds = new WebSeeds(meta, host);
    seeds.add([base]);
    return { picker, got, log, seeds };
  }

  it('fetches every block, a piece per request, and stores each with its bytes', async () => {
    const { got, log, seeds } = setUp(await serve());
    seeds.pump();
    expect(seeds.busy).toBe(true);
    await until(() => log.bytes === SINGLE_DATA.length && !seeds.busy);
    expect(got.equals(SINGLE_DATA)).toBe(true);
    expect(log.stored).toBe(Math.ceil(SINGLE_DATA.length / BLOCK_SIZE));
    expect(Math.max(...asked)).toBeLessThanOrEqual(SINGLE_PIECE_LENGTH); // a piece's worth at most per request
    expect(log.alive).toBe(asked.length); // each run that arrived (a single file: one range each)
    expect(seeds.bytes).toBe(SINGLE_DATA.length);
    expect(log.warnings).toEqual([]);
  });

  it('starts nothing while the host gives no picker', async () => {
    const { log, seeds } = setUp(await serve(), () => false);
    seeds.pump();
    expect(seeds.busy).toBe(false);
    expect(log.stored).toBe(0);
  });

  it('a failed request gives its blocks back to the picker and warns; the seed stays in use', async () => {
    const { picker, log, seeds } = setUp(await serve(500));
    seeds.pump();
    await until(() => log.released > 0 && !seeds.busy);
    expect(log.stored).toBe(0);
    expect(log.warnings[0]).toMatch(/^web seed http:\/\/127\.0\.0\.1:\d+\/file: .*retrying later$/);
    expect(seeds.active).toBe(true);
    // every block is free again: another source gets them all
    expect(picker.pick({}, 'all', 1000).length).toBe(Math.ceil(SINGLE_DATA.length / BLOCK_SIZE));
  });

  it('banned while its requests are in flight: what they bring is not stored, and their blocks go back to the picker for peers', async () => {
    // the answers wait until the ban has happened
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    server = createServer((req, res) => {
      const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '')!;
      const body = SINGLE_DATA.subarray(Number(m[1]), Number(m[2]) + 1);
      void gate.then(() => res.writeHead(206, { 'content-range': `bytes ${m[1]}-${m[2]}/${SINGLE_DATA.length}`, 'content-length': body.length }).end(body));
    });
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    const a = server.address();
    const base = new URL(`http://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}/file`);
    const { picker, log, seeds } = setUp(base);
    seeds.pump();
    expect(seeds.busy).toBe(true);
    seeds.ban(`web seed ${base.href}`, 'sent corrupt data');
    release();
    await until(() => !seeds.busy);
    expect(log.stored).toBe(0);
    expect(log.released).toBeGreaterThan(0);
    expect(log.warnings).toEqual([]); // dropped once (said by the ban), not 'retrying later'
    expect(log.dropped).toHaveLength(1);
    expect(picker.pick({}, 'all', 1000).length).toBe(Math.ceil(SINGLE_DATA.length / BLOCK_SIZE));
  });

  it('ban() gives up a web seed by its key, once', async () => {
    const base = await serve();
    const { log, seeds } = setUp(base);
    seeds.ban('someone else', 'lied');
    expect(seeds.active).toBe(true);
    seeds.ban(`web seed ${base.href}`, 'sent corrupt data');
    seeds.ban(`web seed ${base.href}`, 'again');
    expect(seeds.active).toBe(false);
    expect(log.dropped).toEqual([`${base.href}: sent corrupt data`]);
    seeds.pump();
    expect(seeds.busy).toBe(false);
  });

  it('close() aborts requests in flight: nothing stored, nothing released, no warning', async () => {
    const { log, seeds } = setUp(await serve(0));
    seeds.pump();
    expect(seeds.busy).toBe(true);
    seeds.close();
    await until(() => !seeds.busy);
    expect([log.stored, log.released, log.warnings.length]).toEqual([0, 0, 0]);
  });
});
