// Decides whether node_modules must be (re)installed with `npm ci`: exits 0 when node_modules
// is missing or differs from package-lock.json (npm's hidden node_modules/.package-lock.json
// records what is installed), 1 when it is up to date.
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

/** @returns {string | undefined} why the install is stale, or undefined when fresh */
export function staleReason(lock, installed) {
  if (!installed) return 'node_modules is missing or was not installed by npm';
  const want = lock?.packages ?? {};
  const have = installed?.packages ?? {};
  for (const [key, entry] of Object.entries(want)) {
    if (key === '' || entry.optional || entry.link) continue;
    if (!have[key]) return `${key} is not installed`;
    if (have[key].version !== entry.version) return `${key} is ${have[key].version}, lock wants ${entry.version}`;
  }
  for (const [key, entry] of Object.entries(have)) {
    if (!want[key]) return `${key} is installed but not in package-lock.json`;
    if (want[key].version !== entry.version) return `${key} is ${entry.version}, lock wants ${want[key].version}`;
  }
  return undefined;
}

function readJson(path) {
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch {
    return undefined;
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const root = process.argv[2] ?? '.';
  const reason = staleReason(readJson(`${root}/package-lock.json`), readJson(`${root}/node_modules/.package-lock.json`));
  if (reason) {
    console.log(reason);
    process.exit(0);
  }
  process.exit(1);
}
