// Cognate training throughput, side by side in one run: the same model config trained on the native
// TensorFlow backend, on wasm, and (when python3 has torch and transformers) by the PyTorch port
// activities/cognate/engine/hf/modeling_cognate.py driven by bench/cognate_torch_step.py. A fourth arm runs
// native TensorFlow with the wasm-shaped ops (FORGE_COGNATE_OPS=wasm, engine/layers.ts opStyle), so the
// per-backend op choice is measured in the same run.
//
//   npm run bench:cognate                                    default config (24.1M, seqLen 512, batch 1)
//   npm run bench:cognate -- --preset tiny --rounds 3        a quick check
//   npm run bench:cognate -- --arms native,torch --no-profile
//
// Every arm is its own long-lived child process (so its peak RSS is its own) that runs one training step per
// command: forward, backward, AdamW update (and the LTM write in tfjs). The parent interleaves the arms,
// one step each per round, so load from other processes on this shared machine falls on all of them alike;
// the figures are still noisy, and the load average of every round is recorded.
// tokens/s uses the median step. MFU follows PaLM (Chowdhery et al. 2022, app. B): model FLOPs per token =
// 6·N + 12·L·C·T, N the parameters that multiply (all but the embedding lookup), against the best fp32
// matmul rate that arm's own library reaches in this run at the model's shapes (tfjs matMul, torch.mm).
// The LTM search and the ACT bookkeeping are work MFU does not credit.
// Then one native step runs under tf.profile: where the time goes, by kernel and by stage.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend, type BackendInfo } from '../common/backend';
import { writeJsonAtomic } from '../common/export/files';
import { opStyle } from '../activities/cognate/engine/layers';
import { CognateModel, parseModelConfig, type ModelConfigInput } from '../activities/cognate/engine/model';
import type { ModelConfig } from '../activities/cognate/config';
import { AdamW } from '../common/optim';
import { Rng } from '../common/rng';

interface Preset {
  description: string;
  model: ModelConfigInput;
  batchSize: number;
  seqLen: number;
  rounds: number;
}

const PRESETS: Record<string, Preset> = {
  default: {
    description: 'default Cognate config (24.1M, ACT + LTM on) at seqLen 512, batch 1',
    model: {},
    batchSize: 1,
    seqLen: 512,
    rounds: 4,
  },
  tiny: {
    description: 'tiny Cognate (ACT + LTM on), 2 layers of width 64',
    model: { dModel: 64, nLayers: 2, nHeads: 4, dFF: 256, vocabSize: 512, maxSeqLen: 128, dMem: 64, memCapacity: 256 },
    batchSize: 4,
    seqLen: 128,
    rounds: 4,
  },
};

const ARMS = ['native', 'native-wasm-ops', 'wasm', 'torch'] as const;
type Arm = (typeof ARMS)[number];

type Rate = { shape: string; gflops: number };
type Shape = [number, number, number];

// ---------------------------------------------------------------- child: one tfjs arm

/** GFLOP/s of plain 2-D matMuls [m, k] x [k, n], each timed for about `ms`. */
function measureMatmul(shapes: Shape[], ms: number): Rate[] {
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

function emit(obj: unknown): void {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

async function tfjsChild(arm: Arm, preset: Preset): Promise<void> {
  if (arm === 'native-wasm-ops') process.env.FORGE_COGNATE_OPS = 'wasm';
  const backend: BackendInfo = await initBackend(arm === 'wasm' ? 'wasm' : 'tensorflow');
  const model = new CognateModel(preset.model, 1234);
  const c = model.config;
  const optimizer = new AdamW(model.params, { beta1: 0.9, beta2: 0.95, epsilon: 1e-8, weightDecay: 0.01, decoupled: true });
  const rng = new Rng(99);
  const { batchSize: B, seqLen: T } = preset;
  const batch = (): { tokens: tf.Tensor2D; targets: tf.Tensor2D } => {
    const ids = Int32Array.from({ length: B * (T + 1) }, () => rng.int(c.vocabSize));
    const rows = (offset: number): Int32Array =>
      Int32Array.from({ length: B * T }, (_, i) => ids[Math.floor(i / T) * (T + 1) + (i % T) + offset]);
    return { tokens: tf.tensor2d(rows(0), [B, T], 'int32'), targets: tf.tensor2d(rows(1), [B, T], 'int32') };
  };
  /** One training step; `stages` syncs between its parts to time them (the profile only). */
  const step = (stages = false): { seconds: number; loss: number; meanDepth: number; stageSeconds?: Record<string, number> } => {
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
    if (stages) value.dataSync();
    const t1 = performance.now();
    const byName: tf.NamedTensorMap = {};
    for (const p of model.params) if (grads[p.variable.name]) byName[p.name] = grads[p.variable.name];
    optimizer.update(byName, 1e-3);
    if (stages) model.params[model.params.length - 1].variable.dataSync();
    const t2 = performance.now();
    const kept = entries as { keys: tf.Tensor4D; values: tf.Tensor4D } | null;
    if (kept) model.writeMemory(kept, tokenLosses!);
    const loss = value.dataSync()[0]; // waits for the device: the step is done
    const end = performance.now();
    tf.dispose([value, tokens, targets, ...(kept ? [kept.keys, kept.values] : []), tokenLosses!, ...Object.values(grads)]);
    const stageSeconds = stages
      ? { forwardBackward: (t1 - start) / 1000, adamw: (t2 - t1) / 1000, ltmWrite: (end - t2) / 1000 }
      : undefined;
    return { seconds: (end - start) / 1000, loss, meanDepth, stageSeconds };
  };

  emit({ ready: { backend: backend.backend, device: backend.device, opStyle: opStyle(), parameters: model.parameterCount().total } });
  const lines = readline.createInterface({ input: process.stdin });
  for await (const line of lines) {
    const msg = JSON.parse(line) as { cmd: string; ms?: number; shapes?: Shape[] };
    if (msg.cmd === 'step') {
      const s = step();
      emit({ seconds: s.seconds, loss: s.loss, meanDepth: s.meanDepth, fill: model.memory?.stats().fill ?? 0 });
    } else if (msg.cmd === 'rate') {
      emit({ rates: measureMatmul(msg.shapes!, msg.ms!) });
    } else if (msg.cmd === 'profile') {
      const timed = step(true); // stage split (syncs between stages)
      let result: { seconds: number } = { seconds: 0 };
      const info = await tf.profile(() => {
        result = step();
      });
      const byKernel = new Map<string, { ms: number; calls: number }>();
      const byShape = new Map<string, { ms: number; calls: number }>();
      for (const k of info.kernels) {
        // tfjs-node reports wall time per kernel; nested custom-gradient scopes are reported too: skip them
        if (k.name === 'unnamed scope' || k.name === 'forward' || k.name === 'backward') continue;
        const ms = Number(k.kernelTimeMs) || 0;
        const add = (map: Map<string, { ms: number; calls: number }>, key: string): void => {
          const e = map.get(key) ?? { ms: 0, calls: 0 };
          e.ms += ms;
          e.calls++;
          map.set(key, e);
        };
        add(byKernel, k.name);
        add(byShape, `${k.name} ${JSON.stringify(k.inputShapes)}`);
      }
      const top = (map: Map<string, { ms: number; calls: number }>, n: number): { op: string; ms: number; calls: number }[] =>
        [...map]
          .sort((a, b) => b[1].ms - a[1].ms)
          .slice(0, n)
          .map(([op, e]) => ({ op, ms: Math.round(e.ms * 10) / 10, calls: e.calls }));
      const kernelMs = [...byKernel.values()].reduce((a, e) => a + e.ms, 0);
      emit({
        profile: {
          stepSecondsUnprofiled: timed.seconds,
          stageSeconds: timed.stageSeconds,
          profiledStepSeconds: result.seconds,
          kernelCalls: [...byKernel.values()].reduce((a, e) => a + e.calls, 0),
          kernelMs,
          byKernel: top(byKernel, 20),
          byKernelAndShape: top(byShape, 25),
        },
      });
    } else if (msg.cmd === 'finish') {
      emit({ peakRssMiB: process.resourceUsage().maxRSS / 1024 });
      break;
    }
  }
  lines.close();
  process.exit(0);
}

// ---------------------------------------------------------------- parent: interleave the arms

class ArmProcess {
  private readonly replies: string[] = [];
  private waiting: ((line: string) => void) | null = null;
  private stderrTail = '';

  constructor(
    readonly arm: Arm,
    readonly child: ChildProcessWithoutNullStreams,
  ) {
    readline.createInterface({ input: child.stdout }).on('line', (line) => {
      if (!line.startsWith('{')) return; // library chatter
      if (this.waiting) {
        const w = this.waiting;
        this.waiting = null;
        w(line);
      } else this.replies.push(line);
    });
    child.stderr.on('data', (d: Buffer) => (this.stderrTail = (this.stderrTail + d.toString()).slice(-4000)));
  }

  /** The next JSON reply; fails with the child's stderr tail if it exits first. */
  next<T>(): Promise<T> {
    const queued = this.replies.shift();
    if (queued) return Promise.resolve(JSON.parse(queued) as T);
    return new Promise((resolve, reject) => {
      const onExit = (code: number | null): void =>
        reject(new Error(`${this.arm} arm exited (${code}) before replying:\n${this.stderrTail}`));
      this.child.once('exit', onExit);
      this.waiting = (line) => {
        this.child.off('exit', onExit);
        resolve(JSON.parse(line) as T);
      };
    });
  }

  ask<T>(msg: unknown): Promise<T> {
    this.child.stdin.write(JSON.stringify(msg) + '\n');
    return this.next<T>();
  }
}

function torchAvailable(): { ok: boolean; why?: string } {
  const r = spawnSync('python3', ['-c', 'import torch, transformers, safetensors'], { encoding: 'utf8' });
  if (r.error) return { ok: false, why: `python3 not runnable: ${r.error.message}` };
  if (r.status !== 0) return { ok: false, why: `python3 lacks torch/transformers/safetensors: ${r.stderr.trim().split('\n').pop()}` };
  return { ok: true };
}

function nativeAvailable(): boolean {
  return spawnSync(process.execPath, ['-e', "require('@tensorflow/tfjs-node')"], { stdio: 'ignore' }).status === 0;
}

function startArm(arm: Arm, presetName: string, preset: Preset, config: ModelConfig): ArmProcess {
  const child =
    arm === 'torch'
      ? // OMP_WAIT_POLICY=PASSIVE: on this oversubscribed machine, OpenMP's default spin-waiting made torch's steps 3-7x
        // slower (measured 6-16 s vs 2.1 s per default step at load 8); an explicit setting is kept.
        spawn(
          'python3',
          [path.join(__dirname, 'cognate_torch_step.py'), JSON.stringify({ config, batchSize: preset.batchSize, seqLen: preset.seqLen })],
          {
            env: { OMP_WAIT_POLICY: 'PASSIVE', ...process.env },
          },
        )
      : spawn(process.execPath, ['--import', 'tsx', __filename, '--child', arm, '--preset', presetName], {
          env: { ...process.env, FORGE_COGNATE_OPS: '' },
        });
  return new ArmProcess(arm, child);
}

function arg(flag: string): string | undefined {
  const i = process.argv.indexOf(flag);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main(): Promise<void> {
  const presetName = arg('--preset') ?? 'default';
  const preset = PRESETS[presetName];
  if (!preset) throw new Error(`--preset: unknown preset "${presetName}" (have ${Object.keys(PRESETS).join(', ')})`);
  const child = arg('--child');
  if (child) return tfjsChild(child as Arm, preset);

  const rounds = arg('--rounds') ? Number(arg('--rounds')) : preset.rounds;
  if (!Number.isInteger(rounds) || rounds < 1) throw new Error(`--rounds must be a positive integer (got ${arg('--rounds')})`);
  const requested = (arg('--arms') ?? ARMS.join(',')).split(',') as Arm[];
  for (const a of requested) if (!ARMS.includes(a)) throw new Error(`--arms: unknown arm "${a}" (have ${ARMS.join(', ')})`);
  const skipped: Record<string, string> = {};
  const torch = torchAvailable();
  const native = nativeAvailable();
  const arms = requested.filter((a) => {
    if (a === 'torch' && !torch.ok) skipped[a] = torch.why!;
    else if (a.startsWith('native') && !native) skipped[a] = '@tensorflow/tfjs-node does not load (node scripts/ensure-native-tf.js)';
    else return true;
    return false;
  });
  for (const [a, why] of Object.entries(skipped)) console.log(`skipping ${a}: ${why}`);

  const config = parseModelConfig(preset.model);
  const matmulShapes: Shape[] = [
    [preset.batchSize * preset.seqLen, config.dModel, config.dFF],
    [preset.batchSize * preset.seqLen, config.dModel, config.vocabSize],
    [preset.seqLen, config.dModel / config.nHeads, preset.seqLen],
    [512, 512, 512],
  ];
  const loadBefore = os.loadavg();
  const procs = arms.map((a) => startArm(a, presetName, preset, config));
  const ready = await Promise.all(
    procs.map((p) => p.next<{ ready: { backend: string; device: string; opStyle?: string; parameters: number } }>()),
  );
  const state = procs.map((p, i) => ({
    proc: p,
    ready: ready[i].ready,
    steps: [] as { seconds: number; loss: number; meanDepth: number }[],
    rates: [] as Rate[][],
    warmup: 0,
  }));
  console.log(
    `${presetName}: ${preset.description}; arms ${arms.join(', ')}; ${rounds} rounds after one warm-up step each; load ${loadBefore.map((l) => l.toFixed(1)).join(' ')}`,
  );

  let fill = 0; // the LTM fill of the native (else first tfjs) arm: the torch arm's bank is filled to it
  const loads: number[][] = [];
  for (let round = 0; round <= rounds; round++) {
    // Alternate the order each round so no arm always follows the same neighbour.
    const order = round % 2 ? [...state].reverse() : state;
    for (const s of order) {
      const r = await s.proc.ask<{ seconds: number; loss: number; meanDepth: number; fill?: number }>({ cmd: 'step', fill });
      if (s.proc.arm !== 'torch' && r.fill !== undefined && (s.proc.arm === 'native' || !arms.includes('native'))) fill = r.fill;
      if (round === 0) s.warmup = r.seconds;
      else s.steps.push(r);
      s.rates.push((await s.proc.ask<{ rates: Rate[] }>({ cmd: 'rate', shapes: matmulShapes, ms: round === 0 ? 800 : 250 })).rates);
    }
    loads.push(os.loadavg());
    if (round > 0)
      console.log(
        `round ${round}: ${state.map((s) => `${s.proc.arm} ${s.steps[s.steps.length - 1].seconds.toFixed(2)} s`).join(', ')}  (load ${os.loadavg()[0].toFixed(1)})`,
      );
  }

  let profile: unknown = null;
  const nativeArm = state.find((s) => s.proc.arm === 'native');
  if (nativeArm && !process.argv.includes('--no-profile'))
    profile = (await nativeArm.proc.ask<{ profile: unknown }>({ cmd: 'profile' })).profile;

  const modelFlopsPerStep =
    preset.batchSize *
    preset.seqLen *
    (6 * (ready[0].ready.parameters - config.vocabSize * config.dModel) + 12 * config.nLayers * config.dModel * preset.seqLen);
  const results = [];
  for (const s of state) {
    const { peakRssMiB } = await s.proc.ask<{ peakRssMiB: number }>({ cmd: 'finish' });
    const best = s.rates[0].map((r, i) => ({ shape: r.shape, gflops: Math.max(...s.rates.map((run) => run[i].gflops)) }));
    const peakMatmulGflops = Math.max(...best.map((r) => r.gflops));
    const stepSeconds = s.steps.map((x) => x.seconds);
    const achievedGflops = modelFlopsPerStep / median(stepSeconds) / 1e9;
    results.push({
      arm: s.proc.arm,
      ...s.ready,
      stepSeconds,
      warmupStepSeconds: s.warmup,
      tokensPerSecond: (preset.batchSize * preset.seqLen) / median(stepSeconds),
      achievedGflops,
      peakMatmulGflops,
      mfu: achievedGflops / peakMatmulGflops,
      matmulRates: best,
      losses: s.steps.map((x) => x.loss),
      meanDepth: s.steps[s.steps.length - 1].meanDepth,
      peakRssMiB,
    });
  }
  const byArm = Object.fromEntries(results.map((r) => [r.arm, r]));
  const ratio = (a: string, b: string): number | null =>
    byArm[a] && byArm[b] ? byArm[a].tokensPerSecond / byArm[b].tokensPerSecond : null;
  for (const r of results) {
    console.log(
      `${r.arm.padEnd(16)} ${r.tokensPerSecond.toFixed(0).padStart(6)} tok/s  steps ${r.stepSeconds.map((x) => x.toFixed(2)).join('/')} s  ` +
        `MFU ${(100 * r.mfu).toFixed(1)}% of ${r.peakMatmulGflops.toFixed(0)} GFLOP/s  peak RSS ${r.peakRssMiB.toFixed(0)} MiB`,
    );
  }
  const report = {
    benchmark: 'cognate-throughput',
    date: new Date().toISOString(),
    preset: presetName,
    description: preset.description,
    config,
    batchSize: preset.batchSize,
    seqLen: preset.seqLen,
    tokensPerStep: preset.batchSize * preset.seqLen,
    modelFlopsPerStep,
    host: {
      cpus: os.cpus().length,
      cpuModel: os.cpus()[0]?.model ?? 'unknown',
      totalMemGiB: os.totalmem() / 2 ** 30,
      node: process.version,
    },
    // The machine is shared with other work: the load average says how much of it this run could use, per round.
    loadAverageBefore: loadBefore,
    loadAverageAfterEachRound: loads,
    noise: 'arms interleaved one step each per round on a shared 2-core machine; figures move with the other load (see loadAverage*)',
    step: "tfjs: forward + backward (tf.variableGrads) + AdamW (common/optim.ts) + LTM write; torch: forward + backward + torch.optim.AdamW, LTM read over a bank of the native arm's fill (the port has no write)",
    threads: `native TensorFlow: its default intra-op pool (one thread per core, 2); wasm: 1 thread (SIMD); torch: torch.set_num_threads(2), OMP_WAIT_POLICY=${process.env.OMP_WAIT_POLICY ?? 'PASSIVE'}`,
    mfuDefinition:
      "tokens/step * (6 * matmul parameters + 12 * nLayers * dModel * seqLen) / median step time / best fp32 matmul rate of that arm's library at the model's shapes, measured before and between its steps",
    skipped,
    ratios: {
      nativeOverTorch: ratio('native', 'torch'),
      nativeOverWasm: ratio('native', 'wasm'),
      nativeOpsOverWasmOpsOnNative: ratio('native', 'native-wasm-ops'),
    },
    results,
    nativeProfile: profile,
  };
  const file = path.join(
    __dirname,
    'results',
    presetName === 'default' ? 'cognate-throughput.json' : `cognate-throughput-${presetName}.json`,
  );
  writeJsonAtomic(file, report);
  console.log(`ratios: ${JSON.stringify(report.ratios)}`);
  console.log(`wrote ${path.relative(process.cwd(), file)}`);
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
