// Cognate pretraining worker (GPU): `npm run worker:cognate`. One training activity per GPU; dataset and
// artifact activities share the same slots. FORGE_DATA_DIR must be shared storage across machines.
import { spawnSync } from 'node:child_process';
import { createCognateActivities } from '../activities/cognate';
import { runWorkerMain, intFromEnv, type ForgeWorkerSpec } from './run';

/** GPUs visible to this machine (nvidia-smi), 0 when there are none. */
function countGpus(): number {
  const r = spawnSync('nvidia-smi', ['-L'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.split('\n').filter((l) => l.startsWith('GPU ')).length : 0;
}

export const cognateWorkerSpec = (): ForgeWorkerSpec => {
  const gpus = countGpus();
  const slots = intFromEnv('FORGE_COGNATE_TRAINING_SLOTS', Math.max(1, gpus));
  console.log(
    `[forge] cognate worker: ${gpus} GPU(s) visible, ${slots} training slot(s)${gpus === 0 ? ' — training runs on the CPU backend' : ''}`,
  );
  return {
    pipeline: 'cognate',
    workflowsPath: require.resolve('../workflows/cognate'),
    activities: createCognateActivities,
    maxConcurrentActivities: slots,
  };
};

if (require.main === module) {
  runWorkerMain(cognateWorkerSpec()).catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
