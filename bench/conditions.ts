// What a bench result records about the machine it ran on, measured at the end of the run: timings on shared
// cores are only comparable within one run, so the load beside them says how disturbed they were.
import os from 'node:os';

export function benchConditions<B>(backend: B, startedMs: number) {
  return {
    backend,
    cpus: os.cpus().length,
    loadAverage1m: os.loadavg()[0],
    node: process.version,
    date: new Date().toISOString(),
    seconds: (Date.now() - startedMs) / 1000,
  };
}
