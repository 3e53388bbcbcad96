// Training metrics of a worker process (common/metrics.ts), in Prometheus' text format; the endpoint itself is
// scraped from real workers in observability.test.ts.
import { registry, startWorkerMetrics, trainingMetrics } from '../common/metrics';

const labels = (unit: string) => ({ pipeline: 'cognate', session: 'metrics-test', unit });

test('values are exposed with pipeline, session and unit labels; non-finite values are not recorded', async () => {
  const m = trainingMetrics(labels('m1'));
  m.set({ step: 12, loss: 3.5, tokensPerSecond: Number.NaN, ltmFill: null });
  m.checkpoint(0.3);
  m.checkpoint(undefined);
  const text = await registry.metrics();
  expect(text).toContain('forge_training_step{pipeline="cognate",session="metrics-test",unit="m1"} 12');
  expect(text).toContain('forge_training_loss{pipeline="cognate",session="metrics-test",unit="m1"} 3.5');
  expect(text).not.toMatch(/forge_training_tokens_per_second\{[^}]*unit="m1"/);
  expect(text).toContain('forge_checkpoints_total{pipeline="cognate",session="metrics-test",unit="m1"} 2');
  expect(text).toContain('forge_checkpoint_seconds_count{pipeline="cognate",session="metrics-test",unit="m1"} 1');
  expect(text).toContain('forge_checkpoint_seconds_bucket{le="0.5",pipeline="cognate",session="metrics-test",unit="m1"} 1');
});

test("a closed unit's series go away after the grace period, unless a newer attempt of the same unit records them", async () => {
  jest.useFakeTimers();
  try {
    const first = trainingMetrics(labels('m2'));
    first.set({ step: 5 });
    first.close();
    const retry = trainingMetrics(labels('m2')); // the activity was retried on this worker
    retry.set({ step: 6 });
    jest.advanceTimersByTime(6 * 60_000);
    expect(await registry.metrics()).toContain('forge_training_step{pipeline="cognate",session="metrics-test",unit="m2"} 6');
    retry.close();
    jest.advanceTimersByTime(6 * 60_000);
    expect(await registry.metrics()).not.toContain('unit="m2"');
  } finally {
    jest.useRealTimers();
  }
});

test('a bad FORGE_METRICS_PORT is rejected by name before anything is installed', async () => {
  const saved = { ...process.env };
  try {
    process.env.FORGE_METRICS_PORT = 'ninety';
    await expect(startWorkerMetrics('agent')).rejects.toThrow('FORGE_METRICS_PORT must be a TCP port 1-65535 (got "ninety")');
    process.env.FORGE_METRICS_PORT = '9464';
    process.env.FORGE_TEMPORAL_METRICS_PORT = '9464';
    await expect(startWorkerMetrics('agent')).rejects.toThrow('FORGE_TEMPORAL_METRICS_PORT must differ from FORGE_METRICS_PORT (9464)');
    delete process.env.FORGE_METRICS_PORT;
    await expect(startWorkerMetrics('agent')).resolves.toBeNull();
  } finally {
    process.env = saved;
  }
});
