/**
 * main()'s last line of defence: when Node ends the process because nothing
 * is left to wait for while the command's promise is still pending, tt does
 * not exit 0 saying nothing (as `tt verify` once did when stopped by SIGTERM
 * while checking): one line, `tt: internal error: ...`, and exit 1. Run in a
 * fresh node on main.ts bundled with a command added for the purpose.
 */
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'rolldown';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const MAIN_TS = fileURLToPath(new URL('../../../src/cli/main.ts', import.meta.url));
let dir = '';
let bundle = '';

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'tt-main-unfinished-'));
  const entry = path.join(dir, 'entry.mjs');
  bundle = path.join(dir, 'tt.mjs');
  await writeFile(
    entry,
    `import { buildProgram, main } from ${JSON.stringify(MAIN_TS)};
     const program = buildProgram();
     program.command('never').action(() => new Promise(() => {})); // nothing can ever settle it
     program.command('fine').action(() => undefined);
     main(process.argv, program);
    `,
  );
  await build({
    input: entry,
    platform: 'node',
    logLevel: 'silent',
    resolve: { extensionAlias: { '.js': ['.ts', '.js'] } },
    output: { file: bundle, format: 'esm' },
  });
}, 60_000);

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

const run = (...args: string[]): SpawnSyncReturns<string> =>
  spawnSync(process.execPath, [bundle, ...args], { encoding: 'utf8', timeout: 20_000, env: { ...process.env, TT_DEBUG: '' } });

describe('main: a command left waiting forever', () => {
  it('exits 1 with one line, not 0 with nothing', () => {
    const r = run('never');
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^tt: internal error: [^\n]+\n$/);
  });

  it('a command that finishes still exits 0 and says nothing', () => {
    const r = run('fine');
    expect(r.status).toBe(0);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe('');
  });

  it('a usage error keeps its own code and line', () => {
    const r = run('no-such-command');
    expect(r.status).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).not.toMatch(/internal error/);
  });
});
