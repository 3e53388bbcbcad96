// cognatePretrainingWorkflow: validate → prepare datasets → train each model (parallel across Cognate
// workers) → artifacts. Deterministic and thin: all work happens in activities; progress arrives by signal.
import { ApplicationFailure, isCancellation, proxyActivities, setCurrentDetails, setHandler, upsertMemo, workflowInfo } from '@temporalio/workflow';
import type { createCognateActivities } from '../../activities/cognate';
import { formatZodError } from '../../common/validation';
import { CognateInputSchema, DEFAULT_MODELS, type CognateInput, type CognateProgress } from '../../activities/cognate/config';
import { FAILURE_TYPES, NON_RETRYABLE_TYPES } from '../../common/constants';
import { mean } from '../../common/stats';
import { cognateProgressQuery, modelProgressSignal } from './messages';

type Activities = ReturnType<typeof createCognateActivities>;

const { checkInitFrom, prepareDatasets, createModelArtifacts } = proxyActivities<Activities>({
  startToCloseTimeout: '2 hours',
  heartbeatTimeout: '60 seconds',
  retry: { initialInterval: '2 seconds', maximumInterval: '1 minute', maximumAttempts: 5, nonRetryableErrorTypes: NON_RETRYABLE_TYPES },
});

// A dead worker is noticed after heartbeatTimeout; the retry resumes from the newest good checkpoint.
// WAIT_CANCELLATION_COMPLETED lets training write its final checkpoint before the run reports cancelled.
const { trainModels } = proxyActivities<Activities>({
  startToCloseTimeout: '7 days',
  heartbeatTimeout: '60 seconds',
  cancellationType: 'WAIT_CANCELLATION_COMPLETED',
  retry: { initialInterval: '2 seconds', maximumInterval: '1 minute', maximumAttempts: 20, nonRetryableErrorTypes: NON_RETRYABLE_TYPES },
});

const PHASE_START = { datasets: 0, training: 0.1, artifacts: 0.95 } as const;

export async function cognatePretrainingWorkflow(input: CognateInput) {
  const state: CognateProgress = {
    progress: 0,
    message: 'validating input',
    step: 0,
    totalSteps: 0,
    loss: null,
    learningRate: null,
    phase: 'validating',
    models: {},
  };
  setHandler(cognateProgressQuery, () => state);
  setHandler(modelProgressSignal, (update) => {
    state.models[update.model] = update;
    if (state.phase !== 'training') return;
    const models = Object.values(state.models);
    const fraction = models.reduce((s, m) => s + m.step / Math.max(1, m.totalSteps), 0) / Math.max(1, modelCount);
    state.progress = PHASE_START.training + (PHASE_START.artifacts - PHASE_START.training) * Math.min(1, fraction);
    state.step = Math.min(...models.map((m) => m.step));
    state.loss = mean(models.map((m) => m.loss));
    state.learningRate = update.learningRate;
    state.message = `${update.model}: ${update.message}`;
  });

  const parsed = CognateInputSchema.safeParse(input);
  if (!parsed.success) {
    state.phase = 'failed';
    state.message = `invalid input: ${formatZodError(parsed.error)}`;
    throw ApplicationFailure.nonRetryable(state.message, FAILURE_TYPES.invalidInput);
  }
  const { sessionId } = parsed.data;
  let config = parsed.data.config;
  let models = parsed.data.models ?? DEFAULT_MODELS;
  let modelCount = models.length;
  state.totalSteps = config.maxSteps;

  // Shown as the run's current details in the Web UI, also for runs started with the plain CLI.
  const enter = (phase: CognateProgress['phase'], message: string) => {
    state.phase = phase;
    state.message = message;
    setCurrentDetails(`**Cognate pretraining** session ${sessionId} · phase **${phase}** · ${message}`);
  };

  try {
    // Continued pretraining / fine-tuning: check the parent (and take its model fields and tokenizer) before anything is written.
    const initFrom = parsed.data.initFrom
      ? await checkInitFrom({ sessionId, initFrom: parsed.data.initFrom, config, models: parsed.data.models, explicitFields: Object.keys((input as { config?: object }).config ?? {}) })
      : null;
    if (initFrom) {
      ({ config, models } = initFrom);
      modelCount = models.length;
      upsertMemo({ initFrom: `${initFrom.parent.sessionId}/${initFrom.parent.model}` });
    }

    enter('datasets', `preparing ${config.datasetSources.join(', ')} (${config.datasetMode})`);
    const dataset = await prepareDatasets({ sessionId, config });

    enter('training', `training ${modelCount} model(s) for ${config.maxSteps} steps`);
    state.progress = PHASE_START.training;
    const trained = await Promise.all(models.map((model) => trainModels({ sessionId, config, model, datasetDir: dataset.datasetDir, initFrom: initFrom?.parent })));

    enter('artifacts', 'exporting models');
    state.progress = PHASE_START.artifacts;
    const artifacts = await createModelArtifacts({ sessionId, config, datasetDir: dataset.datasetDir, models: trained });

    enter('completed', `completed: ${artifacts.files.length} files written`);
    state.progress = 1;
    state.step = config.maxSteps;
    return {
      sessionId,
      workflowId: workflowInfo().workflowId,
      status: 'completed' as const,
      config,
      initFrom: initFrom ? { ...initFrom.parent, inherited: initFrom.inherited } : null,
      dataset,
      models: trained,
      artifacts,
    };
  } catch (err) {
    state.phase = isCancellation(err) ? 'cancelled' : 'failed';
    state.message = isCancellation(err) ? 'cancelled: training stopped with a final checkpoint' : `failed: ${(err as Error).message}`;
    throw err;
  }
}

