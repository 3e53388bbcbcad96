// Environment registry and the environment plan of a session: which environments exist, which agent
// trains where, and where the team trains together.
import type { AgentForgeConfig } from '../../config';
import { hashSeed } from '../../../../common/rng';
import { DelegationGame, ReferentialGame } from './messageGames';
import { NavigationEnv } from './navigation';
import { MAX_ENV_AGENTS, type EnvKind, type EnvSettings, type EnvSpec, type MultiAgentEnv } from './types';

export * from './types';
export { NavigationEnv } from './navigation';
export { DelegationGame, ReferentialGame } from './messageGames';

export function createEnv(settings: EnvSettings): MultiAgentEnv {
  switch (settings.kind) {
    case 'navigation':
      return new NavigationEnv(settings);
    case 'referential':
      return new ReferentialGame(settings);
    case 'delegation':
      return new DelegationGame(settings);
  }
}

export interface PlannedAgent {
  id: string;
  architecture: string;
  role?: string;
}

export interface EnvironmentPlan {
  format: 'forge-agent-env-plan/1';
  environments: { settings: EnvSettings; spec: EnvSpec }[];
  assignments: { agentId: string; environmentId: string }[];
  /** Where trainMultiAgentCoordination trains the team. */
  teamEnvironmentId: string;
  /** Team slot order: slot k is played by teamSlots[k % teamSlots.length] (slot 0 leads under "hierarchical"). */
  teamSlots: string[];
}

const KIND_ID: Record<EnvKind, string> = {
  navigation: 'simulation-navigation',
  referential: 'interactive-referential',
  delegation: 'interactive-delegation',
};

/**
 * Every environment the config asks for ("simulation" -> navigation, "interactive" -> referential and
 * delegation), sized for the team (2..MAX_ENV_AGENTS slots). Agents go where their role fits
 * (coordinator -> delegation, communication -> referential, specialist -> navigation), others round-robin;
 * communication_protocols keeps everyone in the message games when there are any.
 */
export function planEnvironments(config: AgentForgeConfig, agents: readonly PlannedAgent[]): EnvironmentPlan {
  if (agents.length > MAX_ENV_AGENTS) throw new Error(`the environments seat at most ${MAX_ENV_AGENTS} agents (got ${agents.length})`);
  const numAgents = Math.max(2, agents.length);
  const kinds: EnvKind[] = [];
  if (config.environmentTypes.includes('simulation')) kinds.push('navigation');
  if (config.environmentTypes.includes('interactive')) kinds.push('referential', 'delegation');
  const environments = kinds.map((kind, i) => {
    const settings: EnvSettings = {
      id: KIND_ID[kind],
      kind,
      numAgents,
      protocols: [...config.communicationProtocols],
      strategy: config.coordinationStrategy,
      seed: hashSeed(config.seed, 17, i),
    };
    return { settings, spec: createEnv(settings).spec };
  });
  const messageGames = kinds.filter((k) => k !== 'navigation');
  const eligible = config.trainingMode === 'communication_protocols' && messageGames.length > 0 ? messageGames : kinds;
  const preferred = (role = ''): EnvKind | undefined => {
    const r = role.toLowerCase();
    const want: EnvKind | undefined = r.includes('coordinat')
      ? 'delegation'
      : r.includes('communicat')
        ? 'referential'
        : r.includes('special')
          ? 'navigation'
          : undefined;
    return want && eligible.includes(want) ? want : undefined;
  };
  let next = 0;
  const assignments = agents.map((a) => ({
    agentId: a.id,
    environmentId: KIND_ID[preferred(a.role) ?? eligible[next++ % eligible.length]],
  }));
  const teamKind: EnvKind =
    config.trainingMode === 'communication_protocols' && eligible.includes('referential')
      ? 'referential'
      : kinds.includes('navigation')
        ? 'navigation'
        : 'delegation';
  // The coordinator (if any) takes slot 0, the leader's seat.
  const leader = agents.findIndex((a) => (a.role ?? '').toLowerCase().includes('coordinat'));
  const teamSlots = agents.map((a) => a.id);
  if (leader > 0) teamSlots.unshift(...teamSlots.splice(leader, 1));
  return { format: 'forge-agent-env-plan/1', environments, assignments, teamEnvironmentId: KIND_ID[teamKind], teamSlots };
}

export function envSettingsFromPlan(plan: EnvironmentPlan, environmentId: string): EnvSettings {
  const env = plan.environments.find((e) => e.settings.id === environmentId);
  if (!env)
    throw new Error(`environment "${environmentId}" is not in the plan (has: ${plan.environments.map((e) => e.settings.id).join(', ')})`);
  return env.settings;
}
