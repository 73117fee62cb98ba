/**
 * Child processes for interop tests: spawn, keep the last output in a ring buffer for
 * error messages, wait for a JSON event / a regex / exit with a timeout, kill by PID
 * (SIGTERM, then SIGKILL), and a registry that kills whatever is still running.
 * Owns no protocol knowledge; the client wrappers beside it build on this.
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { createServer } from 'node:net';

/** How long a process gets after SIGTERM before SIGKILL. */
export const KILL_GRACE_MS = 3_000;
/** Output kept per process for error messages. */
export const OUTPUT_RING_BYTES = 16 * 1024;
/** Output quoted in a failure message. */
export const FAILURE_OUTPUT_CHARS = 4_000;

export type JsonEvent = Record<string, unknown>;

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

const running = new Set<ManagedProcess>();

export class ManagedProcess {
  readonly name: string;
  readonly child: ChildProcess;
  readonly pid: number;
  /** Every JSON object printed on its own stdout line, in order. */
  readonly events: JsonEvent[] = [];
  private ring = '';
  private stdoutPartial = '';
  private exitStatus: ExitStatus | undefined;
  private readonly exited: Promise<ExitStatus>;
  private readonly listeners = new Set<() => void>();

  constructor(name: string, command: string, args: readonly string[], options: SpawnOptions = {}) {
    this.name = name;
    this.child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options });
    this.exited = new Promise((resolve) => {
      this.child.on('error', (err) => {
        this.record(`[spawn error] ${err.message}\n`);
        this.exitStatus ??= { code: -1, signal: null };
        running.delete(this);
        this.notify();
        resolve(this.exitStatus);
      });
      this.child.on('close', (code, signal) => {
        this.exitStatus ??= { code, signal };
        running.delete(this);
        this.notify();
        resolve(this.exitStatus);
      });
    });
    this.pid = this.child.pid ?? -1;
    running.add(this);
    this.child.stdout?.setEncoding('utf8');
    this.child.stderr?.setEncoding('utf8');
    this.child.stdout?.on('data', (s: string) => this.onStdout(s));
    this.child.stderr?.on('data', (s: string) => {
      this.record(s);
      this.notify();
    });
  }

  get exitStatusNow(): ExitStatus | undefined {
    return this.exitStatus;
  }

  /** The last OUTPUT_RING_BYTES of stdout+stderr, for failure messages. */
  output(): string {
    return this.ring;
  }

  private record(s: string): void {
    this.ring = (this.ring + s).slice(-OUTPUT_RING_BYTES);
  }

  private onStdout(s: string): void {
    this.record(s);
    this.stdoutPartial += s;
    let nl = this.stdoutPartial.indexOf('\n');
    while (nl >= 0) {
      const line = this.stdoutPartial.slice(0, nl).trim();
      this.stdoutPartial = this.stdoutPartial.slice(nl + 1);
      if (line.startsWith('{')) {
        try {
          const parsed: unknown = JSON.parse(line);
          if (parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)) this.events.push(parsed as JsonEvent);
        } catch {
          // not JSON: kept in the ring only
        }
      }
      nl = this.stdoutPartial.indexOf('\n');
    }
    if (this.stdoutPartial.length > OUTPUT_RING_BYTES) this.stdoutPartial = this.stdoutPartial.slice(-OUTPUT_RING_BYTES);
    this.notify();
  }

  private notify(): void {
    for (const l of [...this.listeners]) l();
  }

  /** Resolve with check()'s value once it is defined; reject on timeout or exit. */
  private waitUntil<T>(what: string, timeoutMs: number, check: () => T | undefined): Promise<T> {
    return new Promise((resolve, reject) => {
      const onChange = (): void => {
        const value = check();
        if (value !== undefined) {
          done();
          resolve(value);
        } else if (this.exitStatus) {
          done();
          reject(this.failure(`exited (code ${this.exitStatus.code}, signal ${this.exitStatus.signal}) before ${what}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(this.failure(`timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      const done = (): void => {
        clearTimeout(timer);
        this.listeners.delete(onChange);
      };
      this.listeners.add(onChange);
      onChange();
    });
  }

  failure(message: string): Error {
    return new Error(`${this.name} (pid ${this.pid}): ${message}\n--- last output ---\n${this.ring.slice(-FAILURE_OUTPUT_CHARS)}`);
  }

  /** First JSON event on stdout (seen so far or later) for which match() is true. */
  waitForEvent(match: (e: JsonEvent) => boolean, timeoutMs: number, what = 'a JSON event'): Promise<JsonEvent> {
    return this.waitUntil(what, timeoutMs, () => this.events.find(match));
  }

  /** First JSON event whose "event" field equals name. */
  waitForEventNamed(name: string, timeoutMs: number): Promise<JsonEvent> {
    return this.waitForEvent((e) => e['event'] === name, timeoutMs, `event "${name}"`);
  }

  /** Output (stdout+stderr, ring buffer) matching re. */
  waitForOutput(re: RegExp, timeoutMs: number): Promise<RegExpMatchArray> {
    return this.waitUntil(`output matching ${re}`, timeoutMs, () => this.ring.match(re) ?? undefined);
  }

  /** Wait for the process to exit on its own; rejects (without killing) on timeout. */
  waitForExit(timeoutMs: number): Promise<ExitStatus> {
    if (this.exitStatus) return Promise.resolve(this.exitStatus);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(this.failure(`did not exit within ${timeoutMs} ms`)),
        timeoutMs,
      );
      void this.exited.then((s) => {
        clearTimeout(timer);
        resolve(s);
      });
    });
  }

  /** Wait for exit code 0; the error carries the process output otherwise. */
  async expectSuccess(timeoutMs: number): Promise<void> {
    const s = await this.waitForExit(timeoutMs);
    if (s.code !== 0) throw this.failure(`exited with code ${s.code} signal ${s.signal}`);
  }

  /** SIGTERM by PID, SIGKILL after KILL_GRACE_MS; resolves once it is gone. */
  async kill(): Promise<ExitStatus> {
    if (this.exitStatus) return this.exitStatus;
    signalPid(this.pid, 'SIGTERM');
    const timer = setTimeout(() => signalPid(this.pid, 'SIGKILL'), KILL_GRACE_MS);
    const status = await this.exited;
    clearTimeout(timer);
    return status;
  }
}

function signalPid(pid: number, signal: NodeJS.Signals): void {
  if (pid <= 0) return;
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
}

/** Spawn and register a process; it is killed by killAll() if still running. */
export function startProcess(name: string, command: string, args: readonly string[], options: SpawnOptions = {}): ManagedProcess {
  return new ManagedProcess(name, command, args, options);
}

/** Kill every process started through this module that is still running (use in afterAll/afterEach). */
export async function killAll(): Promise<void> {
  await Promise.all([...running].map((p) => p.kill()));
}

/** Number of registered processes still running (for tests of the harness). */
export function runningCount(): number {
  return running.size;
}

// last resort: a test runner that exits without afterAll must not leave clients behind
process.once('exit', () => {
  for (const p of running) signalPid(p.pid, 'SIGKILL');
});

/** A TCP port that was free on 127.0.0.1 a moment ago (bind port 0, read it, close). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const addr = server.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      server.close(() => (port > 0 ? resolve(port) : reject(new Error('no port assigned'))));
    });
  });
}
