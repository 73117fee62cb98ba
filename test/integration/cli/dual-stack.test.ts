/**
 * With no --bind, tt listens on every address, IPv6 and IPv4 on one
 * dual-stack socket, as libtorrent, Transmission and aria2c do: an IPv4 and
 * an IPv6 peer both download from `tt seed`, and the IPv4 one is named by its
 * IPv4 address (not ::ffff:a.b.c.d). Listening on every address is only done
 * inside a network namespace of the test's own (`unshare -n`: a loopback
 * nothing can reach or leave), which needs root on Linux, as CI has.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt } from '../../helpers/build.js';
import { TT_BIN } from './tt-cli.js';

const canUnshare = process.platform === 'linux' && process.getuid?.() === 0 && spawnSync('unshare', ['-n', 'true']).status === 0;
const tmp = mkdtempSync(join(tmpdir(), 'tt-dual-'));

beforeAll(ensureBuilt, 130_000);
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe.skipIf(!canUnshare)('no --bind: every address, IPv4 and IPv6 (in a network namespace of its own)', () => {
  it('an IPv4 and an IPv6 peer both download from tt seed; the IPv4 one is named as IPv4', () => {
    const data = join(tmp, 'data');
    mkdirSync(data);
    const bytes = randomBytes(3 * 1024 * 1024 + 777);
    writeFileSync(join(data, 'file.bin'), bytes);
    const torrent = join(tmp, 't.torrent');
    expect(spawnSync(process.execPath, [TT_BIN, 'create', join(data, 'file.bin'), '-o', torrent, '--piece-length', '256K', '--no-date'], { encoding: 'utf8' }).status).toBe(0);
    const script = `
      set -u
      ip link set lo up
      node "$TT" seed "$T" --dir "$DATA" --port 36881 -v > "$W/seed.log" 2>&1 &
      seed=$!
      for i in $(seq 1 200); do grep -q '^seeding' "$W/seed.log" && break; sleep 0.1; done
      timeout 60 node "$TT" download "$T" --out "$W/out4" --peer 127.0.0.1:36881 --no-trackers -q; echo "v4=$?"
      timeout 60 node "$TT" download "$T" --out "$W/out6" --peer '[::1]:36881' --no-trackers -q; echo "v6=$?"
      kill -TERM $seed; wait $seed; echo "seed=$?"`;
    const run = spawnSync('unshare', ['-n', 'bash', '-c', script], {
      encoding: 'utf8',
      timeout: 150_000,
      env: { ...process.env, TT: TT_BIN, T: torrent, DATA: data, W: tmp },
    });
    expect(run.stdout, run.stderr).toContain('v4=0');
    expect(run.stdout).toContain('v6=0');
    expect(run.stdout).toContain('seed=0'); // SIGTERM ends seeding: the summary and exit 0
    expect(readFileSync(join(tmp, 'out4', 'file.bin')).equals(bytes)).toBe(true);
    expect(readFileSync(join(tmp, 'out6', 'file.bin')).equals(bytes)).toBe(true);
    const log = readFileSync(join(tmp, 'seed.log'), 'utf8');
    expect(log).toMatch(/peer 127\.0\.0\.1:\d+/);
    expect(log).toMatch(/peer \[::1\]:\d+/);
    expect(log).not.toContain('::ffff:');
  }, 160_000);
});
