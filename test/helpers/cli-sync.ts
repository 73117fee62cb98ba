/**
 * Run the BUILT cli (bin/tt.js -> dist/) to completion and judge its error
 * output: exactly one `tt: ` line on stderr, no stack frames, nothing a
 * terminal would interpret. For commands that end by themselves (info, create).
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { expect } from 'vitest';

export const ROOT = join(import.meta.dirname, '../..');
// eslint-disable-next-line no-control-regex
export const TERMINAL_UNSAFE = /[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\u200e\u200f]/;

export interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

export function tt(args: string[], input?: Buffer, cwd = ROOT): Run {
  const r = spawnSync(process.execPath, [join(ROOT, 'bin/tt.js'), ...args], {
    cwd,
    input: input ?? Buffer.alloc(0),
    timeout: 30_000,
    maxBuffer: 64 * 1024 * 1024,
  });
  return { status: r.status, stdout: r.stdout.toString('utf8'), stderr: r.stderr.toString('utf8') };
}

/** An error run: the exit code, and exactly one `tt: ` line on stderr with no stack frames. */
export function expectOneLineError(r: Run, exitCode: number): string {
  expect(r.status).toBe(exitCode);
  expect(r.stdout).toBe('');
  const lines = r.stderr.split('\n');
  expect(lines.length).toBe(2);
  expect(lines[1]).toBe('');
  expect(lines[0]).toMatch(/^tt: /);
  expect(r.stderr).not.toMatch(/\n\s+at /);
  expect(r.stderr).not.toMatch(TERMINAL_UNSAFE);
  return lines[0]!;
}
