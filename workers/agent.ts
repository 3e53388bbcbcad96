// Agent Forge worker (CPU): `npm run worker:agent`. Start more of these on more machines to share the
// per-agent training activities; FORGE_DATA_DIR must then be shared storage.
import os from 'node:os';
import { createAgentActivities } from '../activities/agent';
import { runWorkerMain, intFromEnv, type ForgeWorkerSpec } from './run';

export const agentWorkerSpec = (): ForgeWorkerSpec => ({
  pipeline: 'agent',
  workflowsPath: require.resolve('../workflows/agent'),
  activities: createAgentActivities,
  // Each training activity is a child process using one core.
  maxConcurrentActivities: intFromEnv('FORGE_AGENT_CONCURRENCY', Math.max(2, os.cpus().length)),
});

if (require.main === module) {
  runWorkerMain(agentWorkerSpec()).catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
