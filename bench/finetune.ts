// What fine-tuning buys (issue 12): an agent trained on one task, then fine-tuned on a changed task
// (behavior_adaptation) or a narrower one (task_specialization), against the same architecture trained from
// scratch on the same child config and seeds. Both are evaluated on the same seeded greedy episodes every
// `checkpointEvery` episodes; the figure is the first episode count at which the evaluation success rate
// reaches adaptationThreshold. The anchor is the scratch run measured in the same process.
// Writes bench/results/finetune.json.   npm run bench:finetune   (FINETUNE_SEEDS=1,2,3 to choose the seeds)
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { backendInfo, initBackend } from '../common/backend';
import { compareFineTuning, type FineTuneComparison } from '../activities/agent/engine/adaptation';
import { AgentForgeConfigSchema, type AgentForgeConfig } from '../activities/agent/config';

const SIZES = {
  hiddenSize: 64,
  numLayers: 2,
  numHeads: 4,
  batchSize: 16,
  environmentTypes: ['interactive'] as const,
  evalEpisodes: 64,
  checkpointEvery: 1_000_000,
};

function cfg(over: Partial<AgentForgeConfig>): AgentForgeConfig {
  return AgentForgeConfigSchema.parse({ ...SIZES, ...over });
}

/** The two scenarios of the issue; the child's checkpointEvery is the evaluation interval. */
export function scenarios(seed: number) {
  return [
    {
      name: `behavior-adaptation-s${seed}`,
      what: 'referential game: parent learns the code (task_specialization); child: listeners see the candidates rotated (behavior_adaptation)',
      architecture: 'reactive_agent' as const,
      role: 'communication hub',
      parentConfig: cfg({ trainingMode: 'task_specialization', maxEpisodes: 600, seed }),
      childConfig: cfg({ trainingMode: 'behavior_adaptation', maxEpisodes: 1600, checkpointEvery: 32, seed: seed + 1000 }),
    },
    {
      name: `task-specialization-s${seed}`,
      what: 'referential game: parent trained on the curriculum over both difficulty levels (2 candidates, then all) for 128 episodes (skill_acquisition); child: the full level only (task_specialization)',
      architecture: 'reactive_agent' as const,
      role: 'communication hub',
      parentConfig: cfg({ trainingMode: 'skill_acquisition', maxEpisodes: 128, seed }),
      childConfig: cfg({ trainingMode: 'task_specialization', maxEpisodes: 1600, checkpointEvery: 32, seed: seed + 1000 }),
    },
  ];
}

async function main(): Promise<void> {
  await initBackend();
  const seeds = (process.env.FINETUNE_SEEDS ?? '1,2,3').split(',').map(Number);
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'forge-bench-finetune-'));
  const load = os.loadavg();
  const results: (FineTuneComparison & { what: string; seed: number })[] = [];
  try {
    for (const seed of seeds) {
      for (const s of scenarios(seed).filter((x) => !process.env.FINETUNE_ONLY || x.name.startsWith(process.env.FINETUNE_ONLY))) {
        const r = await compareFineTuning({ ...s, dataDir, evalEpisodes: 64 });
        results.push({ ...r, what: s.what, seed });
        console.log(
          `${s.name}: fine-tuned ${r.fineTuned.episodesToThreshold ?? '>budget'} episodes (${r.fineTuned.wallSeconds.toFixed(0)} s), scratch ${r.scratch.episodesToThreshold ?? '>budget'} (${r.scratch.wallSeconds.toFixed(0)} s); parent success ${r.parent.evaluation.successRate.toFixed(2)}`,
        );
      }
    }
  } finally {
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
  const summary = ['behavior-adaptation', 'task-specialization'].map((kind) => {
    const rs = results.filter((r) => r.name.startsWith(kind));
    const budget = (r: FineTuneComparison, x: number | null) => x ?? `>${r.fineTuned.episodesRun}`;
    return {
      scenario: kind,
      threshold: rs[0]?.fineTuned && scenarios(0).find((s) => s.name.startsWith(kind))!.childConfig.adaptationThreshold,
      fineTunedEpisodes: rs.map((r) => budget(r, r.fineTuned.episodesToThreshold)),
      scratchEpisodes: rs.map((r) => budget(r, r.scratch.episodesToThreshold)),
      fineTunedFasterInAllSeeds:
        rs.length > 0 &&
        rs.every(
          (r) =>
            r.fineTuned.episodesToThreshold !== null &&
            (r.scratch.episodesToThreshold === null || r.fineTuned.episodesToThreshold < r.scratch.episodesToThreshold),
        ),
    };
  });
  const out = {
    benchmark: 'fine-tuning vs training from scratch: episodes until the seeded greedy evaluation reaches the success threshold',
    measuredAt: new Date().toISOString(),
    conditions: {
      cpus: os.cpus().length,
      loadAverageAtStart: load,
      loadAverageAtEnd: os.loadavg(),
      backend: backendInfo(),
      node: process.version,
    },
    method:
      'parent trained and published with the real artifact writer, loaded through the same inspect/load path as the workflow; fine-tuned and scratch children share config, seed and evaluation episodes (64 per point, every 32 training episodes, plus the starting weights at 0)',
    sizes: SIZES,
    summary,
    runs: results,
  };
  fs.mkdirSync(path.join(__dirname, 'results'), { recursive: true });
  fs.writeFileSync(path.join(__dirname, 'results', 'finetune.json'), JSON.stringify(out, null, 2) + '\n');
  console.log(JSON.stringify(summary, null, 2));
}

if (require.main === module) {
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
