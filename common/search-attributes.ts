// The typed search attributes every Forge run carries, so the Web UI and `temporal workflow list --query`
// can find, filter and sort runs by pipeline, session, phase, progress and latest metric. Pure: the workflows
// import this file (they upsert the changing ones, sparingly: each upsert is one history event).
import { defineSearchAttributeKey, SearchAttributeType, type SearchAttributeUpdatePair } from '@temporalio/common';

export const SA = {
  /** "cognate" or "agent". */
  pipeline: defineSearchAttributeKey('ForgePipeline', SearchAttributeType.KEYWORD),
  /** The run's sessionId (the workflow id is `<pipeline>-<sessionId>`). */
  session: defineSearchAttributeKey('ForgeSession', SearchAttributeType.KEYWORD),
  /** validating, datasets/environments, training, coordination, artifacts, completed, failed, cancelled. */
  phase: defineSearchAttributeKey('ForgePhase', SearchAttributeType.KEYWORD),
  /** Optimizer steps (Cognate, slowest model) or episodes (agents, slowest agent) done so far. */
  step: defineSearchAttributeKey('ForgeStep', SearchAttributeType.INT),
  /** Latest mean training loss across models (Cognate). */
  loss: defineSearchAttributeKey('ForgeLoss', SearchAttributeType.DOUBLE),
  /** Latest mean success rate across agents (Agent Forge). */
  successRate: defineSearchAttributeKey('ForgeSuccessRate', SearchAttributeType.DOUBLE),
  /** The tfjs backend and device that train, e.g. "tensorflow cpu (libtensorflow)". */
  backend: defineSearchAttributeKey('ForgeBackend', SearchAttributeType.KEYWORD),
  /** The run this one was initialised from (fine-tuning), "<pipeline>/<session>/<unit>", empty for fresh runs. */
  parent: defineSearchAttributeKey('ForgeParent', SearchAttributeType.KEYWORD),
} as const;

/** The CLI's and server API's spelling of each type (`temporal operator search-attribute create --type`). */
const CLI_TYPE: Record<SearchAttributeType, string> = {
  TEXT: 'Text',
  KEYWORD: 'Keyword',
  INT: 'Int',
  DOUBLE: 'Double',
  BOOL: 'Bool',
  DATETIME: 'Datetime',
  KEYWORD_LIST: 'KeywordList',
};

export interface SearchAttributeDefinition {
  name: string;
  type: SearchAttributeType;
  /** As `temporal server start-dev --search-attribute NAME=TYPE` spells it. */
  cliType: string;
}

export const SEARCH_ATTRIBUTES: SearchAttributeDefinition[] = Object.values(SA).map((k: { name: string; type: SearchAttributeType }) => ({
  name: k.name,
  type: k.type,
  cliType: CLI_TYPE[k.type],
}));

export interface ProgressAttributes {
  phase?: string;
  step?: number;
  loss?: number | null;
  successRate?: number | null;
  backend?: string;
}

/**
 * The update pairs for the attributes that change as a run moves (for `upsertSearchAttributes`); fields left
 * undefined are not touched, and non-finite metrics are skipped (a Double attribute cannot hold NaN).
 */
export function progressAttributeUpdates(p: ProgressAttributes): SearchAttributeUpdatePair[] {
  const out: SearchAttributeUpdatePair[] = [];
  if (p.phase !== undefined) out.push({ key: SA.phase, value: p.phase });
  if (p.step !== undefined && Number.isFinite(p.step)) out.push({ key: SA.step, value: Math.round(p.step) });
  if (typeof p.loss === 'number' && Number.isFinite(p.loss)) out.push({ key: SA.loss, value: p.loss });
  if (typeof p.successRate === 'number' && Number.isFinite(p.successRate)) out.push({ key: SA.successRate, value: p.successRate });
  if (p.backend) out.push({ key: SA.backend, value: p.backend });
  return out;
}
