/**
 * The built `tt` (bin/tt.js over dist/) as a child process for CLI and safety
 * tests: full stdout/stderr kept apart, NDJSON events parsed, waits with
 * timeouts, and every process killed by its PID in cleanup (killAllTt).
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';
import { killAll, startProcess, type ExitStatus, type ManagedProcess } from '../../helpers/clients/process.js';

export const TT_BIN = fileURLToPath(new URL('../../../bin/tt.js', import.meta.url));
const TT_DIST_MAIN = fileURLToPath(new URL('../../../dist/tt.mjs', import.meta.url));
/** Default bound on any single wait in these tests. */
export const TT_WAIT_MS = 30_000;

export type TtEvent = Record<string, unknown> & { event: string };

/** A tt child (registered with the process helper, so killAll reaches it) with stdout and stderr kept apart. */
export class TtProcess {
  readonly proc: ManagedProcess;
  readonly pid: number;
  readonly args: readonly string[];
  stdout = '';
  stderr = '';
  /** Every stdout line that parsed as a JSON event, in order. */
  readonly events: TtEvent[] = [];
  /** stdout lines that are not JSON events (must stay empty with --json). */
  readonly badLines: string[] = [];
  readonly #listeners = new Set<() => void>();
  #partial = '';

  constructor(args: readonly string[], env: NodeJS.ProcessEnv = {}) {
    if (!existsSync(TT_DIST_MAIN)) throw new Error(`${TT_DIST_MAIN} is missing: run npm run build first`);
    this.args = args;
    this.proc = startProcess('tt', process.execPath, [TT_BIN, ...args], { env: { ...process.env, TT_DEBUG: '', ...env } });
    this.pid = this.proc.pid;
    // ManagedProcess set utf8 encoding; these listeners keep the streams apart
    this.proc.child.stdout!.on('data', (s: string) => this.#onStdout(s));
    this.proc.child.stderr!.on('data', (s: string) => {
      this.stderr += s;
      this.#notify();
    });
    this.proc.child.on('close', () => {
      this.#line(this.#partial);
      this.#partial = '';
      this.#notify();
    });
  }

  get exit(): ExitStatus | undefined {
    return this.proc.exitStatusNow;
  }

  #onStdout(s: string): void {
    this.stdout += s;
    this.#partial += s;
    for (let nl = this.#partial.indexOf('\n'); nl >= 0; nl = this.#partial.indexOf('\n')) {
      this.#line(this.#partial.slice(0, nl));
      this.#partial = this.#partial.slice(nl + 1);
    }
    this.#notify();
  }

  #line(line: string): void {
    if (line.trim() === '') return;
    try {
      const parsed: unknown = JSON.parse(line);
      if (parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed) && typeof (parsed as TtEvent).event === 'string') {
        this.events.push(parsed as TtEvent);
        return;
      }
    } catch {
      // not JSON: recorded below
    }
    this.badLines.push(line);
  }

  #notify(): void {
    for (const l of [...this.#listeners]) l();
  }

  describe(): string {
    return `tt ${this.args.join(' ')} (pid ${this.pid}, exit ${JSON.stringify(this.exit)})\n--- stderr ---\n${this.stderr.slice(-3000)}\n--- stdout ---\n${this.stdout.slice(-3000)}`;
  }

  /** Resolves with check()'s value once defined; rejects on timeout or when tt exits first. */
  waitFor<T>(what: string, check: () => T | undefined, timeoutMs = TT_WAIT_MS): Promise<T> {
    return new Promise((resolve, reject) => {
      const onChange = (): void => {
        const v = check();
        if (v !== undefined) {
          done();
          resolve(v);
        } else if (this.exit) {
          done();
          reject(new Error(`exited before ${what}: ${this.describe()}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}: ${this.describe()}`));
      }, timeoutMs);
      const done = (): void => {
        clearTimeout(timer);
        this.#listeners.delete(onChange);
      };
      this.#listeners.add(onChange);
      onChange();
    });
  }

  waitForEvent(name: string, timeoutMs = TT_WAIT_MS, match: (e: TtEvent) => boolean = () => true): Promise<TtEvent> {
    return this.waitFor(`event ${name}`, () => this.events.find((e) => e.event === name && match(e)), timeoutMs);
  }

  /** Wait for exit on its own; on timeout SIGKILL it and reject. */
  async waitForExit(timeoutMs = TT_WAIT_MS): Promise<ExitStatus> {
    try {
      return await this.proc.waitForExit(timeoutMs);
    } catch (err) {
      await this.kill9();
      throw new Error(`${(err as Error).message.split('\n')[0]}: ${this.describe()}`);
    }
  }

  signal(sig: NodeJS.Signals): void {
    if (this.exit || this.pid <= 0) return;
    try {
      process.kill(this.pid, sig);
    } catch {
      // already gone
    }
  }

  /** SIGKILL by PID and wait until it is gone (the close event has fired). */
  async kill9(): Promise<ExitStatus> {
    this.signal('SIGKILL');
    return this.proc.waitForExit(TT_WAIT_MS);
  }
}

export function startTt(args: readonly string[], env?: NodeJS.ProcessEnv): TtProcess {
  return new TtProcess(args, env);
}

/** Run tt to its exit (bounded). */
export async function runTt(args: readonly string[], timeoutMs = TT_WAIT_MS): Promise<TtProcess> {
  const p = startTt(args);
  await p.waitForExit(timeoutMs);
  return p;
}

/** Kill every process started through the process helper that still runs, by PID (afterEach). */
export const killAllTt = killAll;

/** The error contract: stderr is exactly one line `tt: ...`, no stack trace. */
export function expectOneErrorLine(p: TtProcess, pattern?: RegExp): string {
  const lines = p.stderr.split('\n').filter((l) => l.length > 0);
  expect(lines, p.describe()).toHaveLength(1);
  const line = lines[0]!;
  expect(line.startsWith('tt: '), p.describe()).toBe(true);
  expect(p.stderr).not.toMatch(/^\s+at /m);
  if (pattern) expect(line).toMatch(pattern);
  return line;
}

/** Looser contract for human (plain) mode, where status lines precede the error. */
export function expectErrorLastLine(p: TtProcess, pattern?: RegExp): string {
  const lines = p.stderr.split('\n').filter((l) => l.length > 0);
  const errors = lines.filter((l) => l.startsWith('tt: '));
  expect(errors, p.describe()).toHaveLength(1);
  expect(lines[lines.length - 1], p.describe()).toBe(errors[0]);
  expect(p.stderr).not.toMatch(/^\s+at /m);
  if (pattern) expect(errors[0]).toMatch(pattern);
  return errors[0]!;
}

/** Common CLI args binding to loopback on a free port. */
export const LOOPBACK = ['--bind', '127.0.0.1', '--port', '0'] as const;
