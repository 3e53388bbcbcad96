export { cognatePretrainingWorkflow } from './workflow';
