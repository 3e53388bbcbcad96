// Prometheus metrics of a worker process, for a cluster's monitoring:
//   - training metrics (prom-client, this process): the compute child processes report every step, episode,
//     validation and checkpoint to their activity (common/child.ts events); the activity records them here,
//     labelled by pipeline, session and unit (model or agent);
//   - the Temporal SDK's runtime metrics (task slots, poll and schedule-to-start latencies, sticky cache...),
//     exported by the SDK's Rust core on its own HTTP listener (Runtime.install can only bind a port of its own).
// With FORGE_METRICS_PORT set, a worker serves GET /metrics on that port: the training metrics followed by the
// core's metrics (fetched from FORGE_TEMPORAL_METRICS_PORT, default FORGE_METRICS_PORT + 1, which can also be
// scraped directly). Without it nothing listens and recording costs a map update.
import http from 'node:http';
import { Runtime, type RuntimeOptions } from '@temporalio/worker';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

export const registry = new Registry();
const labelNames = ['pipeline', 'session', 'unit'] as const;
type Labels = Record<(typeof labelNames)[number], string>;

const gauge = (name: string, help: string) => new Gauge({ name, help, labelNames, registers: [registry] });
const metrics = {
  step: gauge('forge_training_step', 'Optimizer steps completed (Cognate)'),
  episode: gauge('forge_training_episode', 'Training episodes completed (Agent Forge)'),
  loss: gauge('forge_training_loss', 'Latest training loss (Cognate)'),
  validationLoss: gauge('forge_validation_loss', 'Latest validation cross-entropy (Cognate)'),
  learningRate: gauge('forge_training_learning_rate', 'Learning rate of the latest step (Cognate)'),
  tokensPerSecond: gauge('forge_training_tokens_per_second', 'Training throughput since the previous report (Cognate)'),
  actDepth: gauge('forge_training_act_mean_depth', 'Mean ACT depth (blocks per position) of the latest step (Cognate)'),
  ltmFill: gauge('forge_training_ltm_fill_ratio', 'Share of long-term-memory slots in use (Cognate)'),
  reward: gauge('forge_training_reward', 'Mean return of the latest training batch (Agent Forge)'),
  successRate: gauge('forge_training_success_rate', 'Success rate of the latest training batch (Agent Forge)'),
  coordination: gauge('forge_training_coordination_score', 'Coordination score of the latest training batch (Agent Forge)'),
  checkpoints: new Counter({ name: 'forge_checkpoints_total', help: 'Checkpoints written', labelNames, registers: [registry] }),
  checkpointSeconds: new Histogram({
    name: 'forge_checkpoint_seconds',
    help: 'Time to write one checkpoint',
    labelNames,
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [registry],
  }),
};
export type TrainingValues = Partial<Record<Exclude<keyof typeof metrics, 'checkpoints' | 'checkpointSeconds'>, number | null>>;

/** How long a finished unit's series stay scrapeable (so the last values reach Prometheus) before removal. */
const KEEP_AFTER_CLOSE_MS = 5 * 60_000;

/** Latest recorder per label set: a retry on this worker must not lose its series to the previous attempt's removal. */
const generations = new Map<string, number>();

/** Recorder for one unit (a model or an agent) of one session. */
export function trainingMetrics(labels: Labels) {
  const key = JSON.stringify(labels);
  const generation = (generations.get(key) ?? 0) + 1;
  generations.set(key, generation);
  return {
    set(values: TrainingValues): void {
      for (const [k, v] of Object.entries(values)) {
        if (typeof v === 'number' && Number.isFinite(v)) (metrics[k as keyof TrainingValues] as Gauge).set(labels, v);
      }
    },
    checkpoint(seconds: number | undefined): void {
      metrics.checkpoints.inc(labels);
      if (typeof seconds === 'number' && Number.isFinite(seconds)) metrics.checkpointSeconds.observe(labels, seconds);
    },
    /** The unit's activity ended here (done, failed, or moved to another worker). */
    close(): void {
      setTimeout(() => {
        if (generations.get(key) !== generation) return;
        generations.delete(key);
        for (const m of Object.values(metrics)) m.remove(labels);
      }, KEEP_AFTER_CLOSE_MS).unref();
    },
  };
}
export type TrainingMetrics = ReturnType<typeof trainingMetrics>;

export interface MetricsEndpoint {
  /** URL of the combined endpoint. */
  url: string;
  /** URL of the Temporal core's own endpoint. */
  temporalUrl: string;
  close(): Promise<void>;
}

function portFromEnv(name: string, fallback?: number): number | undefined {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new Error(`${name} must be a TCP port 1-65535 (got "${raw}")`);
  return n;
}

/**
 * When FORGE_METRICS_PORT is set: install the Temporal runtime with its Prometheus exporter (must happen
 * before the first worker or connection of this process) and serve the combined endpoint. Returns null when
 * the variable is unset (the caller installs its runtime, if any, itself). FORGE_METRICS_HOST (default 0.0.0.0)
 * is the address both listen on. `runtime` adds other runtime options (a logger).
 */
export async function startWorkerMetrics(pipeline: string, runtime: RuntimeOptions = {}): Promise<MetricsEndpoint | null> {
  const port = portFromEnv('FORGE_METRICS_PORT');
  if (port === undefined) return null;
  const corePort = portFromEnv('FORGE_TEMPORAL_METRICS_PORT', port + 1) as number;
  if (corePort === port) throw new Error(`FORGE_TEMPORAL_METRICS_PORT must differ from FORGE_METRICS_PORT (${port})`);
  const host = process.env.FORGE_METRICS_HOST || '0.0.0.0';
  Runtime.install({
    ...runtime,
    telemetryOptions: {
      ...runtime.telemetryOptions,
      metrics: { prometheus: { bindAddress: `${host}:${corePort}` }, globalTags: { forge_pipeline: pipeline } },
    },
  });
  const local = host === '0.0.0.0' ? '127.0.0.1' : host;
  const temporalUrl = `http://${local}:${corePort}/metrics`;
  const server = http.createServer((req, res) => {
    if (req.method !== 'GET' || !req.url?.startsWith('/metrics')) {
      res.writeHead(404).end('see /metrics\n');
      return;
    }
    void (async () => {
      const own = await registry.metrics();
      const core = await fetch(temporalUrl, { signal: AbortSignal.timeout(2000) })
        .then((r) => (r.ok ? r.text() : `# Temporal runtime metrics unavailable: HTTP ${r.status} from ${temporalUrl}\n`))
        .catch((err: Error) => `# Temporal runtime metrics unavailable: ${err.message} (${temporalUrl})\n`);
      res.writeHead(200, { 'Content-Type': registry.contentType }).end(`${own}\n${core}`);
    })().catch((err: Error) => res.writeHead(500).end(`${err.message}\n`));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) => reject(new Error(`FORGE_METRICS_PORT ${port}: cannot listen on ${host}:${port}: ${err.message}`)));
    server.listen(port, host, () => resolve());
  });
  return {
    url: `http://${local}:${port}/metrics`,
    temporalUrl,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
