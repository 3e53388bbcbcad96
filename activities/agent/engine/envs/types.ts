// The interface every Agent Forge environment implements.
//
// Observations and actions use ONE universal layout across environments (OBS_SIZE floats, ACTION_COUNT
// discrete actions, invalid actions masked per agent and turn). That is what lets an agent trained alone
// in one environment be loaded into any slot of the team environment, and lets one network with shared
// parameters play every role of an environment (the role is part of the observation).
//
// Observation header (same in every environment), followed by environment-specific features:
//   [0..3)  environment kind one-hot (navigation, referential, delegation)
//   [3..7)  own agent index one-hot (slot 0 is the leader under the hierarchical strategy)
//   [7..9)  turn phase one-hot (communicate, act)
import { MAX_TEAM_SIZE } from '../../config';
import type { Rng } from '../../../../common/rng';

export const OBS_SIZE = 48;
export const ACTION_COUNT = 64;
export const MAX_ENV_AGENTS = MAX_TEAM_SIZE;
export const HEADER_SIZE = 9;

export const ENV_KINDS = ['navigation', 'referential', 'delegation'] as const;
export type EnvKind = (typeof ENV_KINDS)[number];
export type Protocol = 'direct' | 'broadcast';
export type Strategy = 'hierarchical' | 'decentralized';

/** Everything needed to rebuild an environment; JSON-serialisable (it is stored in the environment plan). */
export interface EnvSettings {
  id: string;
  kind: EnvKind;
  /** Agent slots, 2..MAX_ENV_AGENTS. */
  numAgents: number;
  /** Message channels open to the agents. */
  protocols: Protocol[];
  /** hierarchical: slot 0 leads (assigns sub-tasks / holds the private information); decentralized: no leader. */
  strategy: Strategy;
  /** Fixes the environment's persistent hidden structure (nothing at the moment depends on it but episode draws). */
  seed: number;
}

/** Training conditions that change during a run (curriculum level, the behaviour-adaptation shift). */
export interface EnvVariant {
  /** Curriculum level, 0 = easiest .. spec.curriculumLevels-1 = the full task. */
  level: number;
  /** behavior_adaptation: the environment's rules changed (see each environment's `shiftDescription`). */
  shifted: boolean;
}

export interface EnvSpec {
  id: string;
  type: 'simulation' | 'interactive';
  kind: EnvKind;
  name: string;
  description: string;
  observationSize: number;
  actionCount: number;
  numAgents: number;
  /** Every episode lasts exactly this many steps, so a batch of copies runs in lockstep. */
  horizon: number;
  successCriterion: string;
  coordinationScoreDefinition: string;
  shiftDescription: string;
  curriculumLevels: number;
  /** Multiplies rewards for learning only (reported rewards are unscaled). */
  rewardScale: number;
  /**
   * Steps per independent segment: no reward depends on an action taken in an earlier segment (the
   * message games' rounds are drawn afresh), so learning assigns credit within a segment only (GAE stops
   * at segment boundaries). Equal to `horizon` when the whole episode is one causal chain.
   */
  creditSegment: number;
  /** Meaning of each action index in this environment ("" for an index it never allows). */
  actionLabels: string[];
}

export interface StepResult {
  /** Shared team reward of this step. */
  reward: number;
  /** This step's contribution to coordination (coordination_training adds it to the reward). */
  coordinationSignal: number;
  /** 1 when this step delivered a message to the agent that had to act on it (communication_protocols bonus). */
  deliverySignal: number;
  /**
   * Optional potential-based shaping term F = gamma*phi(s') - phi(s) (Ng, Harada & Russell 1999: leaves the
   * optimal policies unchanged). Learning uses reward + shaping; reported returns use `reward` only.
   */
  shaping?: number;
  /**
   * Optional per-agent potential-based shaping F_i = gamma*phi_i(s') - phi_i(s), added to agent i's learning
   * reward on top of `shaping` (Devlin & Kudenko 2011: per-agent potentials leave the game's Nash equilibria
   * unchanged). It tells each agent its own progress, which a shared team reward only conveys through the
   * other agents' noise.
   */
  agentShaping?: ArrayLike<number>;
}

export interface EpisodeOutcome {
  success: boolean;
  /** In [0,1], see spec.coordinationScoreDefinition. */
  coordination: number;
}

export interface MultiAgentEnv {
  readonly spec: EnvSpec;
  setVariant(variant: EnvVariant): void;
  /** Start an episode; `rng` drives every random draw of the episode. */
  reset(rng: Rng): void;
  /** Write agent `agent`'s observation into out[offset .. offset+OBS_SIZE). */
  observe(agent: number, out: Float32Array, offset: number): void;
  /** Write 1 for each action agent `agent` may take now into out[offset .. offset+ACTION_COUNT), 0 elsewhere. */
  actionMask(agent: number, out: Float32Array, offset: number): void;
  /** One joint step (actions[i] for agent i). Called exactly spec.horizon times per episode. */
  step(actions: ArrayLike<number>): StepResult;
  /** Outcome of the finished episode. */
  outcome(): EpisodeOutcome;
}

const KIND_INDEX: Record<EnvKind, number> = { navigation: 0, referential: 1, delegation: 2 };
export type Phase = 'communicate' | 'act';

/** Clear the observation and write the shared header. */
export function writeHeader(out: Float32Array, offset: number, kind: EnvKind, agent: number, phase: Phase): void {
  out.fill(0, offset, offset + OBS_SIZE);
  out[offset + KIND_INDEX[kind]] = 1;
  out[offset + 3 + agent] = 1;
  out[offset + (phase === 'communicate' ? 7 : 8)] = 1;
}

export function labelsArray(labels: string[]): string[] {
  if (labels.length > ACTION_COUNT) throw new Error(`environment defines ${labels.length} actions, more than ACTION_COUNT=${ACTION_COUNT}`);
  return [...labels, ...new Array<string>(ACTION_COUNT - labels.length).fill('')];
}
