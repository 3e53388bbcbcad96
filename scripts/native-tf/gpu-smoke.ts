// GPU smoke test for a GPU worker (run through scripts/gpu-smoke): the native backend must be
// @tensorflow/tfjs-node-gpu running on a CUDA device; then a few training steps of the default Cognate
// model (ACT + LTM, AdamW) run on it and tokens/s is printed. Exit codes: 0 ok, 1 no GPU in use,
// 2 native backend missing, 3 training produced a non-finite loss.
import { execFileSync } from 'node:child_process';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../common/backend';
import { CognateModel, type MemoryEntries } from '../../activities/cognate/engine/model';
import { AdamW } from '../../common/optim';
import { Rng } from '../../common/rng';

const STEPS = Number(process.env.GPU_SMOKE_STEPS || 6);
const BATCH = Number(process.env.GPU_SMOKE_BATCH || 8);
const SEQ = 512;

function nvidiaSmi(): string {
  try {
    return execFileSync('nvidia-smi', ['--query-gpu=name,driver_version,memory.total', '--format=csv,noheader'], {
      encoding: 'utf8',
      timeout: 20000,
    }).trim();
  } catch {
    return 'nvidia-smi not found or failed (no NVIDIA driver?)';
  }
}

async function main(): Promise<number> {
  console.log(`nvidia-smi: ${nvidiaSmi()}`);
  let info;
  try {
    info = await initBackend('tensorflow');
  } catch (err) {
    console.error(`FAIL: ${(err as Error).message}\nInstall the GPU build with: FORGE_TF_GPU=1 npm ci (see README "Native TensorFlow").`);
    return 2;
  }
  console.log(`backend: ${info.backend}, device: ${info.device}, package: ${info.package}`);
  if (info.package !== '@tensorflow/tfjs-node-gpu' || !info.device.startsWith('gpu')) {
    console.error(
      'FAIL: no GPU found: TensorFlow uses no CUDA device. Its log above says why (driver, CUDA libraries); ' +
        'the GPU build comes from FORGE_TF_GPU=1 npm ci.',
    );
    return 1;
  }
  const model = new CognateModel({}, 1234);
  const c = model.config;
  console.log(
    `Cognate default config: ${model.parameterCount().total} parameters, batch ${BATCH} x seqLen ${SEQ}, ${STEPS} steps (the first is warm-up)`,
  );
  const optimizer = new AdamW(model.params, { beta1: 0.9, beta2: 0.95, epsilon: 1e-8, weightDecay: 0.01, decoupled: true });
  const rng = new Rng(7);
  const rates: number[] = [];
  for (let step = 1; step <= STEPS; step++) {
    const tokens = tf.tensor2d(
      Int32Array.from({ length: BATCH * SEQ }, () => rng.int(c.vocabSize)),
      [BATCH, SEQ],
      'int32',
    );
    const targets = tf.tensor2d(
      Int32Array.from({ length: BATCH * SEQ }, () => rng.int(c.vocabSize)),
      [BATCH, SEQ],
      'int32',
    );
    const start = performance.now();
    let entries: MemoryEntries | null = null;
    let tokenLosses: tf.Tensor2D | null = null;
    const { value, grads } = tf.variableGrads(() => {
      const out = model.loss(tokens, targets, undefined, { training: true });
      if (out.memoryEntries) entries = { keys: tf.keep(out.memoryEntries.keys), values: tf.keep(out.memoryEntries.values) };
      tokenLosses = tf.keep(out.tokenLosses);
      return out.loss;
    });
    const byName: tf.NamedTensorMap = {};
    for (const p of model.params) if (grads[p.variable.name]) byName[p.name] = grads[p.variable.name];
    optimizer.update(byName, 1e-3);
    const kept = entries as MemoryEntries | null; // assigned inside the closure: TypeScript's narrowing does not see it
    if (kept) model.writeMemory(kept, tokenLosses!);
    const loss = value.dataSync()[0];
    const seconds = (performance.now() - start) / 1000;
    tf.dispose([tokens, targets, value, tokenLosses!, ...(kept ? [kept.keys, kept.values] : []), ...Object.values(grads)]);
    const rate = (BATCH * SEQ) / seconds;
    if (step > 1) rates.push(rate);
    console.log(
      `step ${step}: loss ${loss.toFixed(4)}, ${seconds.toFixed(3)} s, ${Math.round(rate)} tokens/s${step === 1 ? ' (warm-up)' : ''}`,
    );
    if (!Number.isFinite(loss)) {
      console.error('FAIL: non-finite loss');
      return 3;
    }
  }
  const mean = rates.reduce((a, b) => a + b, 0) / Math.max(rates.length, 1);
  console.log(`OK: ${Math.round(mean)} tokens/s on ${info.device} (mean of ${rates.length} steps after warm-up)`);
  model.dispose();
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(err);
    process.exit(2);
  },
);
