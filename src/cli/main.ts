/**
 * The `tt` program: builds the commander program, registers one file per
 * command, and turns errors into one line on stderr plus a documented exit
 * code. The only place (with its siblings in src/cli/) that touches process.
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

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('tt')
    .description('A command-line BitTorrent client')
    .version(CLIENT_VERSION, '-V, --version')
    .exitOverride()
    .configureOutput({
      writeErr: (s) => process.stderr.write(s),
      // usage errors follow the one-line rule too: 'tt: <what> (see tt --help)'
      outputError: (s) => process.stderr.write(`tt: ${s.replace(/^error: /, '').replace(/\s+/g, ' ').trim()} (see tt --help)\n`),
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
 * stdout closed under us (`tt download --json | head -1`): a running session
 * stops as on SIGTERM (announces stopped, keeps verified pieces); anything
 * else just exits. Later writes to the dead pipe are ignored, never a crash.
 */
function handleClosedStdout(): void {
  let gone = false;
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (gone) return;
    gone = true;
    if (err.code !== 'EPIPE' && err.code !== 'ERR_STREAM_DESTROYED') process.stderr.write(`tt: cannot write output: ${oneLine(err.message)}\n`);
    if (process.listenerCount('SIGTERM') > 0) process.kill(process.pid, 'SIGTERM');
    else process.exit(process.exitCode ?? 0);
  });
}

export async function main(argv: string[]): Promise<void> {
  handleClosedStdout();
  try {
    await buildProgram().parseAsync(argv);
    if (process.exitCode === undefined) process.exitCode = 0;
  } catch (err) {
    process.exitCode = reportError(err);
  }
}
