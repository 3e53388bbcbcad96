// Agent Forge activities: the factory the worker registers (and whose type the workflow imports) and
// the engine's public API for benches and scripts that train without Temporal.
export { createAgentActivities, type AgentActivities } from './activities';
export { runAgentForgeDirect } from './engine/run';
