/**
 * A private swarm from the command line alone, as a team pushing a build
 * would run it: `tt tracker`, `tt create -t <its URL>`, `tt seed`, then
 * `tt download` finding the seed through the tracker; bytes compared. Also the
 * tracker's --allow list (an untracked torrent is refused, and the download
 * says so with exit 8), a port already in use (exit 2), and Ctrl-C (exit 130).
 */
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseTorrent } from '../../../src/metainfo/parse-torrent.js';
import { patternBytes } from '../../helpers/torrent-factory.js';
import { trackDir, stopAll } from '../../helpers/swarm.js';
import { LOOPBACK, expectOneErrorLine, killAllTt, runTt, startTt, type TtProcess } from './tt-cli.js';

afterEach(async () => {
  await killAllTt();
  await stopAll();
});

async function buildFolder(): Promise<{ work: string; folder: string; files: Record<string, Buffer> }> {
  const work = await mkdtemp(join(tmpdir(), 'tt-private-'));
  trackDir(work);
  const folder = join(work, 'build');
  const files: Record<string, Buffer> = { 'app.bin': patternBytes(300_001, 7), 'lib/a.so': patternBytes(65_536, 8), 'VERSION': Buffer.from('42\n') };
  for (const [rel, data] of Object.entries(files)) {
    await mkdir(join(folder, rel, '..'), { recursive: true });
    await writeFile(join(folder, rel), data);
  }
  return { work, folder, files };
}

async function startTracker(extra: readonly string[] = []): Promise<{ proc: TtProcess; url: string }> {
  const proc = startTt(['tracker', ...LOOPBACK, '--json', ...extra]);
  const listening = await proc.waitForEvent('listening', 15_000);
  return { proc, url: String(listening.httpUrl) };
}

describe('a private swarm with tt alone', () => {
  it('tracker, create, seed, download: the download finds the seed through the tracker and the bytes match', async () => {
    const { work, folder, files } = await buildFolder();
    const tracker = await startTracker();
    const torrent = join(work, 'build.torrent');
    const created = await runTt(['create', folder, '-o', torrent, '-t', tracker.url, '--private']);
    expect(created.exit?.code, created.describe()).toBe(0);
    expect(parseTorrent(await readFile(torrent)).private).toBe(true);
    const seed = startTt(['seed', torrent, '--dir', work, ...LOOPBACK, '--json']);
    await seed.waitForEvent('started', 15_000);
    const out = join(work, 'out');
    // no --peer: the tracker is the only way to the seed
    const dl = await runTt(['download', torrent, '--out', out, ...LOOPBACK, '--json'], 30_000);
    expect(dl.exit?.code, dl.describe()).toBe(0);
    for (const [rel, data] of Object.entries(files)) expect((await readFile(join(out, 'build', rel))).equals(data), rel).toBe(true);

    tracker.proc.signal('SIGINT');
    const exit = await tracker.proc.waitForExit(10_000);
    expect(exit.code, tracker.proc.describe()).toBe(130);
    expectOneErrorLine(tracker.proc, /tracker stopped by SIGINT/);
  });

  it('--allow: a torrent not on the list is refused; the download ends with exit 8 naming the refusal', async () => {
    const { work, folder } = await buildFolder();
    const other = join(work, 'other.torrent');
    const otherFolder = join(work, 'other');
    await mkdir(otherFolder);
    await writeFile(join(otherFolder, 'x'), 'x');
    expect((await runTt(['create', otherFolder, '-o', other])).exit?.code).toBe(0);
    const tracker = await startTracker(['--allow', other]);
    const torrent = join(work, 'build.torrent');
    expect((await runTt(['create', folder, '-o', torrent, '-t', tracker.url])).exit?.code).toBe(0);
    const dl = await runTt(['download', torrent, '--out', join(work, 'out'), ...LOOPBACK, '--json'], 30_000);
    expect(dl.exit?.code, dl.describe()).toBe(8);
    expectOneErrorLine(dl, /every tracker failed/);
  });

  it('a port in use -> USAGE (2), one line', async () => {
    const tracker = await startTracker();
    const port = new URL(tracker.url).port;
    const second = await runTt(['tracker', '--bind', '127.0.0.1', '--port', port], 15_000);
    expect(second.exit?.code, second.describe()).toBe(2);
    expectOneErrorLine(second, /in use/);
  });
});
