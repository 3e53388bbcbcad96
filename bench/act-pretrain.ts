// ACT in pretraining (issue 10 part 4): what adaptive computation time costs or buys a small Cognate model
// pretrained on the real mixture. Two arms, same seed, data, steps and optimiser, both through the product
// trainer (engine/trainer.ts, which trains ACT with skipHalted 'auto'):
//   actOn    actEnabled: per-position halting after each block, ponder cost τ·mean(N + R)
//   actOff   actEnabled = false: every position runs every block (the anchor: what a user gets without ACT)
// The LTM is off in both (memEnabled = false) so the comparison isolates ACT; the rest is the product's
// defaults at the stated small size. Reported per arm: validation cross-entropy on the held-out windows at
// every evalSteps, the mean depth (blocks per position) ACT spent in training and in validation, training
// tokens/s and wall time. Data: the prepared mixture of bench/ltm-pretrain.ts (prepareMixture).
//
//   npm run bench:act-pretrain [-- --data ../shared/datasets --steps 600 --layers 6 --d-model 64 --seed 1 --ponder-cost 0.01
//                               --act-warmup 0 --act-ponder-ramp 0 --act-halting-init 0 --out bench/results/act-pretrain.json]
// Last stdout line: {"validationLossAct":…,"validationLossNoAct":…,"meanDepthAct":…,"fullDepth":…,"tokensPerSecondAct":…,"tokensPerSecondNoAct":…}
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { backendInfo, initBackend, type BackendChoice } from '../common/backend';
import { writeJsonAtomic } from '../common/export/files';
import { benchConditions } from './conditions';
import { parseFlags } from './flags';
import { CognateConfigSchema } from '../activities/cognate/config';
import { train, type ValidationResult } from '../activities/cognate/engine/trainer';
import { PRETRAIN_BENCH_FLAGS, prepareMixture, pretrainBenchConfig } from './ltm-pretrain';

const FLAGS = {
  ...PRETRAIN_BENCH_FLAGS,
  steps: 600,
  layers: 6,
  ponderCost: CognateConfigSchema.parse({}).ponderCost,
  /** config.actWarmupSteps: steps with halting untrained and no ponder cost (ACT arm). */
  actWarmup: 0,
  /** config.actPonderRampSteps: steps over which the ponder cost then rises to ponderCost. */
  actPonderRamp: 0,
  /** config.actHaltingInit: initial halting probability per block; 0 leaves the product's 1/(2 nLayers). */
  actHaltingInit: 0,
  out: 'bench/results/act-pretrain.json',
};
type Args = typeof FLAGS;

function parseArgs(argv: string[]): Args {
  const a = parseFlags(FLAGS, argv);
  a.data = path.resolve(a.data);
  return a;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const started = Date.now();
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'act-pretrain-'));
  try {
    const backendName = (process.env.FORGE_TF_BACKEND as BackendChoice | undefined) ?? 'tensorflow';
    await initBackend(backendName);
    const prepared = await prepareMixture(args, root);
    const base = {
      ...pretrainBenchConfig(args),
      memEnabled: false,
      ponderCost: args.ponderCost,
      actWarmupSteps: args.actWarmup,
      actPonderRampSteps: args.actPonderRamp,
      ...(args.actHaltingInit > 0 ? { actHaltingInit: args.actHaltingInit } : {}),
      evalSteps: Math.max(1, Math.floor(args.steps / 4)),
    };
    const arms: Record<
      string,
      {
        validations: ValidationResult[];
        trainMeanDepth: number | null;
        tokensPerSecond: number | null;
        trainSeconds: number;
        finalTrainLoss: number | null;
        parameters: number;
        loadAverage1m: number[];
      }
    > = {};
    for (const arm of ['actOn', 'actOff'] as const) {
      const config = CognateConfigSchema.parse({ ...base, actEnabled: arm === 'actOn' });
      const validations: ValidationResult[] = [];
      const load = [os.loadavg()[0]];
      const t0 = Date.now();
      const summary = await train(
        {
          config,
          seed: args.seed,
          datasetDir: prepared.datasetDir,
          checkpointDir: path.join(root, arm),
          modelName: arm,
          backend: backendName,
          progressIntervalMs: 5000,
        },
        {
          emit: (e) => {
            if (e.kind === 'validation') {
              validations.push({
                step: e.step,
                loss: e.loss,
                perplexity: e.perplexity,
                tokenAccuracy: e.tokenAccuracy,
                meanDepth: e.meanDepth,
                tokens: e.tokens,
              });
              load.push(os.loadavg()[0]);
              console.error(`[${arm}] step ${e.step}: validation ${e.loss.toFixed(3)}, depth ${e.meanDepth.toFixed(2)}`);
            }
          },
          stopRequested: () => false,
        },
      );
      arms[arm] = {
        validations,
        trainMeanDepth: summary.act.meanDepth,
        tokensPerSecond: summary.tokensPerSecond,
        trainSeconds: (Date.now() - t0) / 1000,
        finalTrainLoss: summary.finalLoss,
        parameters: summary.parameters.total,
        loadAverage1m: load,
      };
    }
    const last = (arm: string) => arms[arm].validations.at(-1)!;
    const headline = {
      validationLossAct: last('actOn').loss,
      validationLossNoAct: last('actOff').loss,
      meanDepthAct: last('actOn').meanDepth,
      fullDepth: args.layers,
      tokensPerSecondAct: arms.actOn.tokensPerSecond,
      tokensPerSecondNoAct: arms.actOff.tokensPerSecond,
    };
    writeJsonAtomic(path.resolve(args.out), {
      benchmark: 'act-pretrain',
      description:
        'Cognate pretraining on the GSM8K/SVAMP/HotpotQA mixture, ACT on vs off (memory off in both), same seed/data/steps; validation cross-entropy on held-out windows and the mean depth ACT spends',
      headline,
      depth: 'blocks run per position, averaged over positions (validation: inference, halted positions skip the remaining blocks)',
      data: { dir: args.data, prepared: prepared.stats },
      config: base,
      arms,
      conditions: benchConditions(backendInfo(), started),
    });
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
