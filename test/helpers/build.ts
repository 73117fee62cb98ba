/**
 * Builds dist/ for tests that spawn the built CLI, only when a source is newer
 * than its output. `npm test` builds before vitest starts, so in CI this never
 * rebuilds: rewriting dist/ while other test files spawn tt would race them.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** Every src/**\/*.ts whose dist/**\/*.js is missing or older. */
export function staleSources(dir = join(ROOT, 'src')): string[] {
  const stale: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) stale.push(...staleSources(path));
    else if (entry.name.endsWith('.ts')) {
      const out = join(ROOT, 'dist', relative(join(ROOT, 'src'), path)).replace(/\.ts$/, '.js');
      if (!existsSync(out) || statSync(out).mtimeMs < statSync(path).mtimeMs) stale.push(path);
    }
  }
  return stale;
}

/** `tsc -p tsconfig.build.json` unless dist/ is up to date. */
export function ensureBuilt(): void {
  if (staleSources().length === 0) return;
  // others' in-progress files may not typecheck; tsc still emits, so only the output matters
  spawnSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'], { cwd: ROOT, timeout: 120_000 });
  if (!existsSync(join(ROOT, 'dist/cli/main.js'))) throw new Error('build failed: dist/cli/main.js is missing');
}
