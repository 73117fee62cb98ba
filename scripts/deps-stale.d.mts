// Types for deps-stale.mjs (plain JS so test.sh can run it before anything is installed).
export function staleReason(lock: unknown, installed: unknown): string | undefined;
