/**
 * Runs a real opentracker (Debian build, whitelist mode) on a free loopback port
 * for tests: HTTP and UDP on the same port, the given info hashes whitelisted.
 * The process is killed by its PID in stop(); its temp folder is removed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { get } from 'node:http';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface OpentrackerHandle {
  httpUrl: string;
  udpUrl: string;
  port: number;
  stop(): Promise<void>;
}

const HOST = '127.0.0.1';
const START_ATTEMPTS = 5;
const READY_POLLS = 50;
const READY_POLL_MS = 100;

/** A port free for both TCP and UDP right now (it may be taken again before use: callers retry). */
async function freePort(): Promise<number> {
  for (let i = 0; i < 20; i++) {
    const tcp = createServer();
    await new Promise<void>((r) => tcp.listen(0, HOST, r));
    const port = (tcp.address() as AddressInfo).port;
    const udp = createSocket('udp4');
    const udpFree = await new Promise<boolean>((r) => {
      udp.once('error', () => r(false));
      udp.bind(port, HOST, () => r(true));
    });
    udp.close();
    await new Promise((r) => tcp.close(r));
    if (udpFree) return port;
  }
  throw new Error('no free port for opentracker');
}

/**
 * Ready means the whitelist is loaded, which happens after the port opens: an
 * announce for the first hash must not be refused. The probe peer then leaves.
 */
async function isReady(port: number, probeHash: Buffer | undefined): Promise<boolean> {
  const hash = probeHash ? [...probeHash].map((b) => `%${b.toString(16).padStart(2, '0')}`).join('') : '';
  const path = `/announce?info_hash=${hash}&peer_id=-TT0001-readyprobe00&port=1&left=0&numwant=0&compact=1`;
  if (!(await probe(port, path, probeHash !== undefined))) return false;
  await probe(port, `${path}&event=stopped`, false); // take the probe peer out of the swarm again
  return true;
}

function probe(port: number, path: string, mustNotBeRefused: boolean): Promise<boolean> {
  return new Promise((resolve) => {
    const req = get({ host: HOST, port, path, timeout: 1_000, agent: false /* opentracker closes each connection */ }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString('latin1')));
      res.on('end', () => resolve(res.statusCode === 200 && !(mustNotBeRefused && body.includes('failure reason'))));
      res.on('error', () => resolve(false));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
  });
}

function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return Promise.resolve();
  return new Promise((resolve) => {
    const hard = setTimeout(() => {
      if (child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
    }, 2_000);
    child.once('exit', () => {
      clearTimeout(hard);
      resolve();
    });
    process.kill(child.pid!, 'SIGTERM');
  });
}

export async function startOpentracker(infoHashes: Buffer[]): Promise<OpentrackerHandle> {
  const dir = await mkdtemp(join(tmpdir(), 'tt-opentracker-'));
  const whitelist = join(dir, 'whitelist');
  // one lowercase hex info hash per line
  await writeFile(whitelist, infoHashes.map((h) => `${h.toString('hex')}\n`).join(''), { mode: 0o644 });
  // run as root, opentracker drops to 'nobody' before it reads the whitelist: mkdtemp's 0700 would hide it
  await chmod(dir, 0o755);
  let lastOutput = '';
  for (let attempt = 0; attempt < START_ATTEMPTS; attempt++) {
    const port = await freePort();
    const child = spawn('opentracker', ['-i', HOST, '-p', String(port), '-P', String(port), '-w', whitelist], {
      cwd: dir,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
    child.on('error', (err) => (output += String(err)));
    let ready = false;
    for (let i = 0; i < READY_POLLS && child.exitCode === null; i++) {
      if (await isReady(port, infoHashes[0])) {
        ready = true;
        break;
      }
      await new Promise((r) => setTimeout(r, READY_POLL_MS));
    }
    if (ready && child.exitCode === null) {
      return {
        httpUrl: `http://${HOST}:${port}/announce`,
        udpUrl: `udp://${HOST}:${port}`,
        port,
        stop: async () => {
          await kill(child);
          await rm(dir, { recursive: true, force: true });
        },
      };
    }
    lastOutput = output;
    await kill(child);
  }
  await rm(dir, { recursive: true, force: true });
  throw new Error(`opentracker did not start: ${lastOutput.trim()}`);
}
