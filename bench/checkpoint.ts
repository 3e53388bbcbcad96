// Checkpoint cost of the default 25M Cognate model: save (capture tensors → file with sha256, fsync,
// rename) and load (read, verify, decode, assign) of weights + AdamW moments + GrokFast EMA + LTM bank,
// against the disk's own rate for a plain write + fsync of the same number of bytes in the same run.
// The state is real: one training step of the model on a small seeded batch fills moments and EMA.
//
//   npx tsx bench/checkpoint.ts [--dir <scratch dir on the checkpoint disk>]   → bench/results/checkpoint.json
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import os from 'node:os';
import * as tf from '@tensorflow/tfjs-core';
import { backendInfo, initBackend } from '../common/backend';
import { loadEnv } from '../common/env';
import { readCheckpoint, saveCheckpoint } from '../common/checkpoint';
import { TrainSampler } from '../activities/cognate/engine/data';
import { CognateModel } from '../activities/cognate/engine/model';
import { globalNorm } from '../common/optim';
import { Rng } from '../common/rng';
import {
  captureTrainingState,
  emptyProgress,
  makeGrokFast,
  makeOptimizer,
  modelConfigOf,
  restoreTrainingState,
  type CheckpointState,
} from '../activities/cognate/engine/trainer';
import { CognateConfigSchema } from '../activities/cognate/config';

const MB = 1024 * 1024;

/** Plain sequential write of `bytes` in 16 MiB chunks, then fsync: what the disk itself sustains. */
function diskWriteSeconds(file: string, bytes: number): number {
  const chunk = crypto.randomBytes(16 * MB); // incompressible, like float weights
  const started = performance.now();
  const fd = fs.openSync(file, 'w');
  for (let done = 0; done < bytes; done += chunk.length) fs.writeSync(fd, chunk, 0, Math.min(chunk.length, bytes - done));
  fs.fsyncSync(fd);
  fs.closeSync(fd);
  const seconds = (performance.now() - started) / 1000;
  fs.rmSync(file);
  return seconds;
}

function sha256Seconds(bytes: number): number {
  const chunk = crypto.randomBytes(16 * MB);
  const hash = crypto.createHash('sha256');
  const started = performance.now();
  for (let done = 0; done < bytes; done += chunk.length) hash.update(chunk.subarray(0, Math.min(chunk.length, bytes - done)));
  hash.digest();
  return (performance.now() - started) / 1000;
}

function argValue(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

async function main(): Promise<void> {
  const backend = await initBackend();
  const dir = argValue('dir') ?? path.join(loadEnv().dataDir, 'bench', `checkpoint-${process.pid}`);
  fs.mkdirSync(dir, { recursive: true });
  const config = CognateConfigSchema.parse({ seqLen: 64, batchSize: 1 }); // default 25M architecture; a short batch keeps the one real step quick
  const seed = 1337;

  console.error(`building the default Cognate model on ${backend.backend} ...`);
  const model = new CognateModel(modelConfigOf(config), seed);
  const parameters = model.parameterCount();
  const optimizer = makeOptimizer(model, config);
  const grokfast = makeGrokFast(config);
  const rng = new Rng(seed);
  const tokens = Uint16Array.from({ length: 4096 }, () => rng.int(config.vocabSize));
  const sampler = new TrainSampler({ name: 'train', tokens, documents: 1 }, config.seqLen, config.batchSize, seed);
  const progress = emptyProgress();

  // One real step so the moments, the EMA and the LTM bank hold training values, not zeros.
  console.error('one training step to fill optimizer and filter state ...');
  const stepStarted = performance.now();
  const batch = sampler.nextBatch();
  const input = tf.tensor2d(batch.inputs, [1, config.seqLen], 'int32');
  const target = tf.tensor2d(batch.targets, [1, config.seqLen], 'int32');
  const kept: { keys: tf.Tensor4D; values: tf.Tensor4D; tokenLosses: tf.Tensor2D }[] = [];
  const { value, grads } = tf.variableGrads(() => {
    const out = model.loss(input, target, undefined, { training: true });
    kept.push({
      keys: tf.keep(out.memoryEntries!.keys),
      values: tf.keep(out.memoryEntries!.values),
      tokenLosses: tf.keep(out.tokenLosses),
    });
    return out.loss;
  });
  const byName: tf.NamedTensorMap = {};
  model.params.forEach((p) => {
    if (grads[p.variable.name]) byName[p.name] = grads[p.variable.name];
  });
  const filtered = grokfast.apply(byName);
  optimizer.update(filtered, config.learningRate);
  const loss = value.dataSync()[0];
  const gradNorm = globalNorm(byName);
  const memoryWrite = model.writeMemory(kept[0], kept[0].tokenLosses); // after the step, as in training
  tf.dispose([value, grads, filtered, input, target, kept[0].keys, kept[0].values, kept[0].tokenLosses]);
  const stepSeconds = (performance.now() - stepStarted) / 1000;

  const job = { modelName: 'bench', seed, config };
  const modelConfig = model.config;
  const parts = { model, optimizer, grokfast, sampler, progress };

  const runs: { captureSeconds: number; writeSeconds: number; readVerifySeconds: number; restoreSeconds: number; bytes: number }[] = [];
  for (let rep = 0; rep < 2; rep++) {
    let t = performance.now();
    const state = captureTrainingState({ ...parts, job, modelConfig, backend, step: 1 });
    const captureSeconds = (performance.now() - t) / 1000;
    const saved = saveCheckpoint(dir, 1, state, 1);
    t = performance.now();
    const loaded = readCheckpoint<CheckpointState>(saved.path);
    const readVerifySeconds = (performance.now() - t) / 1000;
    t = performance.now();
    restoreTrainingState(loaded.state, parts);
    const restoreSeconds = (performance.now() - t) / 1000;
    runs.push({ captureSeconds, writeSeconds: saved.seconds, readVerifySeconds, restoreSeconds, bytes: saved.bytes });
    console.error(
      `save: capture ${captureSeconds.toFixed(2)} s + write ${saved.seconds.toFixed(2)} s (${(saved.bytes / MB).toFixed(0)} MiB); load: read+verify ${readVerifySeconds.toFixed(2)} s + restore ${restoreSeconds.toFixed(2)} s`,
    );
  }
  const bytes = runs[0].bytes;
  const diskSeconds = [
    diskWriteSeconds(path.join(dir, 'plain-write.bin'), bytes),
    diskWriteSeconds(path.join(dir, 'plain-write.bin'), bytes),
  ];
  const hashSeconds = sha256Seconds(bytes);
  fs.rmSync(dir, { recursive: true, force: true });

  const best = <K extends keyof (typeof runs)[number]>(k: K): number => Math.min(...runs.map((r) => r[k]));
  const diskBest = Math.min(...diskSeconds);
  const result = {
    model: { parameters: parameters.total, breakdown: parameters.breakdown, config: modelConfig },
    state: {
      bytes,
      mib: bytes / MB,
      contents:
        'weights + AdamW m, v + GrokFast EMA (mode ' +
        config.grokfastMode +
        ') + LTM bank (capacity ' +
        config.memCapacity +
        ') + sampler/RNG + config',
      grokfastFloats: grokfast.stateSize(),
      ltmFill: model.memory?.size ?? 0,
    },
    realStep: {
      seconds: stepSeconds,
      loss,
      gradNorm,
      ltmWritten: memoryWrite.written,
      batch: `${config.batchSize} x ${config.seqLen} tokens`,
    },
    // Shared cores: the load average says how much the figures below were disturbed.
    conditions: { loadAverageAtEnd: os.loadavg().map((x) => Number(x.toFixed(2))), cpus: os.cpus().length },
    save: {
      captureSeconds: best('captureSeconds'),
      writeSeconds: best('writeSeconds'),
      totalSeconds: best('captureSeconds') + best('writeSeconds'),
    },
    load: {
      readVerifySeconds: best('readVerifySeconds'),
      restoreSeconds: best('restoreSeconds'),
      totalSeconds: best('readVerifySeconds') + best('restoreSeconds'),
    },
    disk: {
      plainWriteFsyncSeconds: diskBest,
      plainWriteMiBps: bytes / MB / diskBest,
      checkpointWriteMiBps: bytes / MB / best('writeSeconds'),
      sha256MiBps: bytes / MB / hashSeconds,
    },
    checkpointWriteVsDisk: best('writeSeconds') / diskBest,
    runs,
    diskRuns: diskSeconds,
    backend: backendInfo(),
    dir,
    note: 'best of 2 repetitions each; writeSeconds includes sha256 over the file, fsync, rename and directory fsync; the plain write uses random bytes and one fsync',
    measuredAt: new Date().toISOString(),
  };
  const outFile = path.join(__dirname, 'results', 'checkpoint.json');
  fs.mkdirSync(path.dirname(outFile), { recursive: true });
  fs.writeFileSync(outFile, JSON.stringify(result, null, 2) + '\n');
  console.log(
    JSON.stringify({
      mib: Math.round(result.state.mib),
      saveSeconds: result.save.totalSeconds,
      loadSeconds: result.load.totalSeconds,
      diskWriteMiBps: result.disk.plainWriteMiBps,
      checkpointWriteMiBps: result.disk.checkpointWriteMiBps,
    }),
  );
  optimizer.dispose();
  grokfast.dispose();
  model.dispose();
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
