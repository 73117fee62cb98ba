/**
 * scripts/bench.mjs end to end at a tiny size: it prints both markdown tables with a row for
 * every client, verifies the bytes of each download and writes the raw JSON. No speed checks.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, expect, it } from 'vitest';

const BENCH = fileURLToPath(new URL('../../scripts/bench.mjs', import.meta.url));
const dirs: string[] = [];

afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

function row(stdout: string, label: string): string {
  const line = stdout.split('\n').find((l) => l.startsWith(`| ${label} |`));
  if (!line) throw new Error(`no table row for "${label}" in:\n${stdout}`);
  return line;
}

it('bench --size 8MiB --runs 1 --seeders 2 prints a verified row per client and writes results.json', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'tt-bench-smoke-'));
  dirs.push(dir);
  const results = join(dir, 'results.json');
  // bench exits 1 when any run failed; the table and JSON are written either way
  const { stdout } = await promisify(execFile)(
    process.execPath,
    [BENCH, '--size', '8MiB', '--runs', '1', '--seeders', '2', '--timeout', '40', '--results', results],
    { timeout: 240_000, maxBuffer: 4 << 20 },
  ).catch((err: { stdout?: string; stderr?: string }) => ({ stdout: err.stdout ?? '', stderr: err.stderr ?? '' }));

  expect(stdout).toMatch(/## tt benchmark: 8 MiB/);
  expect(stdout).toMatch(/Machine: .+ cores, .*Node v\d+/);
  // download direction: every client timed against the libtorrent seeder, bytes verified
  for (const client of ['tt', 'aria2c', 'libtorrent']) expect(row(stdout, client)).toMatch(/\| ok 1\/1 \|.*\| yes \|$/);
  // many seeders: one libtorrent and one aria2c seeder at once, every client verified
  expect(stdout).toMatch(/### Download from 2 seeders at once \(1 libtorrent \+ 1 aria2c\)/);
  for (const client of ['tt', 'aria2c', 'libtorrent']) expect(row(stdout, `${client} <- 2 seeders`)).toMatch(/\| ok 1\/1 \|.*\| yes \|$/);
  expect(stdout).toMatch(/tt: throughput from 2 seeders \/ from one = \d/);
  // seed direction: each leecher against each seeder has a row; the libtorrent seeder rows prove the script
  for (const leecher of ['aria2c', 'libtorrent']) {
    expect(row(stdout, `${leecher} <- libtorrent seeder`)).toMatch(/\| ok 1\/1 \|.*\| yes \|$/);
    expect(row(stdout, `${leecher} <- tt seeder`)).toMatch(/\| (ok 1\/1|FAILED 1\/1: .+) \|/);
  }

  const json = JSON.parse(await readFile(results, 'utf8')) as {
    download: { client: string; ok: boolean; wallS?: number }[];
    seed: { label: string }[];
    machine: { cores: number };
  };
  expect(json.download.map((r) => r.client)).toEqual(['tt', 'aria2c', 'libtorrent', 'tt', 'aria2c', 'libtorrent']);
  for (const r of json.download) expect(r.ok && (r.wallS ?? 0) > 0).toBe(true);
  expect(json.seed).toHaveLength(4);
  expect(json.machine.cores).toBeGreaterThan(0);
}, 300_000);
