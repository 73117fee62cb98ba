/**
 * The `tt` program: builds the commander program, registers one file per
 * command, and turns errors into one line on stderr plus a documented exit
 * code. The only place (with its siblings in src/cli/) that touches process.
 * A write error on stdout is never silent: the running phase stops
 * (stop.ts) and the exit code says so; see watchOutput.
 */
import { Command, CommanderError } from 'commander';
import { CLIENT_VERSION } from '../core/ids.js';
import { EXIT_CODES, TtError, errorMessage } from '../core/errors.js';
import { sanitizeForTerminal } from './format.js';
import { registerInfo } from './info.js';
import { registerDownload } from './download.js';
import { registerSeed } from './seed.js';
import { registerVerify } from './verify.js';
import { registerDemo } from './demo.js';
import { registerCreate } from './create.js';
import { registerTracker } from './tracker.js';
import { endIfHungUp, listenForStop, outputFailed, outputFailedText, outputFailure, outputStopCause } from './stop.js';

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('tt')
    .description('A command-line BitTorrent client')
    .version(CLIENT_VERSION, '-V, --version')
    .exitOverride()
    .configureOutput({
      writeErr: (s) => process.stderr.write(s),
      // usage errors follow the one-line rule too: 'tt: <what> (see tt --help)', terminal-safe (commander repeats the argument as given)
      outputError: (s) => process.stderr.write(`tt: ${sanitizeForTerminal(s.replace(/^error: /, '').replace(/\s+/g, ' ').trim())} (see tt --help)\n`),
    });
  registerInfo(program);
  registerDownload(program);
  registerSeed(program);
  registerVerify(program);
  registerCreate(program);
  registerTracker(program);
  registerDemo(program);
  return program;
}

/** Print one line for an error and return its exit code. Unknown errors are internal. */
export function reportError(err: unknown): number {
  if (err instanceof CommanderError) {
    // commander already printed its message
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return 0;
    return EXIT_CODES.USAGE;
  }
  if (err instanceof TtError) {
    process.stderr.write(`tt: ${oneLine(err.message)}\n`);
    return EXIT_CODES[err.code];
  }
  process.stderr.write(`tt: internal error: ${oneLine(errorMessage(err))}\n`);
  if (process.env['TT_DEBUG']) process.stderr.write(`${(err as Error)?.stack ?? ''}\n`);
  return EXIT_CODES.INTERNAL;
}

function oneLine(s: string): string {
  // line breaks and tabs become spaces; every other control, C1 or bidi character cannot reach the terminal
  return sanitizeForTerminal(s.replace(/[\r\n\t]+/g, ' ')).trim();
}

/**
 * stdout failing under us. A running phase (download, seed, verify, tracker)
 * stops gracefully and says why (stop.ts): the reader went away (EPIPE, exit
 * 130) or the output could not be written (ENOSPC..., exit 6). A command
 * with nothing to stop (info, create) finishes; then a write error other
 * than EPIPE turns a success into exit 6 with one line, while EPIPE stays
 * quiet (`tt info | head`: the reader had what it wanted). Later writes to
 * the dead stream are ignored, never a crash; so are errors on stderr
 * (after SIGHUP the terminal is gone: there is nowhere left to say it).
 */
let mainDone = false;
let outputReported = false;

function watchOutput(): void {
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    outputFailed(outputStopCause(err));
    if (mainDone) settleOutput();
  });
  process.stderr.on('error', () => undefined);
}

/** Once the command is over: a stdout write error that nothing reported yet becomes exit 6 and one line. */
function settleOutput(): void {
  const cause = outputFailure();
  if (outputReported || cause?.kind !== 'output-failed') return;
  outputReported = true;
  // an error already reported keeps its line and code: one line, never two
  if (process.exitCode !== undefined && process.exitCode !== 0) return;
  process.stderr.write(`tt: ${outputFailedText(cause.code)}\n`);
  process.exitCode = EXIT_CODES.DISK;
}

/**
 * The commands that stop gracefully on SIGINT, SIGTERM or SIGHUP (stop.ts):
 * their handlers are installed as soon as the command is known, so a signal
 * while the torrent is still being loaded is kept for the first phase (exit
 * 130 and one line) instead of killing tt with nothing said or saved. The
 * others (info, create) keep the signals' default actions.
 */
const GRACEFUL_COMMANDS: ReadonlySet<string> = new Set(['download', 'seed', 'verify', 'tracker']);

/**
 * The last line of defence: Node ends a process whose event loop is empty
 * even while main() still waits (a promise nothing can settle any more), and
 * then with exit 0, which would claim success with nothing said. Such an end
 * becomes exit 1 (internal error) with one line.
 */
function watchUnfinished(): void {
  process.on('exit', (code) => {
    if (mainDone || code !== 0) return;
    process.stderr.write('tt: internal error: tt ended before the command finished (it was left waiting for something that can never happen)\n');
    process.exitCode = EXIT_CODES.INTERNAL;
  });
}

/** Runs tt with `argv` (process.argv); `program` is buildProgram()'s, or one a test extends. */
export async function main(argv: string[], program: Command = buildProgram()): Promise<void> {
  watchOutput();
  watchUnfinished();
  program.hook('preAction', (_program, command) => {
    if (GRACEFUL_COMMANDS.has(command.name())) listenForStop();
  });
  try {
    await program.parseAsync(argv);
    if (process.exitCode === undefined) process.exitCode = 0;
  } catch (err) {
    process.exitCode = reportError(err);
  }
  mainDone = true;
  settleOutput();
  endIfHungUp();
}
