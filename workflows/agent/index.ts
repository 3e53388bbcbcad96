export { agentForgeTrainingWorkflow } from './workflow';
