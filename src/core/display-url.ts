/**
 * A URL as tt shows it in warnings and errors (trackers, web seeds): without
 * a user name or password, which tt never sends either, and at most 120
 * characters. Not a URL: shown as given (every message is sanitised later).
 */
export function displayUrl(url: string): string {
  let shown = url;
  try {
    const parsed = new URL(url);
    parsed.username = '';
    parsed.password = '';
    shown = parsed.href;
  } catch {
    // not a URL: shown as given
  }
  return shown.length > 120 ? `${shown.slice(0, 117)}...` : shown;
}
