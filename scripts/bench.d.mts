// Types for bench.mjs's pure helpers (the script itself is plain JS: no build step).
export interface BenchOptions {
  size: number;
  runs: number;
  pieceLength: number;
  direction: 'download' | 'seed' | 'both';
  clients: string[];
  timeoutS: number;
  results: string;
  help?: boolean;
}
export interface BenchResult {
  client: string;
  label: string;
  run: number;
  ok: boolean;
  error?: string;
  wallS?: number;
  mibPerS?: number;
  cpuS?: number;
  maxRssMiB?: number;
  seeder?: string;
}
export function parseSize(text: string): number;
export function parseArgs(argv: string[]): BenchOptions;
export function median(values: number[]): number | undefined;
export function summaryTable(results: BenchResult[], labels: string[], labelHeader: string): string;
export function runOrder<T>(list: T[], k: number): T[];
export function parseGnuTime(text: string): { wallS: number; cpuS: number; maxRssMiB: number } | undefined;
