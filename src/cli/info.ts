/** `tt info` — placeholder until the metainfo helper lands it. */
import type { Command } from 'commander';
export function registerInfo(program: Command): void {
  program.command('info <torrent>').description('show what a torrent holds');
}
