// Reads vitest's json report and prints tt's one closing line: "N passed, N failed[, N skipped]".
// Exit status: 0 only when something ran, nothing failed and nothing was skipped.
// A test file that failed to load (no test results inside) counts as one failure.
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

/** @param {any} report vitest json reporter output */
export function summarize(report) {
  const files = Array.isArray(report?.testResults) ? report.testResults : [];
  let passed = 0;
  let failed = 0;
  let skipped = 0;
  for (const file of files) {
    const tests = Array.isArray(file?.assertionResults) ? file.assertionResults : [];
    let fileFailed = 0;
    for (const t of tests) {
      if (t.status === 'passed') passed++;
      else if (t.status === 'failed') fileFailed++;
      else skipped++; // pending, skipped, todo, disabled
    }
    // a file that errored outside any test (import error, failing hook) still failed
    if (fileFailed === 0 && file?.status === 'failed') fileFailed = 1;
    failed += fileFailed;
  }
  if (files.length === 0 && report?.success === false) failed = Math.max(failed, 1);
  const line = `${passed} passed, ${failed} failed${skipped > 0 ? `, ${skipped} skipped` : ''}`;
  const ok = passed > 0 && failed === 0 && skipped === 0;
  return { passed, failed, skipped, line, ok };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const path = process.argv[2];
  let report;
  try {
    report = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    process.stderr.write(`test-summary: cannot read vitest report ${path}: ${err.message}\n`);
    console.log('0 passed, 1 failed');
    process.exit(1);
  }
  const s = summarize(report);
  if (s.passed + s.failed + s.skipped === 0) process.stderr.write('test-summary: no tests ran\n');
  if (s.skipped > 0) process.stderr.write('test-summary: skipped tests prove nothing; un-skip or delete them\n');
  console.log(s.line);
  process.exit(s.ok ? 0 : 1);
}
