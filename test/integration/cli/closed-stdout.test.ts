/**
 * `tt seed --json | head -1`: when stdout closes under tt, a running session
 * stops as on SIGTERM (one line on stderr, exit 130, no stack trace) and the
 * process does not linger; `tt info | head` exits quietly.
 */
import { spawn } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { makeFixture, stopAll, trackDir } from '../../helpers/swarm.js';
import { TT_BIN } from './tt-cli.js';

afterAll(stopAll);

function runUntilFirstLine(args: string[]): Promise<{ code: number | null; stderr: string; firstLine: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [TT_BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    let firstLine = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`tt did not exit after its stdout closed; stderr: ${stderr}`));
    }, 15_000);
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    child.stdout.setEncoding('utf8').on('data', (s: string) => {
      if (firstLine) return;
      firstLine = s.split('\n')[0] ?? '';
      child.stdout.destroy(); // the reader goes away, like `| head -1`
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
    const r = await runUntilFirstLine(['seed', fx.torrentPath, '--dir', fx.seedRoot, '--bind', '127.0.0.1', '--port', '0', '--json']);
    expect(JSON.parse(r.firstLine).event).toBe('listening');
    expect(r.code).toBe(130);
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^tt: interrupted/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('tt info --json exits quietly', async () => {
    const fx = await makeFixture();
    trackDir(fx.work);
    const r = await runUntilFirstLine(['info', fx.torrentPath, '--json', '--files']);
    expect(r.firstLine).toBe('{');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  });
});
