// Cognate pretraining activities: the factory the worker registers (and whose type the workflow imports).
export { createCognateActivities, type TrainedModel } from './activities';
