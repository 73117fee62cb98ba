#!/usr/bin/env -S MALLOC_ARENA_MAX=2 MALLOC_MMAP_THRESHOLD_=131072 node --max-semi-space-size=1
// A 1 MiB young generation: tt allocates many short-lived buffers (socket
// chunks, block views); measured on 1 GiB from libtorrent it cuts peak RSS
// 120 -> 95 MiB, CPU -12% and wall -10% (README, Performance).
// glibc malloc: a fixed 128 KiB mmap threshold returns freed piece-sized
// buffers to the kernel at once (the default threshold adapts upward and then
// keeps them on a fragmenting heap), and two arenas stop the libuv and V8
// threads from each growing their own. Peak RSS on 4 GiB: 111 -> 93 MiB,
// on 1 GiB: 89 -> 79 MiB; wall and CPU unchanged (README, Performance).
// dist/tt.mjs is dist/cli/main.js and everything it imports in one file (npm run build):
// loading it takes ~21 ms instead of ~49 ms for ~60 separate modules.
import { main } from '../dist/tt.mjs';
main(process.argv);
