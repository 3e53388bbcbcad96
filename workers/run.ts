// Worker bootstrap shared by both pipelines: connection from the environment, the task queue from
// common/constants, graceful shutdown on SIGINT/SIGTERM (running activities are cancelled after the
// grace time, write a checkpoint, and are retried by another worker).
import type { Client } from '@temporalio/client';
import { Worker, type WorkerOptions } from '@temporalio/worker';
import { TASK_QUEUES, type Pipeline } from '../common/constants';
import { loadEnv, type ForgeEnv } from '../common/env';
import { startWorkerMetrics } from '../common/metrics';
import { connectClient, connectWorker } from '../common/temporal';

export interface ForgeWorkerSpec {
  pipeline: Pipeline;
  workflowsPath: string;
  activities: (deps: { client: Client; dataDir: string }) => object;
  /** Concurrent activity executions on this worker. */
  maxConcurrentActivities: number;
}

export interface ForgeWorker {
  worker: Worker;
  client: Client;
  env: ForgeEnv;
  /** Close connections once the worker stopped. */
  close(): Promise<void>;
}

export async function createForgeWorker(
  spec: ForgeWorkerSpec,
  overrides: Partial<WorkerOptions> = {},
  env: ForgeEnv = loadEnv(),
): Promise<ForgeWorker> {
  const client = await connectClient(env);
  const connection = await connectWorker(env);
  const worker = await Worker.create({
    connection,
    namespace: env.temporalNamespace,
    taskQueue: TASK_QUEUES[spec.pipeline],
    workflowsPath: spec.workflowsPath,
    activities: spec.activities({ client, dataDir: env.dataDir }),
    maxConcurrentActivityTaskExecutions: spec.maxConcurrentActivities,
    shutdownGraceTime: '20 seconds',
    // Cancellation reaches an activity only with a heartbeat sent to the server: flush them every few
    // seconds (the default can wait up to 80% of the heartbeat timeout) so training stops within seconds.
    maxHeartbeatThrottleInterval: '3 seconds',
    defaultHeartbeatThrottleInterval: '3 seconds',
    ...overrides,
  });
  return {
    worker,
    client,
    env,
    close: async () => {
      await connection.close();
      await client.connection.close();
    },
  };
}

/** Run one worker until SIGINT/SIGTERM (the SDK installs the signal handlers). */
export async function runWorkerMain(spec: ForgeWorkerSpec): Promise<void> {
  // Before the worker: the Temporal runtime (and its Prometheus exporter) is installed once per process.
  const metrics = await startWorkerMetrics(spec.pipeline);
  if (metrics)
    console.log(`[forge] metrics at ${metrics.url} (training + Temporal runtime); Temporal runtime alone at ${metrics.temporalUrl}`);
  const forge = await createForgeWorker(spec);
  console.log(
    `[forge] ${spec.pipeline} worker polling task queue "${TASK_QUEUES[spec.pipeline]}" on ${forge.env.temporalAddress} ` +
      `(namespace ${forge.env.temporalNamespace}, data ${forge.env.dataDir}, ${spec.maxConcurrentActivities} concurrent activities, pid ${process.pid})`,
  );
  try {
    await forge.worker.run();
  } finally {
    await forge.close();
    await metrics?.close();
  }
}

export function intFromEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a positive integer (got "${raw}")`);
  return n;
}
