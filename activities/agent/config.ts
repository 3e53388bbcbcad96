// Agent Forge workflow input: the single source of its defaults, types and documentation.
// Mirrors the seed's AgentTrainingConfig in camelCase. Pure: imported by the workflow, CLI and activities.
import { z } from 'zod';
import { SafeName } from '../../common/validation';

export const TRAINING_MODES = [
  'behavior_adaptation',
  'task_specialization',
  'coordination_training',
  'skill_acquisition',
  'multi_agent_collaboration',
  'communication_protocols',
] as const;

export const AGENT_ARCHITECTURES = ['transformer_agent', 'hierarchical_agent', 'reactive_agent', 'planning_agent', 'hybrid_agent'] as const;
export const COORDINATION_STRATEGIES = ['hierarchical', 'decentralized'] as const;
export const ENVIRONMENT_TYPES = ['simulation', 'interactive'] as const;
export const COMMUNICATION_PROTOCOLS = ['direct', 'broadcast'] as const;
/** The environments seat at most this many agents (activities/agent/envs). */
export const MAX_TEAM_SIZE = 4;

const AgentForgeConfigFields = z.strictObject({
  /** Training episodes per agent (per training phase). */
  maxEpisodes: z.number().int().positive().max(1_000_000).default(1000),
  /** Width of each agent's hidden layers. */
  hiddenSize: z.number().int().min(4).max(1024).default(128),
  /** Depth of each agent's networks. */
  numLayers: z.number().int().min(1).max(16).default(4),
  /** Attention heads of the transformer agent; must divide hiddenSize. Default 8, or the largest power of two below it that divides hiddenSize. */
  numHeads: z.number().int().min(1).max(32).optional(),
  /** Longest observation history an agent attends to (steps). */
  maxContextLength: z.number().int().min(1).max(4096).default(512),
  /** Which objective the run trains (see README "Training modes"). */
  trainingMode: z.enum(TRAINING_MODES).default('multi_agent_collaboration'),
  /** Architecture of agents that do not name their own. */
  agentArchitecture: z.enum(AGENT_ARCHITECTURES).default('hybrid_agent'),
  /** Probability of a uniformly random action during training rollouts (epsilon-mixing). */
  explorationRate: z.number().min(0).max(1).default(0.1),
  /** behavior_adaptation: success rate to reach after the environment changes. */
  adaptationThreshold: z.number().gt(0).max(1).default(0.8),
  /** Largest team the run may train. */
  maxAgents: z.number().int().min(1).max(16).default(4),
  /** hierarchical: a leader assigns sub-tasks; decentralized: every agent acts on its own view and messages. */
  coordinationStrategy: z.enum(COORDINATION_STRATEGIES).default('hierarchical'),
  /** Environment families to train in. */
  environmentTypes: z.array(z.enum(ENVIRONMENT_TYPES)).min(1).default(['simulation', 'interactive']),
  /** Message channels open to the agents: direct (to one agent) and broadcast (to all). */
  communicationProtocols: z.array(z.enum(COMMUNICATION_PROTOCOLS)).min(1).default(['direct', 'broadcast']),
  /** Adam learning rate. */
  learningRate: z.number().gt(0).max(1).default(3e-3),
  /** Episodes per gradient update. */
  batchSize: z.number().int().min(1).max(4096).default(16),
  /** Seeds environments, initial weights and exploration: same seed, same run. */
  seed: z
    .number()
    .int()
    .min(0)
    .max(2 ** 31 - 1)
    .default(42),
  /** Evaluation episodes for each reported metric (trained and random policies alike). */
  evalEpisodes: z.number().int().min(1).max(10_000).default(100),
  /** Episodes between checkpoints. */
  checkpointEvery: z.number().int().min(1).default(50),
  /**
   * Longest a training activity runs before it checkpoints and returns; the workflow then continues with a
   * new one (and with continue-as-new when its history asks for it), so a run's history stays bounded.
   */
  trainingChunkSeconds: z.number().int().min(1).max(86_400).default(600),
  /** Least time between two progress signals of one training unit (the `progress` query is this current). */
  progressIntervalSeconds: z.number().min(0.1).max(3600).default(5),
});

/** numHeads' default derives from hiddenSize, so {"hiddenSize": 100} alone is valid (4 heads). */
export const AgentForgeConfigSchema = AgentForgeConfigFields.transform((c) => ({
  ...c,
  numHeads: c.numHeads ?? ([8, 4, 2, 1].find((h) => c.hiddenSize % h === 0) as number),
}));

export const AgentSpecSchema = z.strictObject({
  id: SafeName,
  architecture: z.enum(AGENT_ARCHITECTURES).optional(),
  role: z.string().max(200).optional(),
});

/**
 * Fine-tuning: start the run's agents from an earlier agent's published artifacts instead of random weights.
 * Either the session and agent that produced them, or an artifact folder (relative to, and inside,
 * FORGE_DATA_DIR). Checked before training (exists, manifest holds, architecture and shapes fit).
 */
export const AgentInitFromSchema = z.union([
  z.strictObject({
    sessionId: SafeName,
    agent: SafeName,
    /** Also load the parent's Adam moments and step (from the training checkpoint its artifacts came from). */
    optimizerState: z.boolean().default(false),
  }),
  z.strictObject({
    /** An agent artifact folder under FORGE_DATA_DIR (absolute, or relative to it). */
    path: z.string().min(1).max(4096),
    optimizerState: z.boolean().default(false),
  }),
]);

/** The original service's three agents. */
export const DEFAULT_AGENTS: AgentSpec[] = [
  { id: 'coordinator_agent', architecture: 'hierarchical_agent', role: 'coordinator' },
  { id: 'task_specialist', architecture: 'planning_agent', role: 'specialist' },
  { id: 'communication_hub', architecture: 'reactive_agent', role: 'communication hub' },
];

export const AgentForgeInputSchema = z
  .strictObject({
    sessionId: SafeName,
    config: AgentForgeConfigSchema.prefault({}),
    agents: z.array(AgentSpecSchema).min(1).optional(),
    /** Start every agent of the run from this parent (see AgentInitFromSchema); omitted = random weights. */
    initFrom: AgentInitFromSchema.optional(),
  })
  .superRefine((input, ctx) => {
    const agents = input.agents ?? DEFAULT_AGENTS;
    if (agents.length > MAX_TEAM_SIZE) {
      ctx.addIssue({
        code: 'custom',
        path: ['agents'],
        message: `${agents.length} agents: the environments seat at most ${MAX_TEAM_SIZE}`,
      });
    }
    if (agents.length > input.config.maxAgents) {
      ctx.addIssue({
        code: 'custom',
        path: ['agents'],
        message: `${agents.length} agents exceed config.maxAgents (${input.config.maxAgents})`,
      });
    }
    const ids = new Set<string>();
    agents.forEach((a, i) => {
      if (ids.has(a.id)) ctx.addIssue({ code: 'custom', path: ['agents', i, 'id'], message: `duplicate agent id "${a.id}"` });
      ids.add(a.id);
    });
    if (input.config.hiddenSize % input.config.numHeads !== 0) {
      ctx.addIssue({ code: 'custom', path: ['config', 'numHeads'], message: `must divide config.hiddenSize (${input.config.hiddenSize})` });
    }
  });

export type AgentForgeConfig = z.output<typeof AgentForgeConfigSchema>;
export type AgentSpec = z.output<typeof AgentSpecSchema>;
export type AgentForgeInput = z.input<typeof AgentForgeInputSchema>;
export type AgentForgeRequest = z.output<typeof AgentForgeInputSchema>;
export type AgentInitFrom = z.output<typeof AgentInitFromSchema>;
export type TrainingMode = (typeof TRAINING_MODES)[number];
export type AgentArchitecture = (typeof AGENT_ARCHITECTURES)[number];

/** Agents with their architecture resolved: the per-agent one, else config.agentArchitecture. */
export function resolveAgents(request: AgentForgeRequest): Required<Pick<AgentSpec, 'id' | 'architecture'>>[] & AgentSpec[] {
  return (request.agents ?? DEFAULT_AGENTS).map((a) => ({ ...a, architecture: a.architecture ?? request.config.agentArchitecture }));
}

// ---- Progress messages between the training activities and the workflow ----

/** One agent's (or the team's) live training state, sent by activities at a bounded rate. */
export interface AgentProgressUpdate {
  /** Agent id, or "team" during multi-agent coordination. */
  unit: string;
  phase: 'environments' | 'training' | 'coordination' | 'artifacts';
  episode: number;
  totalEpisodes: number;
  /** Mean episode return of the latest training batch. */
  reward: number;
  /** Success rate of the latest training batch (environment's success criterion). */
  successRate: number;
  coordinationScore: number;
  message: string;
  /** Episode the activity resumed from (0 for a fresh start). */
  resumedFromEpisode?: number;
}

/** The seed's AgentTrainingProgress plus phase and per-agent entries. */
export interface AgentForgeProgress {
  progress: number;
  message: string;
  episode: number;
  totalEpisodes: number;
  reward: number;
  successRate: number;
  coordinationScore: number;
  phase: 'validating' | 'environments' | 'training' | 'coordination' | 'artifacts' | 'completed' | 'failed' | 'cancelled';
  agents: Record<string, AgentProgressUpdate>;
}

/** Signal name of AgentProgressUpdate (the workflow defines the signal with it; activities send it). */
export const AGENT_PROGRESS_SIGNAL = 'agentProgress';
