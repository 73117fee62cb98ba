// Bundle dist/cli/main.js and everything it imports into dist/tt.mjs, the one file bin/tt.js
// loads (~21 ms instead of ~49 ms for ~60 modules). The single place these options live:
// `npm run build` and the tests' ensureBuilt() both run this script.
import { build } from 'rolldown';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
await build({
  cwd: root,
  input: 'dist/cli/main.js',
  platform: 'node',
  logLevel: 'warn',
  output: { file: 'dist/tt.mjs', format: 'esm', sourcemap: true },
});
