/**
 * `tt seed --json | head -1`: when stdout closes under tt, a running session
 * stops gracefully, saying so (one line on stderr naming standard output,
 * not a signal no one sent; exit 130, no stack trace) and the process does
 * not linger; `tt info | head` exits quietly. stdout that cannot be written
 * at all (here a file opened read-only: EBADF; `> /dev/full` gives ENOSPC)
 * is never a silent success: one line and exit 6, for one-shot commands and
 * running sessions alike.
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { makeFixture, stopAll, trackDir } from '../../helpers/swarm.js';
import { TT_BIN } from './tt-cli.js';

afterAll(stopAll);

/**
 * Run tt to its exit (bounded; killed by PID otherwise) with stdout on `stdout`:
 * 'head' reads the first chunk and closes the pipe (the reader goes away, like
 * `| head -1`); a file descriptor is handed over as it is.
 */
function runTtWithStdout(args: string[], stdout: 'head' | number): Promise<{ code: number | null; stderr: string; firstLine: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [TT_BIN, ...args], { stdio: ['ignore', stdout === 'head' ? 'pipe' : stdout, 'pipe'] });
    let stderr = '';
    let firstLine = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`tt did not exit after its stdout went away; stderr: ${stderr}`));
    }, 15_000);
    child.stderr!.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    child.stdout?.setEncoding('utf8').on('data', (s: string) => {
      if (firstLine) return;
      firstLine = s.split('\n')[0] ?? '';
      child.stdout!.destroy();
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stderr, firstLine });
    });
  });
}

describe('stdout closed by the reader', () => {
  it('tt seed --json stops cleanly with one line, no stack trace', async () => {
    const fx = await makeFixture();
    trackDir(fx.work);
    const r = await runTtWithStdout(['seed', fx.torrentPath, '--dir', fx.seedRoot, '--bind', '127.0.0.1', '--port', '0', '--json'], 'head');
    expect(JSON.parse(r.firstLine).event).toBe('listening');
    expect(r.code).toBe(130);
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^tt: stopped: standard output was closed \(its reader went away\); \d+ of \d+ pieces verified and kept$/);
    expect(r.stderr).not.toMatch(/SIGTERM/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('tt info --json exits quietly', async () => {
    const fx = await makeFixture();
    trackDir(fx.work);
    const r = await runTtWithStdout(['info', fx.torrentPath, '--json', '--files'], 'head');
    expect(r.firstLine).toBe('{');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  });
});

/** Run tt with stdout on a file opened read-only: every write fails (EBADF), as on a full disk. */
async function runWithUnwritableStdout(work: string, args: string[]): Promise<{ code: number | null; stderr: string }> {
  const path = join(work, 'stdout.txt');
  writeFileSync(path, '');
  const fd = openSync(path, 'r');
  try {
    return await runTtWithStdout(args, fd);
  } finally {
    closeSync(fd);
  }
}

describe('stdout that cannot be written', () => {
  it('tt info: exit 6 and one line naming standard output, not a silent 0', async () => {
    const fx = await makeFixture();
    trackDir(fx.work);
    for (const extra of [[], ['--json']]) {
      const r = await runWithUnwritableStdout(fx.work, ['info', fx.torrentPath, ...extra]);
      expect(r.code, r.stderr).toBe(6);
      expect(r.stderr).toBe('tt: cannot write to standard output: EBADF (not open for writing)\n');
    }
  });

  it('tt seed --json: the session stops, exit 6, one line', async () => {
    const fx = await makeFixture();
    trackDir(fx.work);
    const r = await runWithUnwritableStdout(fx.work, ['seed', fx.torrentPath, '--dir', fx.seedRoot, '--bind', '127.0.0.1', '--port', '0', '--json']);
    expect(r.code, r.stderr).toBe(6);
    // the first event fails at once: the check is cut short, or (a small torrent) already done
    expect(r.stderr).toMatch(/^tt: cannot write to standard output: EBADF \(not open for writing\); stopped( while checking its data|; \d+ of \d+ pieces verified and kept)\n$/);
  });
});
