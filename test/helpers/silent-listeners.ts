/**
 * Listeners on 127.0.0.1 that accept connections and hold them without a
 * word, counting them: how per-IP tests see how many connections tt opens
 * to one address at once.
 */
import net from 'node:net';

export interface SilentListeners {
  readonly ports: number[];
  /** The connections open now. */
  readonly open: Set<net.Socket>;
  /** Connections accepted so far, closed or not. */
  accepted(): number;
  close(): Promise<void>;
}

export async function silentListeners(n: number): Promise<SilentListeners> {
  const open = new Set<net.Socket>();
  let accepted = 0;
  const servers = await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<net.Server>((resolve) => {
          const server = net.createServer((s) => {
            accepted++;
            open.add(s);
            s.on('error', () => {});
            s.once('close', () => open.delete(s));
          });
          server.listen(0, '127.0.0.1', () => resolve(server));
        }),
    ),
  );
  return {
    ports: servers.map((s) => (s.address() as net.AddressInfo).port),
    open,
    accepted: () => accepted,
    close: async () => {
      for (const s of open) s.destroy();
      await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
    },
  };
}
