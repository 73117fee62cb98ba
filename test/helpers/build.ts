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

/** The one-file build that bin/tt.js loads (`npm run build`: tsc, then rolldown). */
export const TT_BUNDLE = join(ROOT, 'dist/tt.mjs');

/** `npm run build` (tsc, then the bundle) unless dist/ and the bundle are up to date. */
export function ensureBuilt(): void {
  const stale = staleSources();
  const bundleTime = existsSync(TT_BUNDLE) ? statSync(TT_BUNDLE).mtimeMs : 0;
  const distTime = existsSync(join(ROOT, 'dist/cli/main.js')) ? statSync(join(ROOT, 'dist/cli/main.js')).mtimeMs : Infinity;
  if (stale.length === 0 && bundleTime >= distTime) return;
  // others' in-progress files may not typecheck; tsc still emits, so only the output matters
  spawnSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'], { cwd: ROOT, timeout: 120_000 });
  spawnSync(process.execPath, [join(ROOT, 'scripts/bundle.mjs')], { cwd: ROOT, timeout: 120_000 });
  if (!existsSync(TT_BUNDLE)) throw new Error('build failed: dist/tt.mjs is missing');
}
