/**
 * BEP 19 web seeds against a real HTTP server written by others: BusyBox
 * httpd (Debian's busybox, Range support built in) on 127.0.0.1 serving the
 * data folder. tt downloads a torrent made by `tt create -w` from the web
 * seed alone (no tracker, no peer), and a libtorrent-made hybrid torrent
 * (BEP 47 padding files) from a libtorrent seeder and the web seed together.
 * Bytes compared with the source, strictly (no stray files).
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { decode, encode, isDict } from '../../src/metainfo/bencode.js';
import { parseTorrent } from '../../src/metainfo/parse-torrent.js';
import { assertSameTree, writeMultiFileData } from '../helpers/clients/data.js';
import { ltCreate, startLtSeeder } from '../helpers/clients/libtorrent.js';
import { freePort, killAll, startProcess } from '../helpers/clients/process.js';
import { expectOneErrorLine, runTt } from '../integration/cli/tt-cli.js';

const PIECE_LENGTH = 32 * 1024;
const TIMEOUT_MS = 60_000;
const LOOPBACK = ['--bind', '127.0.0.1', '--port', '0'];

let dir: string;
let source: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tt-interop-webseed-'));
  // a name with a space: the URL path is percent-encoded, busybox decodes it
  source = await writeMultiFileData(dir, 'web seed');
}, 60_000);

afterEach(async () => {
  await killAll();
});

afterAll(async () => {
  await killAll();
  await rm(dir, { recursive: true, force: true });
});

/** BusyBox httpd in the foreground on 127.0.0.1, serving `home`; resolves once it accepts connections. */
async function busyboxHttpd(home: string): Promise<string> {
  const port = await freePort();
  startProcess('busybox httpd', 'busybox', ['httpd', '-f', '-p', `127.0.0.1:${port}`, '-h', home]);
  const url = `http://127.0.0.1:${port}/`;
  for (let i = 0; i < 100; i++) {
    const ok = await fetch(url, { method: 'HEAD' }).then(
      () => true,
      () => false,
    );
    if (ok) return url;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('busybox httpd did not start');
}

describe('web seeds against BusyBox httpd', () => {
  it('tt downloads a torrent from its web seed alone (tt create -w), every byte', async () => {
    const url = await busyboxHttpd(dir);
    const torrent = join(dir, 'ws.torrent');
    const created = await runTt(['create', source, '-o', torrent, '--piece-length', String(PIECE_LENGTH), '-w', url, '--json']);
    expect(created.exit?.code, created.describe()).toBe(0);
    const meta = parseTorrent(await readFile(torrent));
    expect(meta.urlList).toEqual([url]);
    const out = await mkdtemp(join(dir, 'out-'));
    const p = await runTt(['download', torrent, '--out', out, ...LOOPBACK, '--json', '--peer-timeout', '20'], TIMEOUT_MS);
    expect(p.exit?.code, p.describe()).toBe(0);
    const done = p.events.find((e) => e.event === 'done')!;
    expect(done).toMatchObject({ complete: true, webSeedBytes: meta.totalLength });
    await assertSameTree(source, join(out, 'web seed'), { strict: true });
    // without its web seed the torrent has no source at all: refused at once, one line
    const off = await runTt(['download', torrent, '--out', join(dir, 'off'), ...LOOPBACK, '--quiet', '--no-web-seeds'], TIMEOUT_MS);
    expect(off.exit?.code, off.describe()).toBe(5);
    expectOneErrorLine(off, /no way to find peers/);
  }, TIMEOUT_MS + 30_000);

  it('tt downloads a libtorrent hybrid torrent (padding files) from a libtorrent seeder and the web seed together', async () => {
    const url = await busyboxHttpd(dir);
    const made = join(dir, 'hybrid.torrent');
    await ltCreate(source, made, { pieceLength: PIECE_LENGTH, hybrid: true });
    // add the web seed outside the info dictionary: the info hash (and libtorrent's seeding) is unchanged
    const root = decode(await readFile(made));
    if (!isDict(root)) throw new Error('not a dictionary');
    root.set('url-list', Buffer.from(url));
    const torrent = join(dir, 'hybrid-ws.torrent');
    await writeFile(torrent, encode(root as never));
    const meta = parseTorrent(await readFile(torrent));
    expect(meta.infoHashHex).toBe(parseTorrent(await readFile(made)).infoHashHex);
    expect(meta.files.some((f) => f.padding)).toBe(true);
    const seeder = await startLtSeeder({ torrent: made, dataDir: dir, uploadLimit: 256 * 1024 });
    const out = await mkdtemp(join(dir, 'out-'));
    const p = await runTt(['download', torrent, '--out', out, ...LOOPBACK, '--json', '--no-trackers', '--peer', `127.0.0.1:${seeder.port}`], TIMEOUT_MS);
    expect(p.exit?.code, p.describe()).toBe(0);
    const done = p.events.find((e) => e.event === 'done')!;
    // both sources race (a loopback web seed is fast); the web seed never sends padding: it is not on its disk
    const realBytes = meta.files.filter((f) => !f.padding).reduce((n, f) => n + f.length, 0);
    expect(done.webSeedBytes as number).toBeGreaterThan(0);
    expect(done.webSeedBytes as number).toBeLessThanOrEqual(realBytes);
    await assertSameTree(source, join(out, 'web seed'), { strict: true });
  }, TIMEOUT_MS + 30_000);
});
