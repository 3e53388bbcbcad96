// Activity `checkInitFrom` (Agent Forge): runs before anything is written for a fine-tuning run. It checks
// that the parent exists and matches its manifest, fills the network sizes the input did not set from the
// parent (as from_pretrained takes the config from the checkpoint), resolves the agents (one agent named
// like the parent when the input lists none; agents without an architecture take the parent's), and
// checks parameter by parameter that the parent's weights load into every agent. Refusals are
// non-retryable and name what differs. Cheap (a few small networks, built on the pure-JS cpu backend and
// disposed): runs on the worker, no child process.
import { ApplicationFailure } from '@temporalio/common';
import { backendInfo, initBackend } from '../../common/backend';
import { FAILURE_TYPES } from '../../common/constants';
import { formatZodError } from '../../common/validation';
import { AgentForgeConfigSchema, type AgentArchitecture, type AgentForgeConfig, type AgentInitFrom, type AgentSpec } from './config';
import { createEnv, envSettingsFromPlan, planEnvironments } from './engine/envs';
import {
  AGENT_SHAPE_FIELDS,
  agentParentMismatches,
  inspectAgentParent,
  type AgentParentRef,
  type InspectedAgentParent,
} from './engine/init-from';

export interface CheckInitFromInput {
  initFrom: AgentInitFrom;
  config: AgentForgeConfig;
  agents?: AgentSpec[];
  /** Config fields the input set itself (they are never replaced by the parent's). */
  explicitFields: string[];
}

export interface CheckedInitFrom {
  parent: AgentParentRef;
  /** The run's config with the parent's network sizes where the input left them unset. */
  config: AgentForgeConfig;
  agents: { id: string; architecture: AgentArchitecture; role?: string }[];
  /** Config fields taken from the parent. */
  inherited: string[];
}

const refuse = (message: string): never => {
  throw ApplicationFailure.nonRetryable(message, FAILURE_TYPES.invalidParent);
};

function inspect(dataDir: string, initFrom: AgentInitFrom): InspectedAgentParent {
  try {
    return inspectAgentParent(dataDir, initFrom);
  } catch (e) {
    return refuse((e as Error).message);
  }
}

export function checkAgentInitFrom(dataDir: string, input: CheckInitFromInput): CheckedInitFrom {
  const parent = inspect(dataDir, input.initFrom);
  const name = `initFrom ${parent.ref.sessionId}/${parent.ref.agentId}`;
  const explicit = new Set(input.explicitFields);
  const inherited = AGENT_SHAPE_FIELDS.filter((k) => !explicit.has(k) && parent.config[k] !== input.config[k]);
  const merged = { ...input.config, ...Object.fromEntries(inherited.map((k) => [k, parent.config[k]])) };
  const parsed = AgentForgeConfigSchema.safeParse(merged);
  if (!parsed.success) refuse(`${name}: the config with the parent's network sizes is invalid: ${formatZodError(parsed.error, 'config')}`);
  const config = parsed.data as AgentForgeConfig;
  if (config.hiddenSize % config.numHeads !== 0)
    refuse(`${name}: config.numHeads (${config.numHeads}) must divide config.hiddenSize (${config.hiddenSize}) taken from the parent`);

  const architectureUnset = !explicit.has('agentArchitecture');
  const agents = input.agents
    ? input.agents.map((a) => ({
        id: a.id,
        architecture: a.architecture ?? (architectureUnset ? parent.ref.architecture : config.agentArchitecture),
        role: a.role,
      }))
    : [{ id: parent.ref.agentId, architecture: parent.ref.architecture, ...(parent.role ? { role: parent.role } : {}) }];

  const plan = planEnvironments(config, agents);
  const problems: string[] = [];
  for (const agent of agents) {
    const envId = plan.assignments.find((a) => a.agentId === agent.id)!.environmentId;
    const horizon = createEnv(envSettingsFromPlan(plan, envId)).spec.horizon;
    const differs = agentParentMismatches(parent, agent, config, horizon);
    if (differs.length > 0) problems.push(`agent "${agent.id}": ${differs.join(', ')}`);
  }
  if (problems.length > 0) refuse(`${name} (${parent.ref.dir}) does not fit this run: ${problems.join('; ')}`);
  return { parent: parent.ref, config, agents, inherited };
}

function tfBackendReady(): boolean {
  try {
    backendInfo();
    return true;
  } catch {
    return false;
  }
}

export function createAgentInitFromActivities(deps: { dataDir: string }) {
  return {
    /** Check a fine-tuning run's parent before anything is written (see the file header). */
    async checkInitFrom(input: CheckInitFromInput): Promise<CheckedInitFrom> {
      // The worker process trains nothing itself (children do), so it may have no tfjs backend yet; keep one it has.
      await initBackend(tfBackendReady() ? undefined : 'cpu');
      return checkAgentInitFrom(deps.dataDir, input);
    },
  };
}
