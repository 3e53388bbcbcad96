// Does skipping halted positions' compute in ACT training pay on the native backend (issue 10)?
//
// One training step (forward + backward, no optimiser) of the same model on the same batch, two ways:
//   masked   every block runs on every position and halted ones keep their state (select): the default
//   skip     forward({ skipHalted: true }): each block runs only on the positions still running
//            (gathered, attention against every position's current state, scattered back)
//   auto     forward({ skipHalted: 'auto' }), what the trainer uses: skip a block when at least half the
//            positions have halted before it
// The halting units are set so positions halt at different depths: weights drawn N(0, σ²) with
// σ = 3 / (0.02·√dModel), so that w·s spreads over a few units for states of the embedding's scale, bias
// `--bias` (the measured mean depth and skipped share are reported).
// Both paths must give the same loss and gradients (max |Δ| reported, relative to the largest gradient).
// Arms alternate step by step so that load from other work on the machine hits both alike.
//
//   npx tsx bench/act-skip.ts [--size default|small --steps 4 --bias -2 --out bench/results/act-skip.json]
// default: the Cognate defaults (dModel 216, 11 blocks, dFF 1152, vocab 32000, seqLen 512, batch 2), memory off;
// small:   dModel 64, 6 blocks, dFF 256, vocab 512, seqLen 128, batch 4.
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { backendInfo, initBackend, type BackendChoice } from '../common/backend';
import { writeJsonAtomic } from '../common/export/files';
import { CognateModel, type ModelConfigInput } from '../activities/cognate/engine/model';
import { Rng } from '../common/rng';
import { benchConditions } from './conditions';
import { parseFlags } from './flags';

const SIZES: Record<string, { model: ModelConfigInput; seqLen: number; batch: number }> = {
  default: { model: { actEnabled: true, memEnabled: false }, seqLen: 512, batch: 2 },
  small: {
    model: { dModel: 64, nLayers: 6, dFF: 256, vocabSize: 512, maxSeqLen: 128, actEnabled: true, memEnabled: false },
    seqLen: 128,
    batch: 4,
  },
};

/** Loss and gradients of one step; the skip path also returns the mean depth the forward ran. */
function step(model: CognateModel, tokens: tf.Tensor2D, targets: tf.Tensor2D, skipHalted: boolean | 'auto') {
  let meanDepth = NaN;
  const { value, grads } = tf.variableGrads(() => {
    const r = model.loss(tokens, targets, undefined, { training: true, skipHalted });
    meanDepth = r.meanDepth;
    return r.loss;
  });
  return { value, grads, meanDepth };
}

async function main(): Promise<void> {
  // --out defaults to the size's own file
  const { size, steps, bias, out: outFlag } = parseFlags({ size: 'default', steps: 4, bias: -2, out: '' }, process.argv.slice(2));
  const out = outFlag || path.join(__dirname, 'results', size === 'default' ? 'act-skip.json' : `act-skip-${size}.json`);
  const started = Date.now();
  const spec = SIZES[size];
  if (!spec) throw new Error(`--size must be one of ${Object.keys(SIZES).join(', ')} (got ${size})`);
  if (!Number.isInteger(steps) || steps < 1) throw new Error(`--steps must be a positive integer (got ${steps})`);
  const backend = await initBackend((process.env.FORGE_TF_BACKEND as BackendChoice | undefined) || 'tensorflow');
  const model = new CognateModel(spec.model, 1);
  const c = model.config;
  // Halting units: spread so that positions halt at different blocks.
  const rng = new Rng(2);
  const sigma = 3 / (0.02 * Math.sqrt(c.dModel)); // w·s of std ≈ 3 for states of the embedding's scale (std 0.02)
  for (const p of model.params) {
    if (p.name.endsWith('halting.weight')) p.variable.assign(tf.tensor2d(Array.from({ length: c.dModel }, () => [rng.normal() * sigma])));
    if (p.name.endsWith('halting.bias')) p.variable.assign(tf.tensor1d([bias]));
  }
  const ids = Int32Array.from({ length: spec.batch * spec.seqLen }, () => rng.int(c.vocabSize));
  const tokens = tf.tensor2d(ids, [spec.batch, spec.seqLen], 'int32');
  const targets = tf.tensor2d(
    ids.map((_, i) => ids[(i + 1) % ids.length]),
    [spec.batch, spec.seqLen],
    'int32',
  );

  // Equality of the two paths on this batch.
  const masked = step(model, tokens, targets, false);
  const skip = step(model, tokens, targets, true);
  let maxDiff = 0;
  let maxGrad = 0;
  for (const name of Object.keys(masked.grads)) {
    maxDiff = Math.max(
      maxDiff,
      tf.tidy(() => masked.grads[name].sub(skip.grads[name]).abs().max().dataSync()[0]),
    );
    maxGrad = Math.max(
      maxGrad,
      tf.tidy(() => masked.grads[name].abs().max().dataSync()[0]),
    );
  }
  const lossDiff = Math.abs(masked.value.dataSync()[0] - skip.value.dataSync()[0]);
  const meanDepth = skip.meanDepth;
  tf.dispose([masked.value, skip.value, ...Object.values(masked.grads), ...Object.values(skip.grads)]);
  console.error(
    `mean depth ${meanDepth.toFixed(2)} of ${c.nLayers}; |Δloss| ${lossDiff.toExponential(2)}, max |Δgrad| ${maxDiff.toExponential(2)} (max |grad| ${maxGrad.toExponential(2)})`,
  );

  const times: Record<'masked' | 'skip' | 'auto', number[]> = { masked: [], skip: [], auto: [] };
  const load = [os.loadavg()[0]];
  for (let i = 0; i < steps; i++) {
    for (const arm of i % 2 === 0 ? (['masked', 'skip', 'auto'] as const) : (['auto', 'skip', 'masked'] as const)) {
      const t0 = performance.now();
      const r = step(model, tokens, targets, arm === 'masked' ? false : arm === 'skip' ? true : 'auto');
      Object.values(r.grads).forEach((g) => g.dataSync()); // wait for the backward
      times[arm].push((performance.now() - t0) / 1000);
      tf.dispose([r.value, ...Object.values(r.grads)]);
    }
    load.push(os.loadavg()[0]);
    console.error(
      `step ${i + 1}: masked ${times.masked[i].toFixed(2)} s, skip ${times.skip[i].toFixed(2)} s, auto ${times.auto[i].toFixed(2)} s`,
    );
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const result = {
    size,
    model: { ...spec.model, nLayers: c.nLayers, dModel: c.dModel, dFF: c.dFF, vocabSize: c.vocabSize },
    batch: spec.batch,
    seqLen: spec.seqLen,
    halting: { weightStd: sigma, bias, meanDepth, skippedShare: 1 - meanDepth / c.nLayers },
    equality: { lossAbsDiff: lossDiff, gradMaxAbsDiff: maxDiff, gradMaxAbs: maxGrad },
    stepSeconds: times,
    medianStepSeconds: { masked: median(times.masked), skip: median(times.skip), auto: median(times.auto) },
    speedup: { skip: median(times.masked) / median(times.skip), auto: median(times.masked) / median(times.auto) },
    note: 'one forward + backward per step (no optimiser); arms alternate',
    backendInfo: backendInfo(),
    conditions: { ...benchConditions(backend, started), loadAverage1mEachStep: load },
  };
  writeJsonAtomic(out, result);
  model.dispose();
  tf.dispose([tokens, targets]);
  console.error(`wrote ${out}`);
  console.log(JSON.stringify({ size, meanDepth, ...result.medianStepSeconds, speedup: result.speedup, gradMaxAbsDiff: maxDiff }));
}

if (require.main === module) {
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
