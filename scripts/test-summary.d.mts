// Types for test-summary.mjs (plain JS so test.sh needs no build step).
export interface TestSummary {
  passed: number;
  failed: number;
  skipped: number;
  line: string;
  ok: boolean;
}
export function summarize(report: unknown): TestSummary;
