// Memory in pretraining (issue 10 part 3): does the LTM help a small Cognate model pretrained on the real
// mixture read long documents? Two arms, same seed, data and steps, both through the product trainer
// (engine/trainer.ts, config.longDocuments = 'segments'):
//   memoryOn   memEnabled: each long document (HotpotQA context paragraphs + question + answer) is read by
//              one batch row segment by segment, the row's bank carrying the document's earlier segments
//   memoryOff  memEnabled = false: the same segments, nothing carried (the model loses the memory block's gate
//              and value shift, 2·C·H + C² + 2H parameters, so its initial weights after that block differ too)
// Data: the prepared mixture (activities/cognate/data/prepare.ts, offline mode) of GSM8K, SVAMP and
// HotpotQA from --data (default: the committed fixtures/cognate; here ../shared/datasets holds the same
// files with 152 HotpotQA rows instead of 12), byte-level BPE trained on the train split.
// Evaluation on the held-out long documents (the validation split's HotpotQA documents): each document is
// read segment by segment (seqLen tokens, no attention across segments), the bank cleared before it and
// written after every segment, exactly as in training. Reported:
//   answerLoss        mean cross-entropy (nats) of the answer tokens ("Answer: <answer>", EOS excluded)
//   answerLossFar     the same over the documents whose supporting paragraphs (HotpotQA supporting_facts)
//                     all end before the answer's segment starts: the answer can only see them through memory
//   memoryOn also evaluated with its memory switched off (same weights, forward(memory: 'none')): how much the
//   trained model's answers depend on what the bank returns.
// Bank use (memoryOn, evaluation): writes and reads (LtmStats counters: reads are queries × heads answered by
// a non-empty bank), and at the answer positions of the "far" documents:
//   hitRate           share of (answer query, head) reads whose top-memTopK slots (by cosine of the memory
//                     block's pre-rotary query with the bank keys, as model.ts selects them) include a slot
//                     written from a supporting paragraph's tokens
//   hitRateChance     the same if memTopK slots were drawn uniformly from the bank: 1 − C(n−s,k)/C(n,k)
//   gate              mean memory gate σ(norm(x)·W_gate + b) at those positions: the weight on the memory read
// Training bank use comes from the trainer's summary (writes, reads over the run).
//
// Measured (bench/results/ltm-pretrain.json, ../shared/datasets, defaults, native TensorFlow, load 6–11): answer
// loss 4.62 with the memory, 4.72 without, 4.62 with the trained memory switched off; hit rate 47.5% against
// 47.5% by chance; gate 0.39. Seed 2 (ltm-pretrain-seed2.json): 4.76 / 4.78 / 4.75, 51.0% vs 49.6%, 0.35. At
// this size and length the memory is read but does not help.
//
//   npm run bench:ltm-pretrain [-- --data ../shared/datasets --steps 400 --seq-len 128 --d-model 64 --layers 4 --out bench/results/ltm-pretrain.json]
// Last stdout line: {"answerLossMemoryOn":…,"answerLossMemoryOff":…,"answerLossFarMemoryOn":…,…,"hitRate":…}
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { backendInfo, initBackend, type BackendChoice } from '../common/backend';
import { loadLatestCheckpoint } from '../common/checkpoint';
import { writeJsonAtomic } from '../common/export/files';
import { benchConditions } from './conditions';
import { parseFlags } from './flags';
import { CognateConfigSchema, type CognateConfig } from '../activities/cognate/config';
import { prepareDatasets } from '../activities/cognate/data/prepare';
import { formatHotpotQa } from '../activities/cognate/data/records';
import { FIXTURES_DIR, LOCAL_FILES } from '../activities/cognate/data/sources';
import { loadTokenizer, type Tokenizer } from '../activities/cognate/data/tokenizer';
import { findDocuments, openDataset, segmentCount } from '../activities/cognate/engine/data';
import { crossEntropyPerRow, linear, rmsNorm } from '../activities/cognate/engine/layers';
import { CognateModel } from '../activities/cognate/engine/model';
import { modelConfigOf, train, type CheckpointState, type TrainSummary } from '../activities/cognate/engine/trainer';

/** The flags both pretraining benches take (this one and bench/act-pretrain.ts), with their defaults. */
export const PRETRAIN_BENCH_FLAGS = {
  data: FIXTURES_DIR,
  steps: 400,
  seqLen: 128,
  dModel: 64,
  layers: 4,
  batch: 8,
  vocab: 1024,
  seed: 1,
  out: 'bench/results/ltm-pretrain.json',
};
type Args = typeof PRETRAIN_BENCH_FLAGS;

function parseArgs(argv: string[]): Args {
  const a = parseFlags(PRETRAIN_BENCH_FLAGS, argv);
  a.data = path.resolve(a.data);
  return a;
}

/** A held-out HotpotQA document in tokens, with its answer and supporting paragraphs located. */
interface LongDoc {
  tokens: number[]; // EOS included
  /** Target positions (token indices) of the answer, EOS excluded. */
  answer: [number, number];
  /** Token spans [from, to] (inclusive) of the supporting paragraphs. */
  support: [number, number][];
}

/** Index of the token holding character `c` of the decoded text: smallest n with |decode(tokens[0..n])| > c. */
function tokenOfChar(tokens: number[], tokenizer: Tokenizer, c: number): number {
  let lo = 0;
  let hi = tokens.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (tokenizer.decode(tokens.slice(0, mid + 1)).length > c) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

function heldOutLongDocs(datasetDir: string, dataDir: string, seqLen: number): { docs: LongDoc[]; skipped: number } {
  const tokenizer = loadTokenizer(path.join(datasetDir, 'tokenizer.json'));
  const ds = openDataset(datasetDir, tokenizer.vocabSize);
  // The formatted text of every original row → its supporting paragraph titles.
  const rows = JSON.parse(fs.readFileSync(path.join(dataDir, LOCAL_FILES.HotpotQA.train), 'utf8')) as {
    supporting_facts: [string, number][];
  }[];
  const supportOf = new Map<string, string[]>();
  rows.forEach((row, i) => supportOf.set(formatHotpotQa(row, `row ${i}`).text, [...new Set(row.supporting_facts.map(([t]) => t))]));
  const docs: LongDoc[] = [];
  let skipped = 0;
  for (const span of findDocuments(ds.validation, ds.manifest.eosId)) {
    if (span.end - span.start <= seqLen + 1) continue; // fits one window: not a long document
    const tokens = Array.from(ds.validation.tokens.subarray(span.start, span.end));
    const body = tokens.slice(0, -1);
    const text = tokenizer.decode(body);
    const titles = supportOf.get(text);
    if (!text.startsWith('Context:\n')) continue; // a long GSM8K/SVAMP document, not HotpotQA
    if (!titles) {
      skipped++; // the text did not round-trip through the tokenizer exactly
      continue;
    }
    const answerChar = text.lastIndexOf('\nAnswer: ') + '\nAnswer: '.length;
    const support: [number, number][] = titles.map((title) => {
      const start = text.indexOf(`\n${title}: `) + 1;
      const end = text.indexOf('\n', start);
      return [tokenOfChar(body, tokenizer, start), tokenOfChar(body, tokenizer, end - 1)];
    });
    docs.push({ tokens, answer: [tokenOfChar(body, tokenizer, answerChar), body.length - 1], support });
  }
  return { docs, skipped };
}

interface EvalResult {
  documents: number;
  answerTokens: number;
  answerLoss: number;
  farDocuments: number;
  farAnswerTokens: number;
  answerLossFar: number | null;
  bank?: {
    writes: number;
    reads: number;
    farAnswerReads: number;
    hitRate: number | null;
    hitRateChance: number | null;
    gate: number | null;
  };
}

/** log C(n, k) by sums (n up to a few thousand). */
function logChoose(n: number, k: number): number {
  let s = 0;
  for (let i = 0; i < k; i++) s += Math.log(n - i) - Math.log(i + 1);
  return s;
}

function evaluateLongDocs(model: CognateModel, docs: LongDoc[], seqLen: number, useMemory: boolean): EvalResult {
  const c = model.config;
  const memory = model.memory;
  const layer = model.memLayer;
  const H = c.nHeads;
  const D = c.dModel / H;
  const param = (name: string): tf.Variable => model.params.find((p) => p.name === name)!.variable;
  const probe =
    useMemory && memory
      ? {
          norm: param(`model.layers.${layer}.input_layernorm.weight`),
          q: param(`model.layers.${layer}.self_attn.q_proj.weight`),
          gateW: param(`model.layers.${layer}.self_attn.memory_gate.weight`),
          gateB: param(`model.layers.${layer}.self_attn.memory_gate.bias`),
        }
      : null;
  const countersBefore = memory?.stats();
  let ceAll = 0;
  let nAll = 0;
  let ceFar = 0;
  let nFar = 0;
  let farDocs = 0;
  let reads = 0;
  let hits = 0;
  let chance = 0;
  let gateSum = 0;
  for (const doc of docs) {
    memory?.clear();
    const slotPos: number[] = []; // bank slot → document position it was written from (FIFO ring, as ltm.ts)
    let written = 0;
    const inSupport = (pos: number): boolean => doc.support.some(([a, b]) => pos >= a && pos <= b);
    const answerSegment = Math.floor((doc.answer[0] - 1) / seqLen);
    const far = doc.support.every(([, end]) => end < answerSegment * seqLen);
    if (far) farDocs++;
    for (let s = 0; s < segmentCount(doc.tokens.length, seqLen); s++) {
      const from = s * seqLen;
      const len = Math.min(seqLen, doc.tokens.length - 1 - from);
      // answer targets j in this segment are predicted at input position j − 1
      const answerAt: number[] = [];
      for (let j = doc.answer[0]; j <= doc.answer[1]; j++) if (j - 1 >= from && j - 1 < from + len) answerAt.push(j - 1 - from);
      tf.tidy(() => {
        const input = tf.tensor2d(doc.tokens.slice(from, from + len), [1, len], 'int32');
        let q: Float32Array | null = null;
        let gate: Float32Array | null = null;
        const out = model.forward(input, {
          training: false,
          memory: useMemory ? 'bank' : 'none',
          onBlock: ({ layer: l, before }) => {
            if (!probe || l !== layer || answerAt.length === 0) return;
            const h = rmsNorm(before, probe.norm as tf.Tensor1D);
            q = linear(h, probe.q as tf.Tensor2D).dataSync() as Float32Array; // [1, T, C]: head h at h·D
            gate = linear(h, probe.gateW as tf.Tensor2D, probe.gateB as tf.Tensor1D)
              .sigmoid()
              .dataSync() as Float32Array; // [1, T, H]
          },
        });
        if (answerAt.length > 0) {
          const logits = out.logits.reshape<tf.Tensor2D>([len, -1]);
          const targets = tf.tensor1d(doc.tokens.slice(from + 1, from + len + 1), 'int32');
          const ce = crossEntropyPerRow(logits, targets).dataSync();
          for (const t of answerAt) {
            ceAll += ce[t];
            nAll++;
            if (far) {
              ceFar += ce[t];
              nFar++;
            }
          }
          const fill = slotPos.length;
          if (far && probe && q && gate && fill > 0) {
            const bank = memory!.state().streams[0];
            const k = Math.min(c.memTopK, fill);
            const supportSlots = slotPos.filter(inSupport).length;
            const missAll =
              supportSlots === 0 ? 1 : fill - supportSlots < k ? 0 : Math.exp(logChoose(fill - supportSlots, k) - logChoose(fill, k));
            for (const t of answerAt) {
              for (let head = 0; head < H; head++) {
                const qv = (q as Float32Array).subarray(t * c.dModel + head * D, t * c.dModel + (head + 1) * D);
                const qn = Math.hypot(...qv) + 1e-12;
                const scores: [number, number][] = [];
                for (let slot = 0; slot < fill; slot++) {
                  const kv = bank.keys.subarray((head * c.memCapacity + slot) * D, (head * c.memCapacity + slot + 1) * D);
                  let dot = 0;
                  for (let d = 0; d < D; d++) dot += qv[d] * kv[d];
                  scores.push([dot / (qn * (Math.hypot(...kv) + 1e-12)), slot]);
                }
                scores.sort((x, y) => y[0] - x[0]);
                if (scores.slice(0, k).some(([, slot]) => inSupport(slotPos[slot]))) hits++;
                chance += 1 - missAll;
                gateSum += (gate as Float32Array)[t * H + head];
                reads++;
              }
            }
          }
        }
        if (useMemory && memory && out.memoryEntries) {
          model.writeMemory(out.memoryEntries);
          for (let t = 0; t < len; t++, written++) slotPos[written % c.memCapacity] = from + t;
        }
      });
    }
  }
  const after = memory?.stats();
  return {
    documents: docs.length,
    answerTokens: nAll,
    answerLoss: ceAll / nAll,
    farDocuments: farDocs,
    farAnswerTokens: nFar,
    answerLossFar: nFar > 0 ? ceFar / nFar : null,
    ...(useMemory && after && countersBefore
      ? {
          bank: {
            writes: after.writes - countersBefore.writes,
            reads: after.reads - countersBefore.reads,
            farAnswerReads: reads,
            hitRate: reads > 0 ? hits / reads : null,
            hitRateChance: reads > 0 ? chance / reads : null,
            gate: reads > 0 ? gateSum / reads : null,
          },
        }
      : {}),
  };
}

/** FORGE_TF_BACKEND, else native TensorFlow (common/backend.ts). */
function backendChoice(): BackendChoice {
  return (process.env.FORGE_TF_BACKEND as BackendChoice | undefined) ?? 'tensorflow';
}

async function trainArm(
  name: string,
  config: CognateConfig,
  seed: number,
  datasetDir: string,
  root: string,
): Promise<{ summary: TrainSummary; model: CognateModel; load: number[] }> {
  const checkpointDir = path.join(root, name);
  const load: number[] = [os.loadavg()[0]];
  const backend = backendChoice();
  let lastLog = 0;
  const summary = await train(
    { config, seed, datasetDir, checkpointDir, modelName: name, backend, progressIntervalMs: 5000 },
    {
      emit: (e) => {
        if (e.kind === 'step' && Date.now() - lastLog > 15000) {
          lastLog = Date.now();
          load.push(os.loadavg()[0]);
          console.error(`[${name}] step ${e.step}/${e.totalSteps} loss ${e.loss.toFixed(3)} ${Math.round(e.tokensPerSecond)} tok/s`);
        }
      },
      stopRequested: () => false,
    },
  );
  load.push(os.loadavg()[0]);
  // The trained weights, from the run's last checkpoint, into a fresh model for the segment-by-segment evaluation.
  const saved = loadLatestCheckpoint<CheckpointState>(checkpointDir, (m) => console.error(m))!.state;
  const model = new CognateModel(modelConfigOf(config), seed);
  for (const { name: p, variable } of model.params)
    tf.tidy(() => variable.assign(tf.tensor(saved.weights[p].data, saved.weights[p].shape, 'float32')));
  return { summary, model, load };
}

/** The bench mixture (offline GSM8K/SVAMP/HotpotQA from `data`, 400 train examples, BPE of `vocab`) prepared under `root`. */
export async function prepareMixture(args: { data: string; vocab: number; seed: number }, root: string) {
  const prepConfig = {
    datasetSources: ['GSM8K', 'SVAMP', 'HotpotQA'] as CognateConfig['datasetSources'],
    datasetMode: 'offline' as const,
    localDatasetDir: args.data,
    maxTrainSamples: 400,
    maxEvalSamples: 100,
    shortFraction: 0.7,
    validationFraction: 0.2,
    vocabSize: args.vocab,
    seed: args.seed,
  };
  return prepareDatasets(
    { config: prepConfig, dataDir: path.join(root, 'data') },
    { emit: (e) => console.error(`[data] ${e.message}`), stopRequested: () => false },
  );
}

/** The small model and training settings both pretraining benches use (each adds what it compares). */
export function pretrainBenchConfig(args: Args) {
  return {
    dModel: args.dModel,
    nLayers: args.layers,
    nHeads: 2,
    dFF: 4 * args.dModel,
    vocabSize: args.vocab,
    maxSeqLen: args.seqLen,
    seqLen: args.seqLen,
    batchSize: args.batch,
    gradientAccumulationSteps: 1,
    maxSteps: args.steps,
    warmupSteps: Math.min(40, Math.floor(args.steps / 10)),
    learningRate: 1e-3,
    grokfastMode: 'off' as const,
    saveSteps: args.steps,
    evalBatches: 16,
    seed: args.seed,
  };
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const started = Date.now();
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'ltm-pretrain-'));
  try {
    const prepared = await prepareMixture(args, root);
    const { docs, skipped } = heldOutLongDocs(prepared.datasetDir, args.data, args.seqLen);
    if (docs.length === 0) throw new Error(`no held-out HotpotQA document longer than seqLen ${args.seqLen} in ${args.data}`);
    const lengths = docs.map((d) => d.tokens.length);
    console.error(
      `[data] ${docs.length} held-out long documents (${Math.min(...lengths)}..${Math.max(...lengths)} tokens), ${skipped} skipped`,
    );

    const base = {
      ...pretrainBenchConfig(args),
      actEnabled: false,
      memCapacity: 4096,
      memTopK: 4,
      evalSteps: args.steps,
      longDocuments: 'segments' as const,
    };
    const arms: Record<string, unknown> = {};
    const results: Record<'memoryOn' | 'memoryOff', EvalResult> = {} as never;
    let switchedOff: EvalResult | null = null;
    let backend = await initBackend(backendChoice());
    for (const arm of ['memoryOn', 'memoryOff'] as const) {
      const config = CognateConfigSchema.parse({ ...base, memEnabled: arm === 'memoryOn' });
      const t0 = Date.now();
      const { summary, model, load } = await trainArm(arm, config, args.seed, prepared.datasetDir, root);
      backend = backendInfo();
      const trainSeconds = (Date.now() - t0) / 1000;
      const t1 = Date.now();
      results[arm] = evaluateLongDocs(model, docs, args.seqLen, arm === 'memoryOn');
      if (arm === 'memoryOn') switchedOff = evaluateLongDocs(model, docs, args.seqLen, false);
      arms[arm] = {
        parameters: summary.parameters.total,
        trainSeconds,
        evalSeconds: (Date.now() - t1) / 1000,
        tokensPerSecond: summary.tokensPerSecond,
        finalTrainLoss: summary.finalLoss,
        validationWindowLoss: summary.validation?.loss ?? null,
        trainingBank: summary.ltm ? { writes: summary.ltm.writes, reads: summary.ltm.reads, evictions: summary.ltm.evictions } : null,
        loadAverage1m: load,
        longDocuments: results[arm],
      };
      console.error(`[${arm}] ${JSON.stringify(results[arm])}`);
      model.dispose();
    }
    const on = results.memoryOn;
    const off = results.memoryOff;
    const headline = {
      answerLossMemoryOn: on.answerLoss,
      answerLossMemoryOff: off.answerLoss,
      answerLossFarMemoryOn: on.answerLossFar,
      answerLossFarMemoryOff: off.answerLossFar,
      answerLossFarSwitchedOff: switchedOff?.answerLossFar ?? null,
      hitRate: on.bank?.hitRate ?? null,
      hitRateChance: on.bank?.hitRateChance ?? null,
      gate: on.bank?.gate ?? null,
    };
    const result = {
      benchmark: 'ltm-pretrain',
      description:
        'Cognate pretraining on the GSM8K/SVAMP/HotpotQA mixture with long documents read segment by segment (config.longDocuments = segments), memory on vs off; answer loss of held-out HotpotQA documents read the same way',
      headline,
      hit: 'a (query, head) read at an answer position of a "far" document whose top-memTopK bank slots (cosine of the pre-rotary query with the bank keys, the selection model.ts makes) include a slot written from a supporting paragraph; chance: k slots drawn uniformly from the bank',
      far: 'documents whose supporting paragraphs (HotpotQA supporting_facts titles) all end before the segment holding the answer starts',
      data: {
        dir: args.data,
        prepared: prepared.stats,
        heldOutLongDocuments: docs.length,
        heldOutSkipped: skipped,
        heldOutTokens: { min: Math.min(...lengths), max: Math.max(...lengths), mean: lengths.reduce((a, b) => a + b, 0) / lengths.length },
      },
      config: base,
      arms,
      switchedOff: { note: 'the memoryOn weights evaluated with forward(memory: none): no read, no write', longDocuments: switchedOff },
      conditions: benchConditions(backend, started),
    };
    writeJsonAtomic(path.resolve(args.out), result);
    console.log(JSON.stringify(headline));
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}

if (require.main === module) {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
