// cognatePretrainingWorkflow: validate → prepare datasets → train each model (parallel across Cognate
// workers) → artifacts. Deterministic and thin: all work happens in activities; progress arrives by signal.
// Training runs in chunks (trainModels trains one model for at most trainingChunkSeconds); the run continues
// as new when its history budget is spent (workflows/shared/rollover.ts), carrying its state in `carried`.
import {
  ApplicationFailure,
  continueAsNew,
  isCancellation,
  patched,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  upsertMemo,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { createCognateActivities, TrainedModel } from '../../activities/cognate';
import type { PrepareResult } from '../../activities/cognate/data';
import { PATCHES, RunBudget } from '../shared/rollover';
import { formatZodError } from '../../common/validation';
import { CognateInputSchema, DEFAULT_MODELS, type CognateInput, type CognateProgress } from '../../activities/cognate/config';
import { FAILURE_TYPES, NON_RETRYABLE_TYPES } from '../../common/constants';
import { mean } from '../../common/stats';
import { progressAttributeUpdates, type ProgressAttributes } from '../../common/search-attributes';
import { cognateProgressQuery, modelProgressSignal } from './messages';

type Activities = ReturnType<typeof createCognateActivities>;

const { checkInitFrom, prepareDatasets, createModelArtifacts } = proxyActivities<Activities>({
  startToCloseTimeout: '2 hours',
  heartbeatTimeout: '60 seconds',
  retry: { initialInterval: '2 seconds', maximumInterval: '1 minute', maximumAttempts: 5, nonRetryableErrorTypes: NON_RETRYABLE_TYPES },
});

// A dead worker is noticed after heartbeatTimeout (heartbeats come from the worker's event loop every 2 s,
// whatever the step time: compute runs in a child process); the retry resumes from the newest good checkpoint.
// WAIT_CANCELLATION_COMPLETED lets training write its final checkpoint before the run reports cancelled.
const TRAINING_OPTIONS = {
  startToCloseTimeout: '7 days',
  heartbeatTimeout: '30 seconds',
  cancellationType: 'WAIT_CANCELLATION_COMPLETED',
  retry: { initialInterval: '2 seconds', maximumInterval: '1 minute', maximumAttempts: 20, nonRetryableErrorTypes: NON_RETRYABLE_TYPES },
} as const;
const { trainModels } = proxyActivities<Activities>(TRAINING_OPTIONS);
/** The same activity with a one-line summary the Web UI shows on the event, so chunks stand out from progress signals. */
const trainModelsChunk = (summary: string) => proxyActivities<Activities>({ ...TRAINING_OPTIONS, summary }).trainModels;

/** What a run hands to the next one at continue-as-new. */
export interface CognateCarried {
  state: CognateProgress;
  dataset: PrepareResult;
  /** The latest chunk's result per model. */
  models: Record<string, TrainedModel>;
  /** Step of the latest resume after a crash or restart, per model (0: none). */
  resumedFromStep: Record<string, number>;
  /** Runs before this one. */
  runs: number;
  /** The checked fine-tuning parent (checkInitFrom runs once, in the first run). */
  initFrom?: InitFromResult | null;
}

type InitFromResult = Awaited<ReturnType<Activities['checkInitFrom']>>;

const PHASE_START = { datasets: 0, training: 0.1, artifacts: 0.95 } as const;

export async function cognatePretrainingWorkflow(input: CognateInput, carried?: CognateCarried) {
  const budget = new RunBudget();
  const state: CognateProgress = carried?.state ?? {
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
    budget.signals++;
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
  let initFrom: InitFromResult | null = carried?.initFrom ?? null;
  if (initFrom) ({ config, models } = initFrom);
  modelCount = models.length;
  state.totalSteps = config.maxSteps;

  // Search attributes (ForgePhase, ForgeStep, ForgeLoss, ForgeBackend) are updated at phase changes and chunk
  // ends only: each update is one history event. Behind a patch: recorded histories have none.
  const attributes = (p: ProgressAttributes): void => {
    if (patched(PATCHES.searchAttributes)) upsertSearchAttributes(progressAttributeUpdates(p));
  };

  // Shown as the run's current details in the Web UI, also for runs started with the plain CLI.
  const enter = (phase: CognateProgress['phase'], message: string) => {
    state.phase = phase;
    state.message = message;
    setCurrentDetails(`**Cognate pretraining** session ${sessionId} · phase **${phase}** · ${message}`);
    attributes({ phase });
  };

  try {
    // Continued pretraining / fine-tuning: check the parent (and take its model fields and tokenizer) before
    // anything is written. Once per session: a continued run carries the result.
    if (!carried && parsed.data.initFrom) {
      initFrom = await checkInitFrom({
        sessionId,
        initFrom: parsed.data.initFrom,
        config,
        models: parsed.data.models,
        explicitFields: Object.keys((input as { config?: object }).config ?? {}),
      });
      ({ config, models } = initFrom);
      modelCount = models.length;
      state.totalSteps = config.maxSteps;
      upsertMemo({ initFrom: `${initFrom.parent.sessionId}/${initFrom.parent.model}` });
    }

    let dataset: PrepareResult;
    if (carried) {
      dataset = carried.dataset;
    } else {
      enter('datasets', `preparing ${config.datasetSources.join(', ')} (${config.datasetMode})`);
      dataset = await prepareDatasets({ sessionId, config });
    }

    let trained: TrainedModel[];
    if (!patched(PATCHES.chunkedTraining)) {
      // Histories recorded before chunked training: one activity per model for the whole training.
      enter('training', `training ${modelCount} model(s) for ${config.maxSteps} steps`);
      state.progress = PHASE_START.training;
      trained = await Promise.all(
        models.map((model) => trainModels({ sessionId, config, model, datasetDir: dataset.datasetDir, initFrom: initFrom?.parent })),
      );
    } else {
      if (carried)
        setCurrentDetails(`**Cognate pretraining** session ${sessionId} · phase **training** · continued (run ${carried.runs + 1})`);
      else {
        enter('training', `training ${modelCount} model(s) for ${config.maxSteps} steps`);
        state.progress = PHASE_START.training;
      }
      const latest: Record<string, TrainedModel> = { ...carried?.models };
      const resumedFromStep: Record<string, number> = { ...carried?.resumedFromStep };
      const done = (name: string) => (latest[name]?.finalStep ?? 0) >= config.maxSteps;
      budget.watch();
      await Promise.all(
        models.map(async (model) => {
          // The first chunk of a continued run takes whatever checkpoint is newest as the continuation (a chunk
          // cancelled for the roll-over wrote it); a fresh run expects none, so one found there is a resume.
          let from: number | null = carried ? null : 0;
          while (!done(model.name)) {
            const chunk = await budget.chunk(() =>
              trainModelsChunk(
                `${model.name}: from step ${from ?? latest[model.name]?.finalStep ?? 0} (≤ ${config.trainingChunkSeconds} s)`,
              )({
                sessionId,
                config,
                model,
                datasetDir: dataset.datasetDir,
                initFrom: initFrom?.parent,
                chunkSeconds: config.trainingChunkSeconds,
                fromStep: from,
                maxSignals: budget.signalShare(modelCount),
              }),
            );
            if (!chunk) return;
            from = chunk.finalStep;
            latest[model.name] = chunk;
            resumedFromStep[model.name] = Math.max(resumedFromStep[model.name] ?? 0, chunk.resumedFromStep);
            const ends = Object.values(latest);
            attributes({
              step: Math.min(...ends.map((m) => m.finalStep)),
              loss: mean(ends.map((m) => m.finalLoss)),
              backend: chunk.backend,
            });
          }
        }),
      );
      if (!models.every((m) => done(m.name))) {
        return await continueAsNew<typeof cognatePretrainingWorkflow>(input, {
          state,
          dataset,
          models: latest,
          resumedFromStep,
          runs: (carried?.runs ?? 0) + 1,
          initFrom,
        });
      }
      trained = models.map((m) => ({ ...latest[m.name], resumedFromStep: resumedFromStep[m.name] ?? 0 }));
    }

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
      dataset,
      models: trained,
      artifacts,
      initFrom: initFrom ? { ...initFrom.parent, inherited: initFrom.inherited } : null,
    };
  } catch (err) {
    state.phase = isCancellation(err) ? 'cancelled' : 'failed';
    attributes({ phase: state.phase });
    state.message = isCancellation(err) ? 'cancelled: training stopped with a final checkpoint' : `failed: ${(err as Error).message}`;
    throw err;
  }
}
