#!/usr/bin/env node
// Benchmark (`npm run bench`): tt beside aria2c and libtorrent on loopback, same seeder, same
// torrent (BEP 3 over TCP, tracker = opentracker). Times each leecher with GNU time (wall, CPU,
// peak RSS), verifies the bytes (SHA-1 of the output), prints markdown medians and writes JSON.
// Usage: node scripts/bench.mjs [--size 1GiB] [--runs 3] [--piece-length 256KiB] [--seeders N]
//        [--direction download|seed|both] [--clients tt,aria2c,libtorrent] [--timeout S] [--results PATH]
// --seeders N (N > 1) adds a download section from N seeders at once, libtorrent and aria2c alternating.
import { spawn, execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync } from 'node:fs';
import { chmod, link, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { cpus, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const LT_PY = join(ROOT, 'test/helpers/lt.py');
const TT_BIN = join(ROOT, 'bin/tt.js');
const PYTHON = '/usr/bin/python3';
const GNU_TIME = '/usr/bin/time';
const MIB = 1024 * 1024;
const ALL_CLIENTS = ['tt', 'aria2c', 'libtorrent'];
const KILL_GRACE_MS = 3_000;
const START_TIMEOUT_MS = 30_000;
const DATA_CHUNK_BYTES = 16 * MIB;

// ---------- argument parsing (pure, exported for tests) ----------

const UNITS = { '': 1, b: 1, k: 1024, kb: 1000, kib: 1024, m: MIB, mb: 1e6, mib: MIB, g: 1024 * MIB, gb: 1e9, gib: 1024 * MIB };

/** "1GiB", "16MiB", "256KiB", "1048576" -> bytes. */
export function parseSize(text) {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(String(text));
  const unit = m ? UNITS[m[2].toLowerCase()] : undefined;
  if (!m || unit === undefined) throw new Error(`bad size ${JSON.stringify(text)} (e.g. 1GiB, 16MiB, 256KiB)`);
  const bytes = Math.round(Number(m[1]) * unit);
  if (!Number.isSafeInteger(bytes) || bytes <= 0) throw new Error(`bad size ${JSON.stringify(text)}`);
  return bytes;
}

export function parseArgs(argv) {
  const opts = {
    size: 1024 * MIB,
    runs: 3,
    seeders: 1,
    pieceLength: 256 * 1024,
    direction: 'both',
    clients: [...ALL_CLIENTS],
    timeoutS: undefined,
    results: join(ROOT, 'bench-out/results.json'),
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const [flag, inline] = arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    const value = () => {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new Error(`${flag} needs a value`);
      return v;
    };
    switch (flag) {
      case '--size': opts.size = parseSize(value()); break;
      case '--runs': opts.runs = Number.parseInt(value(), 10); break;
      case '--seeders': opts.seeders = Number.parseInt(value(), 10); break;
      case '--piece-length': opts.pieceLength = parseSize(value()); break;
      case '--direction': opts.direction = value(); break;
      case '--clients': opts.clients = value().split(',').map((s) => s.trim()).filter(Boolean); break;
      case '--timeout': opts.timeoutS = Number(value()); break;
      case '--results': opts.results = resolve(value()); break;
      case '-h': case '--help': opts.help = true; break;
      default: throw new Error(`unknown option ${arg}`);
    }
  }
  if (!Number.isInteger(opts.runs) || opts.runs < 1 || opts.runs > 100) throw new Error('--runs must be 1..100');
  if (!Number.isInteger(opts.seeders) || opts.seeders < 1 || opts.seeders > 32) throw new Error('--seeders must be 1..32');
  if (!['download', 'seed', 'both'].includes(opts.direction)) throw new Error('--direction must be download, seed or both');
  for (const c of opts.clients) if (!ALL_CLIENTS.includes(c)) throw new Error(`unknown client ${c} (known: ${ALL_CLIENTS.join(',')})`);
  if (opts.clients.length === 0) throw new Error('--clients is empty');
  // per-run limit: at least 5 MiB/s, plus startup
  opts.timeoutS ??= Math.ceil(60 + opts.size / (5 * MIB));
  return opts;
}

// ---------- statistics and report (pure, exported for tests) ----------

export function median(values) {
  const v = [...values].sort((a, b) => a - b);
  if (v.length === 0) return undefined;
  const mid = Math.floor(v.length / 2);
  return v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

const fmt = (n, digits = 2) => (n === undefined || Number.isNaN(n) ? 'n/a' : n.toFixed(digits));

/** Median [min-max] of one field over the successful runs. */
function spread(runs, field, digits = 2) {
  const values = runs.map((r) => r[field]).filter((v) => typeof v === 'number');
  if (values.length === 0) return 'n/a';
  return `${fmt(median(values), digits)} [${fmt(Math.min(...values), digits)}-${fmt(Math.max(...values), digits)}]`;
}

/** One markdown row per label, in the given order; failed or missing clients are shown, not dropped. */
export function summaryTable(results, labels, labelHeader) {
  const lines = [
    `| ${labelHeader} | status | wall s, median [min-max] | MiB/s | CPU s (user+sys) | peak RSS MiB | bytes verified |`,
    '| --- | --- | --- | --- | --- | --- | --- |',
  ];
  for (const label of labels) {
    const all = results.filter((r) => r.label === label);
    const ok = all.filter((r) => r.ok);
    const failed = all.filter((r) => !r.ok);
    let status;
    if (all.length === 0) status = 'NOT RUN';
    else if (failed.length === 0) status = `ok ${ok.length}/${all.length}`;
    else status = `FAILED ${failed.length}/${all.length}: ${oneLine(failed[0].error ?? 'unknown error')}`;
    const verified = all.length > 0 && failed.length === 0 ? 'yes' : ok.length > 0 ? `${ok.length}/${all.length}` : 'no';
    lines.push(
      `| ${label} | ${status} | ${spread(ok, 'wallS')} | ${spread(ok, 'mibPerS', 1)} | ${spread(ok, 'cpuS')} | ${spread(ok, 'maxRssMiB', 0)} | ${verified} |`,
    );
  }
  return lines.join('\n');
}

function oneLine(s) {
  return String(s).replace(/[\x00-\x1f|]+/g, ' ').trim().slice(0, 160);
}

/** GNU time -f '%e %U %S %M' output -> numbers (the last such line). */
/**
 * The order of run `k`: `list[k]` first, the others after it in their usual order. Over
 * list.length runs every client goes first once and follows different clients, whereas a
 * rotation keeps who follows whom. It matters on this project's VM: a client that writes right
 * after a libtorrent leecher pays up to 1.8 s more kernel time for its first touch of page-cache
 * memory (libtorrent's freed mmap pages come back cold); a fixed order, or a rotation of it, put
 * tt right after libtorrent in most runs.
 */
export function runOrder(list, k) {
  if (list.length === 0) return [];
  const i = ((k % list.length) + list.length) % list.length;
  return [list[i], ...list.slice(0, i), ...list.slice(i + 1)];
}

export function parseGnuTime(text) {
  const lines = String(text).trim().split('\n').reverse();
  for (const line of lines) {
    const m = /^(\d+(?:\.\d+)?) (\d+(?:\.\d+)?) (\d+(?:\.\d+)?) (\d+)$/.exec(line.trim());
    if (m) return { wallS: Number(m[1]), cpuS: Number(m[2]) + Number(m[3]), maxRssMiB: Number(m[4]) / 1024 };
  }
  return undefined;
}

// ---------- processes ----------

const children = new Set();

function killGroup(child, signal) {
  try {
    process.kill(-child.pid, signal); // our own detached group, by its id
  } catch {
    try {
      process.kill(child.pid, signal);
    } catch {
      // gone
    }
  }
}

/** Spawn in its own process group; collects output; `exited` resolves with {code, signal}. */
function start(command, args, opts = {}) {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true, ...opts });
  const proc = { child, out: '', lines: [], exited: undefined, done: false };
  children.add(proc);
  const onData = (d) => {
    proc.out = (proc.out + d.toString()).slice(-20_000);
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  proc.exited = new Promise((res) => {
    child.on('error', (err) => {
      proc.out += `\n${err.message}`;
      proc.done = true;
      children.delete(proc);
      res({ code: -1, signal: null });
    });
    child.on('close', (code, signal) => {
      proc.done = true;
      children.delete(proc);
      res({ code, signal });
    });
  });
  return proc;
}

async function stop(proc) {
  if (proc.done) return proc.exited;
  killGroup(proc.child, 'SIGTERM');
  const t = setTimeout(() => killGroup(proc.child, 'SIGKILL'), KILL_GRACE_MS);
  const s = await proc.exited;
  clearTimeout(t);
  return s;
}

async function stopAll() {
  await Promise.all([...children].map(stop));
}

/** Wait until a stdout JSON line with event === name appears. */
async function waitForEvent(proc, name, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    for (const line of proc.out.split('\n')) {
      if (!line.startsWith('{')) continue;
      try {
        const e = JSON.parse(line);
        if (e.event === name) return e;
      } catch {
        // partial line
      }
    }
    if (proc.done) throw new Error(`exited before "${name}": ${oneLine(proc.out.slice(-600))}`);
    await sleep(50);
  }
  throw new Error(`no "${name}" within ${timeoutMs} ms: ${oneLine(proc.out.slice(-600))}`);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function freePort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
  });
}

function tryExec(cmd, args) {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 10_000 }).trim();
  } catch {
    return undefined;
  }
}

// ---------- fixtures: data, torrent, tracker ----------

async function writeRandomFile(path, size) {
  const hash = createHash('sha1');
  const out = createWriteStream(path);
  for (let written = 0; written < size; ) {
    const n = Math.min(DATA_CHUNK_BYTES, size - written);
    const chunk = randomBytes(n);
    hash.update(chunk);
    if (!out.write(chunk)) await new Promise((r) => out.once('drain', r));
    written += n;
  }
  await new Promise((res, rej) => out.end((err) => (err ? rej(err) : res())));
  return hash.digest('hex');
}

function syncDisks() {
  try {
    execFileSync('sync', [], { stdio: 'ignore', timeout: 120_000 });
  } catch {
    // no sync(1): runs are noisier, not wrong
  }
}

async function sha1File(path) {
  const hash = createHash('sha1');
  for await (const chunk of createReadStream(path)) hash.update(chunk);
  return hash.digest('hex');
}

async function ltCreate(path, out, pieceLength, tracker) {
  const args = [LT_PY, 'create', path, out, '--piece-length', String(pieceLength)];
  if (tracker) args.push('--tracker', tracker);
  const p = start(PYTHON, args);
  const e = await waitForEvent(p, 'created', 600_000);
  await p.exited;
  return e.infoHash;
}

/** opentracker (Debian build: whitelist-only) on 127.0.0.1:port, TCP and UDP. */
async function startTracker(dir, infoHash) {
  await writeFile(join(dir, 'whitelist'), `${infoHash}\n`, { mode: 0o644 });
  await chmod(dir, 0o755); // opentracker drops to nobody before reading the whitelist
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort();
    const proc = start('opentracker', ['-i', '127.0.0.1', '-p', String(port), '-P', String(port), '-w', join(dir, 'whitelist')], { cwd: dir });
    const url = `http://127.0.0.1:${port}/announce`;
    for (let i = 0; i < 50 && !proc.done; i++) {
      try {
        const res = await fetch(`http://127.0.0.1:${port}/scrape?info_hash=${infoHash.replace(/../g, '%$&')}`, { signal: AbortSignal.timeout(1_000) });
        if (res.ok) return { proc, url, port };
      } catch {
        // not up yet
      }
      await sleep(100);
    }
    await stop(proc);
  }
  throw new Error('opentracker did not start');
}

async function scrapeComplete(trackerUrl, infoHash) {
  const res = await fetch(`${trackerUrl.replace(/\/announce$/, '/scrape')}?info_hash=${infoHash.replace(/../g, '%$&')}`, { signal: AbortSignal.timeout(5_000) });
  const m = /8:completei(\d+)e/.exec(Buffer.from(await res.arrayBuffer()).toString('latin1'));
  return Number(m?.[1] ?? 0);
}

async function waitForSeeders(trackerUrl, infoHash, n, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if ((await scrapeComplete(trackerUrl, infoHash).catch(() => 0)) >= n) return;
    await sleep(200);
  }
  throw new Error(`tracker never saw ${n} seeder(s)`);
}

// ---------- leechers ----------

function aria2Args(torrent, out, port, timeoutS) {
  return [
    '--no-conf=true', '--enable-dht=false', '--enable-dht6=false', '--bt-enable-lpd=false', '--enable-peer-exchange=false',
    '--interface=127.0.0.1', '--disable-ipv6=true', `--listen-port=${port}`, '--file-allocation=none', '--summary-interval=0',
    '--console-log-level=warn', '--seed-time=0', `--stop=${timeoutS}`, `--dir=${out}`, torrent,
  ];
}

/**
 * `n` seeders of `torrent` at once, libtorrent and aria2c alternating, all reading `seedDir`'s
 * file (aria2c through a hard link in a folder of its own, so control files never clash).
 */
async function startSwarmSeeders(n, torrent, seedDir, fileName, dir, trackerUrl, infoHash) {
  for (let k = 0; k < n; k++) {
    if (k % 2 === 0) {
      const p = start(PYTHON, [LT_PY, 'seed', torrent, seedDir, '--port', '0']);
      await waitForEvent(p, 'seeding', 600_000);
    } else {
      const own = join(dir, `seed-aria2-${k}`);
      await mkdir(own, { recursive: true });
      await link(join(seedDir, fileName), join(own, fileName));
      start('aria2c', [
        '--no-conf=true', '--enable-dht=false', '--enable-dht6=false', '--bt-enable-lpd=false', '--enable-peer-exchange=false',
        '--interface=127.0.0.1', '--disable-ipv6=true', `--listen-port=${await freePort()}`, '--file-allocation=none',
        '--summary-interval=0', '--console-log-level=warn', '--auto-save-interval=0', '--check-integrity=false',
        '--bt-seed-unverified=true', '--seed-ratio=0.0', `--dir=${own}`, torrent,
      ]);
    }
  }
  await waitForSeeders(trackerUrl, infoHash, n, 120_000);
}

/** argv for a leecher of `client` downloading `torrent` into `out`. */
async function leecherCommand(client, torrent, out, timeoutS) {
  switch (client) {
    case 'tt':
      // every seeder is 127.0.0.1: as many connections to it as lt.py allows libtorrent (allow_multiple_connections_per_ip)
      return [TT_BIN, 'download', torrent, '--out', out, '--port', '0', '--bind', '127.0.0.1', '--quiet', '--max-peers-per-ip', '64'];
    case 'aria2c':
      return ['aria2c', ...aria2Args(torrent, out, await freePort(), timeoutS)];
    case 'libtorrent':
      return [PYTHON, LT_PY, 'leech', torrent, out, '--port', '0', '--timeout', String(timeoutS)];
    default:
      throw new Error(`unknown client ${client}`);
  }
}

/** One timed, verified download. Never throws: failures are results with ok=false. */
async function timedDownload({ client, label, run, torrent, dir, fileName, sourceSha1, size, timeoutS, haveGnuTime }) {
  const out = join(dir, `out-${label.replace(/\W+/g, '_')}-${run}`);
  await rm(out, { recursive: true, force: true });
  await mkdir(out, { recursive: true });
  const result = { client, label, run, ok: false };
  try {
    const argv = await leecherCommand(client, torrent, out, timeoutS);
    const timeFile = join(dir, `time-${run}.txt`);
    const cmd = haveGnuTime ? [GNU_TIME, '-f', '%e %U %S %M', '-o', timeFile, ...argv] : argv;
    // every run starts with no dirty pages waiting for writeback (the source file, an earlier
    // leecher's output): otherwise whichever client runs next pays for the kernel's flush
    syncDisks();
    const t0 = process.hrtime.bigint();
    const proc = start(cmd[0], cmd.slice(1), { cwd: dir });
    const timer = setTimeout(() => void stop(proc), timeoutS * 1000);
    const status = await proc.exited;
    clearTimeout(timer);
    const wallS = Number(process.hrtime.bigint() - t0) / 1e9;
    if (status.code !== 0) throw new Error(`exit ${status.code ?? status.signal}${wallS >= timeoutS ? ` (timeout ${timeoutS}s)` : ''}: ${proc.out.trim().split('\n').slice(-3).join(' ')}`);
    const timing = haveGnuTime ? parseGnuTime(await readFile(timeFile, 'utf8').catch(() => '')) : undefined;
    const outFile = join(out, fileName);
    if (!existsSync(outFile)) throw new Error(`no output file ${fileName}`);
    if ((await sha1File(outFile)) !== sourceSha1) throw new Error('bytes differ from the source');
    Object.assign(result, {
      ok: true,
      wallS: timing?.wallS ?? wallS,
      mibPerS: size / MIB / (timing?.wallS ?? wallS),
      cpuS: timing?.cpuS,
      maxRssMiB: timing?.maxRssMiB,
    });
  } catch (err) {
    result.error = err.message;
  } finally {
    await rm(out, { recursive: true, force: true });
  }
  return result;
}

// ---------- main ----------

function clientVersions() {
  return {
    tt: JSON.parse(tryExec(process.execPath, ['-e', `process.stdout.write(JSON.stringify(require(${JSON.stringify(join(ROOT, 'package.json'))}).version))`]) ?? '"?"'),
    node: process.version,
    libtorrent: tryExec(PYTHON, ['-c', 'import libtorrent; print(libtorrent.__version__)']) ?? 'MISSING',
    aria2c: tryExec('aria2c', ['--version'])?.split('\n')[0] ?? 'MISSING',
    opentracker: tryExec('dpkg-query', ['-W', '-f', '${Version}', 'opentracker']) ?? (tryExec('sh', ['-c', 'command -v opentracker']) ? 'present' : 'MISSING'),
  };
}

function missingReason(client, versions) {
  if (client === 'tt' && !existsSync(join(ROOT, 'dist/cli/main.js'))) return 'MISSING: dist/ not built (npm run build)';
  if (client === 'aria2c' && versions.aria2c === 'MISSING') return 'MISSING: aria2c not installed';
  if (client === 'libtorrent' && versions.libtorrent === 'MISSING') return 'MISSING: python3-libtorrent not importable from /usr/bin/python3';
  return undefined;
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  if (opts.help) {
    console.log('usage: node scripts/bench.mjs [--size 1GiB] [--runs 3] [--piece-length 256KiB] [--direction download|seed|both] [--clients tt,aria2c,libtorrent] [--timeout S] [--results PATH]');
    return 0;
  }
  const versions = clientVersions();
  if (versions.libtorrent === 'MISSING') throw new Error('python3-libtorrent is required for the seeder (run scripts/install-clients.sh)');
  if (versions.opentracker === 'MISSING') throw new Error('opentracker is required (run scripts/install-clients.sh)');
  const haveGnuTime = existsSync(GNU_TIME);
  const machine = { cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length, platform: `${process.platform} ${process.arch}`, ...versions, gnuTime: haveGnuTime };

  const dir = await mkdtemp(join(tmpdir(), 'tt-bench-'));
  await chmod(dir, 0o755); // opentracker (as nobody) must reach its whitelist below it
  const stopEverything = async () => {
    await stopAll();
    await rm(dir, { recursive: true, force: true });
  };
  process.once('SIGINT', () => void stopEverything().then(() => process.exit(130)));
  process.once('SIGTERM', () => void stopEverything().then(() => process.exit(143)));
  const download = [];
  const seed = [];
  try {
    const fileName = 'bench.bin';
    const seedDir = join(dir, 'seed');
    await mkdir(seedDir);
    log(`writing ${opts.size} random bytes`);
    const sourceSha1 = await writeRandomFile(join(seedDir, fileName), opts.size);
    const infoHash = await ltCreate(join(seedDir, fileName), join(dir, 'bare.torrent'), opts.pieceLength);
    const trackerDirA = await mkdtemp(join(dir, 'tracker-a-'));
    const trackerA = await startTracker(trackerDirA, infoHash);
    const torrentA = join(dir, 'via-lt-seeder.torrent');
    await ltCreate(join(seedDir, fileName), torrentA, opts.pieceLength, trackerA.url);
    log('starting the libtorrent seeder');
    const ltSeeder = start(PYTHON, [LT_PY, 'seed', torrentA, seedDir, '--port', '0']);
    await waitForEvent(ltSeeder, 'seeding', 600_000);
    await waitForSeeders(trackerA.url, infoHash, 1);
    const common = { dir, fileName, sourceSha1, size: opts.size, timeoutS: opts.timeoutS, haveGnuTime };

    if (opts.direction !== 'seed') {
      for (let run = 1; run <= opts.runs; run++) {
        for (const client of runOrder(opts.clients, run - 1)) {
          const missing = missingReason(client, versions);
          const r = missing
            ? { client, label: client, run, ok: false, error: missing }
            : await timedDownload({ ...common, client, label: client, run, torrent: torrentA });
          log(`download run ${run} ${client}: ${r.ok ? `${r.wallS.toFixed(2)} s` : `FAILED ${r.error}`}`);
          download.push(r);
        }
      }
    }

    const many = [];
    if (opts.direction !== 'seed' && opts.seeders > 1) {
      // the same data behind a tracker of its own, served by opts.seeders seeders at once
      const trackerDirC = await mkdtemp(join(dir, 'tracker-c-'));
      const trackerC = await startTracker(trackerDirC, infoHash);
      const torrentC = join(dir, 'via-many-seeders.torrent');
      await ltCreate(join(seedDir, fileName), torrentC, opts.pieceLength, trackerC.url);
      log(`starting ${opts.seeders} seeders (libtorrent and aria2c alternating)`);
      await startSwarmSeeders(opts.seeders, torrentC, seedDir, fileName, dir, trackerC.url, infoHash);
      for (let run = 1; run <= opts.runs; run++) {
        for (const client of runOrder(opts.clients, run - 1)) {
          const label = `${client} <- ${opts.seeders} seeders`;
          const missing = missingReason(client, versions);
          const r = missing
            ? { client, label, run, ok: false, error: missing }
            : await timedDownload({ ...common, client, label, run, torrent: torrentC });
          log(`download run ${run} ${label}: ${r.ok ? `${r.wallS.toFixed(2)} s` : `FAILED ${r.error}`}`);
          many.push(r);
        }
      }
      download.push(...many.map((r) => ({ ...r, seeders: opts.seeders })));
    }

    if (opts.direction !== 'download') {
      // tt seeds the same data on its own tracker, so each leecher can only find one seeder
      const trackerDirB = await mkdtemp(join(dir, 'tracker-b-'));
      const trackerB = await startTracker(trackerDirB, infoHash);
      const torrentB = join(dir, 'via-tt-seeder.torrent');
      await ltCreate(join(seedDir, fileName), torrentB, opts.pieceLength, trackerB.url);
      let ttSeedError = missingReason('tt', versions);
      if (!ttSeedError) {
        const ttSeeder = start(TT_BIN, ['seed', torrentB, '--dir', seedDir, '--port', '0', '--bind', '127.0.0.1', '--json']);
        try {
          await waitForEvent(ttSeeder, 'checked', 600_000);
          await waitForSeeders(trackerB.url, infoHash, 1);
        } catch (err) {
          ttSeedError = `tt seed did not start: ${err.message}`;
        }
      }
      const leechers = opts.clients.filter((c) => c !== 'tt');
      if (leechers.length === 0) leechers.push('libtorrent');
      for (let run = 1; run <= opts.runs; run++) {
        for (const client of leechers) {
          for (const [seeder, torrent] of runOrder([['libtorrent', torrentA], ['tt', torrentB]], run - 1)) {
            const label = `${client} <- ${seeder} seeder`;
            const missing = missingReason(client, versions) ?? (seeder === 'tt' ? ttSeedError : undefined);
            const r = missing
              ? { client, seeder, label, run, ok: false, error: missing }
              : { ...(await timedDownload({ ...common, client, label, run, torrent })), seeder };
            log(`seed run ${run} ${label}: ${r.ok ? `${r.wallS.toFixed(2)} s` : `FAILED ${r.error}`}`);
            seed.push(r);
          }
        }
      }
    }
  } finally {
    await stopEverything();
  }

  const report = [
    `## tt benchmark: ${fmt(opts.size / MIB, 0)} MiB, piece length ${opts.pieceLength / 1024} KiB, ${opts.runs} run(s), loopback`,
    '',
    `Machine: ${machine.cpu}, ${machine.cores} cores, ${machine.platform}, Node ${machine.node}; libtorrent ${machine.libtorrent}, ${machine.aria2c}, opentracker ${machine.opentracker}, tt ${machine.tt}${haveGnuTime ? '' : ' (GNU time missing: no CPU/RSS)'}`,
  ];
  const single = download.filter((r) => r.seeders === undefined);
  const swarm = download.filter((r) => r.seeders !== undefined);
  if (single.length > 0) {
    report.push('', '### Download (leecher timed, one libtorrent seeder)', '', summaryTable(single, opts.clients, 'leecher'));
  }
  if (swarm.length > 0) {
    const lt = Math.ceil(opts.seeders / 2);
    const labels = [...new Set(swarm.map((r) => r.label))];
    report.push('', `### Download from ${opts.seeders} seeders at once (${lt} libtorrent + ${opts.seeders - lt} aria2c)`, '', summaryTable(swarm, labels, 'leecher'));
    for (const client of opts.clients) {
      const one = median(single.filter((r) => r.ok && r.client === client).map((r) => r.mibPerS));
      const manyRate = median(swarm.filter((r) => r.ok && r.client === client).map((r) => r.mibPerS));
      if (one && manyRate) report.push(`\n${client}: throughput from ${opts.seeders} seeders / from one = ${fmt(manyRate / one)}`);
    }
  }
  if (seed.length > 0) {
    const labels = [...new Set(seed.map((r) => r.label))];
    report.push('', '### Seed (leecher timed against each seeder in turn)', '', summaryTable(seed, labels, 'leecher <- seeder'));
    for (const client of [...new Set(seed.map((r) => r.client))]) {
      const lt = median(seed.filter((r) => r.ok && r.client === client && r.seeder === 'libtorrent').map((r) => r.wallS));
      const tt = median(seed.filter((r) => r.ok && r.client === client && r.seeder === 'tt').map((r) => r.wallS));
      report.push(`\n${client} leecher: tt seeder time / libtorrent seeder time = ${lt && tt ? fmt(tt / lt) : 'n/a'}`);
    }
  }
  console.log(`\n${report.join('\n')}\n`);
  await mkdir(dirname(opts.results), { recursive: true });
  await writeFile(opts.results, `${JSON.stringify({ machine, params: { ...opts }, download, seed }, null, 2)}\n`);
  console.log(`raw results: ${opts.results}`);
  return [...download, ...seed].every((r) => r.ok) ? 0 : 1;
}

function log(msg) {
  process.stderr.write(`bench: ${msg}\n`);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main().then(
    (code) => process.exit(code),
    async (err) => {
      process.stderr.write(`bench: ${err.message}\n`);
      await stopAll();
      process.exit(1);
    },
  );
}
