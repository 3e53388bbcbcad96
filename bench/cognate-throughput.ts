// Cognate training throughput: tokens/s of a full training step (forward, backward, AdamW update, LTM
// write), model FLOPs utilisation against the matmul rate this backend reaches in the same run, and
// peak resident memory. Each preset runs in its own process so its peak RSS is its own.
//
//   npx tsx bench/cognate-throughput.ts            all presets → bench/results/cognate-throughput.json
//   npx tsx bench/cognate-throughput.ts --preset tiny --steps 3   one preset, JSON on stdout
//
// MFU follows PaLM (Chowdhery et al. 2022, app. B): model FLOPs per token = 6·N + 12·L·C·T, N the
// parameters that multiply (all but the embedding lookup), at the peak matmul rate measured below.
// The LTM search (q·Kᵀ over the bank) and the ACT bookkeeping are extra work MFU does not credit.
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend, type BackendInfo } from '../common/backend';
import { writeJsonAtomic } from '../common/export/files';
import { CognateModel, type ModelConfigInput } from '../activities/cognate/engine/model';
import { AdamW } from '../common/optim';
import { Rng } from '../common/rng';

interface Preset {
  description: string;
  model: ModelConfigInput;
  batchSize: number;
  seqLen: number;
  steps: number;
}

const PRESETS: Record<string, Preset> = {
  tiny: {
    description: 'tiny Cognate (ACT + LTM on), 2 layers of width 64',
    model: { dModel: 64, nLayers: 2, nHeads: 4, dFF: 256, vocabSize: 512, maxSeqLen: 128, dMem: 64, memCapacity: 256 },
    batchSize: 4,
    seqLen: 128,
    steps: 5,
  },
  default: {
    description: 'default Cognate config (25M, ACT + LTM on) at seqLen 512, batch 1',
    model: {},
    batchSize: 1,
    seqLen: 512,
    steps: 3,
  },
};

interface PresetResult {
  preset: string;
  description: string;
  config: ModelConfigInput;
  parameters: number;
  matmulParameters: number;
  batchSize: number;
  seqLen: number;
  tokensPerStep: number;
  stepSeconds: number[];
  warmupStepSeconds: number;
  tokensPerSecond: number;
  modelFlopsPerStep: number;
  achievedGflops: number;
  mfu: number;
  peakMatmulGflops: number;
  matmulRates: { shape: string; gflops: number }[];
  losses: number[];
  meanDepth: number;
  ltm: { fill: number; writes: number } | null;
  peakRssMiB: number;
  backend: BackendInfo;
}

/** GFLOP/s of plain 2-D matMuls [m, k] x [k, n], each timed for about `ms`. */
function measureMatmul(shapes: [number, number, number][], ms: number): { shape: string; gflops: number }[] {
  return shapes.map(([m, k, n]) => {
    const a = tf.randomNormal([m, k], 0, 1, 'float32', 1);
    const b = tf.randomNormal([k, n], 0, 1, 'float32', 2);
    tf.matMul(a, b).dispose(); // warm-up
    let reps = 0;
    const start = performance.now();
    while (performance.now() - start < ms || reps < 3) {
      const c = tf.matMul(a, b);
      c.dataSync();
      c.dispose();
      reps++;
    }
    const seconds = (performance.now() - start) / 1000;
    tf.dispose([a, b]);
    return { shape: `[${m},${k}]x[${k},${n}]`, gflops: (2 * m * k * n * reps) / seconds / 1e9 };
  });
}

/** Best rate per shape over several measurements. */
function bestRates(runs: { shape: string; gflops: number }[][]): { shape: string; gflops: number }[] {
  return runs[0].map((r, i) => ({ shape: r.shape, gflops: Math.max(...runs.map((run) => run[i].gflops)) }));
}

async function runPreset(name: string, stepsOverride?: number): Promise<PresetResult> {
  const preset = PRESETS[name];
  if (!preset) throw new Error(`unknown preset "${name}" (have ${Object.keys(PRESETS).join(', ')})`);
  const backend = await initBackend();
  const model = new CognateModel(preset.model, 1234);
  const c = model.config;
  const { total } = model.parameterCount();
  const matmulParameters = total - c.vocabSize * c.dModel; // the embedding is a lookup
  // The model's own matmul shapes plus a square one. Other processes share the CPU, so the rate is measured
  // before and between the steps and the best is kept: the backend's demonstrated peak in this run.
  const matmulShapes: [number, number, number][] = [
    [preset.batchSize * preset.seqLen, c.dModel, c.dFF],
    [preset.batchSize * preset.seqLen, c.dModel, c.vocabSize],
    [preset.seqLen, c.dModel / c.nHeads, preset.seqLen],
    [512, 512, 512],
  ];
  const rateRuns = [measureMatmul(matmulShapes, 1000)];

  const optimizer = new AdamW(model.params, { beta1: 0.9, beta2: 0.95, epsilon: 1e-8, weightDecay: 0.01, decoupled: true });
  const rng = new Rng(99);
  const tokensPerStep = preset.batchSize * preset.seqLen;
  const batch = (): { tokens: tf.Tensor2D; targets: tf.Tensor2D } => {
    const ids = Int32Array.from({ length: preset.batchSize * (preset.seqLen + 1) }, () => rng.int(c.vocabSize));
    const rows = (offset: number): Int32Array =>
      Int32Array.from({ length: tokensPerStep }, (_, i) => ids[Math.floor(i / preset.seqLen) * (preset.seqLen + 1) + (i % preset.seqLen) + offset]);
    return { tokens: tf.tensor2d(rows(0), [preset.batchSize, preset.seqLen], 'int32'), targets: tf.tensor2d(rows(1), [preset.batchSize, preset.seqLen], 'int32') };
  };
  const step = (): { seconds: number; loss: number; meanDepth: number } => {
    const { tokens, targets } = batch();
    const start = performance.now();
    let entries: { keys: tf.Tensor4D; values: tf.Tensor4D } | null = null;
    let tokenLosses: tf.Tensor2D | null = null;
    let meanDepth = 0;
    const { value, grads } = tf.variableGrads(() => {
      const out = model.loss(tokens, targets, undefined, { training: true });
      if (out.memoryEntries) entries = { keys: tf.keep(out.memoryEntries.keys), values: tf.keep(out.memoryEntries.values) };
      tokenLosses = tf.keep(out.tokenLosses);
      meanDepth = out.meanDepth;
      return out.loss;
    });
    const byName: tf.NamedTensorMap = {};
    for (const p of model.params) if (grads[p.variable.name]) byName[p.name] = grads[p.variable.name];
    optimizer.update(byName, 1e-3);
    const kept = entries as { keys: tf.Tensor4D; values: tf.Tensor4D } | null;
    if (kept) model.writeMemory(kept, tokenLosses!);
    const loss = value.dataSync()[0]; // waits for the device: the step is done
    const seconds = (performance.now() - start) / 1000;
    tf.dispose([value, tokens, targets, ...(kept ? [kept.keys, kept.values] : []), tokenLosses!, ...Object.values(grads)]);
    return { seconds, loss, meanDepth };
  };

  const warmup = step(); // first-call kernel set-up and bank fill
  const steps = Array.from({ length: stepsOverride ?? preset.steps }, () => {
    const s = step();
    rateRuns.push(measureMatmul(matmulShapes, 300));
    return s;
  });
  const rates = bestRates(rateRuns);
  const peakMatmulGflops = Math.max(...rates.map((r) => r.gflops));
  const stepSeconds = steps.map((s) => s.seconds);
  const median = [...stepSeconds].sort((a, b) => a - b)[Math.floor(stepSeconds.length / 2)];
  const modelFlopsPerStep = tokensPerStep * (6 * matmulParameters + 12 * c.nLayers * c.dModel * preset.seqLen);
  const achievedGflops = modelFlopsPerStep / median / 1e9;
  const stats = model.memory?.stats();
  const result: PresetResult = {
    preset: name,
    description: preset.description,
    config: model.config,
    parameters: total,
    matmulParameters,
    batchSize: preset.batchSize,
    seqLen: preset.seqLen,
    tokensPerStep,
    stepSeconds,
    warmupStepSeconds: warmup.seconds,
    tokensPerSecond: tokensPerStep / median,
    modelFlopsPerStep,
    achievedGflops,
    mfu: achievedGflops / peakMatmulGflops,
    peakMatmulGflops,
    matmulRates: rates,
    losses: [warmup.loss, ...steps.map((s) => s.loss)],
    meanDepth: steps[steps.length - 1].meanDepth,
    ltm: stats ? { fill: stats.fill, writes: stats.writes } : null,
    peakRssMiB: process.resourceUsage().maxRSS / 1024,
    backend,
  };
  optimizer.dispose();
  model.dispose();
  return result;
}

function arg(flag: string): string | undefined {
  const i = process.argv.indexOf(flag);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

async function main(): Promise<void> {
  const preset = arg('--preset');
  const steps = arg('--steps') ? Number(arg('--steps')) : undefined;
  if (preset) {
    process.stdout.write(JSON.stringify(await runPreset(preset, steps)) + '\n');
    return;
  }
  const loadBefore = os.loadavg();
  const results: PresetResult[] = [];
  for (const name of Object.keys(PRESETS)) {
    const out = execFileSync(process.execPath, ['--import', 'tsx', __filename, '--preset', name, ...(steps ? ['--steps', String(steps)] : [])], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
      maxBuffer: 1 << 24,
    });
    const r = JSON.parse(out.trim().split('\n').pop()!) as PresetResult;
    results.push(r);
    console.log(
      `${name.padEnd(8)} ${r.parameters.toLocaleString('en-US').padStart(11)} params  ${r.tokensPerSecond.toFixed(1).padStart(8)} tok/s  ` +
        `step ${r.stepSeconds.map((s) => s.toFixed(2)).join('/')} s  ${r.achievedGflops.toFixed(2)} GFLOP/s  MFU ${(100 * r.mfu).toFixed(1)}% ` +
        `(peak matmul ${r.peakMatmulGflops.toFixed(1)} GFLOP/s)  depth ${r.meanDepth.toFixed(2)}  peak RSS ${r.peakRssMiB.toFixed(0)} MiB`,
    );
  }
  const report = {
    benchmark: 'cognate-throughput',
    date: new Date().toISOString(),
    host: { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? 'unknown', totalMemGiB: os.totalmem() / 2 ** 30, node: process.version },
    // Other processes share the CPU; the load average says how much of it this run could use.
    loadAverageBefore: loadBefore,
    loadAverageAfter: os.loadavg(),
    step: 'forward + backward (tf.variableGrads) + AdamW update (activities/cognate/engine/optim.ts) + LTM write',
    mfuDefinition:
      'tokens/step * (6 * matmul parameters + 12 * nLayers * dModel * seqLen) / median step time / best 2-D matMul rate measured before and between the steps',
    results,
  };
  const file = path.join(__dirname, 'results', 'cognate-throughput.json');
  writeJsonAtomic(file, report);
  console.log(`wrote ${path.relative(process.cwd(), file)}`);
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
