/**
 * The built `tt` run under a wrapper command that changes its process before
 * exec, such as `prlimit --nofile=N:N` (a low descriptor limit) or `setpriv
 * --reuid=65534 ...` (a real non-root user: the tests run as root). Output
 * is kept as by tt-cli.ts's TtProcess; the process is registered with the
 * process helper, so killAllTt() ends it by its PID.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { startProcess, type ExitStatus, type ManagedProcess } from '../../helpers/clients/process.js';
import { TT_BIN, type TtEvent } from '../cli/tt-cli.js';

const TT_DIST_MAIN = fileURLToPath(new URL('../../../dist/tt.mjs', import.meta.url));

export class WrappedTt {
  readonly proc: ManagedProcess;
  readonly args: readonly string[];
  stdout = '';
  stderr = '';

  constructor(wrapper: readonly string[], args: readonly string[]) {
    if (!existsSync(TT_DIST_MAIN)) throw new Error(`${TT_DIST_MAIN} is missing: run npm run build first`);
    this.args = [...wrapper, 'tt', ...args];
    this.proc = startProcess('tt', wrapper[0]!, [...wrapper.slice(1), process.execPath, TT_BIN, ...args], { env: { ...process.env, TT_DEBUG: '' } });
    this.proc.child.stdout!.on('data', (s: string) => (this.stdout += s));
    this.proc.child.stderr!.on('data', (s: string) => (this.stderr += s));
  }

  get pid(): number {
    return this.proc.pid;
  }

  /** JSON events printed so far (with --json). */
  get events(): TtEvent[] {
    return this.proc.events.filter((e): e is TtEvent => typeof e['event'] === 'string');
  }

  /** The lines on stderr starting with `tt:`. */
  get errorLines(): string[] {
    return this.stderr.split('\n').filter((l) => l.startsWith('tt: '));
  }

  /** Waits for exit (bounded); on timeout kills it by PID and rejects. */
  async exit(timeoutMs: number): Promise<ExitStatus> {
    try {
      return await this.proc.waitForExit(timeoutMs);
    } catch (err) {
      await this.proc.kill();
      throw new Error(`${(err as Error).message.split('\n')[0]}: ${this.describe()}`);
    }
  }

  /** Waits (bounded) for the first JSON event for which `match` holds. */
  waitForEvent(match: (e: TtEvent) => boolean, timeoutMs: number, what: string): Promise<TtEvent> {
    return this.proc.waitForEvent((e) => typeof e['event'] === 'string' && match(e as TtEvent), timeoutMs, what) as Promise<TtEvent>;
  }

  describe(): string {
    return `${this.args.join(' ')} (pid ${this.pid}, exit ${JSON.stringify(this.proc.exitStatusNow)})\n--- stderr ---\n${this.stderr.slice(-3000)}\n--- stdout ---\n${this.stdout.slice(-3000)}`;
  }
}

/** Runs tt under `wrapper` to its exit (bounded). */
export async function runWrapped(wrapper: readonly string[], args: readonly string[], timeoutMs: number): Promise<WrappedTt> {
  const p = new WrappedTt(wrapper, args);
  await p.exit(timeoutMs);
  return p;
}
