// Cognate pretraining activities: Temporal wiring of the engine. Each one supervises a compute child process
// through the shared layer (common/supervise.ts) so the worker's event loop stays free for heartbeats,
// queries and cancellation. trainModels trains ONE model for at most `chunkSeconds`, checkpoints and
// returns; the workflow calls it again until the model reached maxSteps.
import fs from 'node:fs';
import path from 'node:path';
import { Context } from '@temporalio/activity';
import type { Client } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { assertWritableDir, checkpointDir, sessionDir } from '../../common/paths';
import { FAILURE_TYPES } from '../../common/constants';
import { childModulePath } from '../../common/child';
import { writeRunReport } from '../../common/report/html';
import { tensorboardDir } from '../../common/tensorboard';
import { writeJsonAtomic } from '../../common/export/files';
import { graceFollowingMeasurements, superviseChild, superviseCompute } from '../../common/supervise';
import { MODEL_PROGRESS_SIGNAL, type ModelProgressUpdate } from './config';
import { createCognateInitFromActivities } from './check-init-from';
import type { CognateParentRef } from './engine/init-from';
import type { CognateConfig, CognateModelSpec } from './config';
import type { PrepareEvent, PrepareJob, PrepareResult } from './data';
import type { TrainEvent, TrainJob, TrainSummary } from './engine/trainer';
import type { ExportJob, ExportResult } from './engine/artifacts';
import { cognateReportUnit } from './engine/report';
import { cognateTelemetry } from './telemetry';

export interface TrainedModel {
  model: string;
  focus?: string;
  seed: number;
  checkpointDir: string;
  /** Full training summary (loss curve, validation, ACT, LTM, resumes) as JSON on disk. */
  summaryPath: string;
  finalStep: number;
  finalLoss: number | null;
  validationLoss: number | null;
  resumedFromStep: number;
  stopped: boolean;
  /** Fine-tuning runs: validation loss of the parent on this run's datasets before the first step (validationLoss is after). */
  validationBefore?: number | null;
  /** The tfjs backend and device that trained this chunk, e.g. "tensorflow cpu (libtensorflow)". */
  backend?: string;
}

export function createCognateActivities(deps: { client: Client; dataDir: string }) {
  const { client, dataDir } = deps;

  return {
    ...createCognateInitFromActivities(deps),
    async prepareDatasets(input: { sessionId: string; config: CognateConfig }): Promise<PrepareResult> {
      try {
        assertWritableDir(dataDir, 'FORGE_DATA_DIR');
      } catch (err) {
        throw ApplicationFailure.nonRetryable((err as Error).message, FAILURE_TYPES.invalidConfig);
      }
      let last: PrepareEvent | undefined;
      return superviseChild<PrepareJob, PrepareEvent, PrepareResult>({
        modulePath: childModulePath(path.join(__dirname, 'data'), 'prepare'),
        input: { config: input.config, dataDir, hubEndpoint: process.env.HF_ENDPOINT },
        onEvent: (e) => (last = e),
        details: () => last ?? { stage: 'starting' },
        nonRetryableType: FAILURE_TYPES.invalidDataset,
      });
    },

    /** Train ONE model: from its newest checkpoint, for at most chunkSeconds (unset: to maxSteps). */
    async trainModels(input: {
      sessionId: string;
      config: CognateConfig;
      model: CognateModelSpec;
      datasetDir: string;
      /** Fine-tuning: the checked parent (checkInitFrom); loaded on a fresh start only. */
      initFrom?: CognateParentRef;
      /** Train at most this long, then checkpoint and return (finalStep < maxSteps). */
      chunkSeconds?: number;
      /**
       * Step the previous chunk ended at: a checkpoint elsewhere, or a retry, counts as a resume. null: any
       * checkpoint is the planned continuation (the first chunk after continue-as-new). Unset: every checkpoint is a resume.
       */
      fromStep?: number | null;
      /** Most progress signals this call may send (its share of the workflow run's budget). */
      maxSignals?: number;
    }): Promise<TrainedModel> {
      const { sessionId, config, model, datasetDir } = input;
      const ctx = Context.current();
      const ckptDir = checkpointDir(dataDir, 'cognate', sessionId, model.name);
      fs.mkdirSync(ckptDir, { recursive: true });
      const logPath = path.join(ckptDir, 'training_log.jsonl');
      const seed = config.seed + (model.seedOffset ?? 0);
      const prior = ctx.info.heartbeatDetails as { step?: number; checkpoint?: string | null } | undefined;
      const live: ModelProgressUpdate = {
        model: model.name,
        phase: 'training',
        step: prior?.step ?? input.fromStep ?? 0,
        totalSteps: config.maxSteps,
        loss: null,
        learningRate: null,
        message: 'starting',
      };
      const details: { step: number; checkpoint: string | null } = { step: live.step, checkpoint: prior?.checkpoint ?? null };
      const measured = { microBatchSeconds: null as number | null, checkpointSeconds: null as number | null };
      let backend: string | undefined;
      const telemetry = cognateTelemetry({ dataDir, sessionId, model: model.name, warn: (m) => ctx.log.warn(m) });

      const job: TrainJob = {
        config,
        seed,
        datasetDir,
        checkpointDir: ckptDir,
        modelName: model.name,
        chunkSeconds: input.chunkSeconds,
        continuation: input.fromStep !== undefined ? { fromStep: input.fromStep, attempt: ctx.info.attempt } : undefined,
        ...(input.initFrom ? { initFrom: input.initFrom } : {}),
      };
      const summary = await superviseCompute<TrainJob, TrainEvent, TrainSummary, ModelProgressUpdate>({
        client,
        modulePath: childModulePath(path.join(__dirname, 'engine'), 'train'),
        input: job,
        details,
        // A stop waits for the current micro-batch and the checkpoint write: give it what they measured.
        stopGraceMs: () => graceFollowingMeasurements(measured.microBatchSeconds, measured.checkpointSeconds),
        progress: {
          signalName: MODEL_PROGRESS_SIGNAL,
          update: live,
          intervalMs: config.progressIntervalSeconds * 1000,
          maxSignals: input.maxSignals,
          final: (s) => (s.finalStep >= config.maxSteps ? `finished at step ${s.finalStep}` : `checkpointed at step ${s.finalStep}`),
        },
        onEvent: (event) => {
          fs.appendFileSync(logPath, `${JSON.stringify({ ...event, attempt: ctx.info.attempt, time: new Date().toISOString() })}\n`);
          telemetry.onEvent(event);
          switch (event.kind) {
            case 'step':
              details.step = event.step;
              measured.microBatchSeconds = Math.max(measured.microBatchSeconds ?? 0, event.microBatchSeconds);
              Object.assign(live, {
                step: event.step,
                loss: event.loss,
                learningRate: event.learningRate,
                tokensPerSecond: event.tokensPerSecond,
                message: `step ${event.step}/${config.maxSteps} loss ${event.loss.toFixed(4)}`,
              });
              return 'signal';
            case 'validation':
              Object.assign(live, {
                valLoss: event.loss,
                message: `validation at step ${event.step}: loss ${event.loss.toFixed(4)}, ppl ${event.perplexity.toFixed(1)}`,
              });
              return 'now';
            case 'checkpoint':
              details.checkpoint = event.path;
              measured.checkpointSeconds = event.seconds;
              return;
            case 'continued':
              details.step = event.fromStep;
              Object.assign(live, { step: event.fromStep, message: `continuing from step ${event.fromStep}` });
              return;
            case 'started':
              backend = `${event.backend} ${event.device}`;
              return;
            case 'resumed':
              details.step = event.fromStep;
              Object.assign(live, {
                step: event.fromStep,
                resumedFromStep: event.fromStep,
                message: `resumed from step ${event.fromStep} (attempt ${ctx.info.attempt})`,
              });
              return 'now';
            case 'warning':
              ctx.log.warn(event.message);
              return;
          }
        },
      }).finally(() => telemetry.close());

      const summaryPath = path.join(ckptDir, 'summary.json');
      writeJsonAtomic(summaryPath, { ...summary, model: model.name, focus: model.focus, seed });
      return {
        model: model.name,
        focus: model.focus,
        seed,
        checkpointDir: ckptDir,
        summaryPath,
        finalStep: summary.finalStep,
        finalLoss: summary.finalLoss,
        validationLoss: summary.validation?.loss ?? null,
        resumedFromStep: summary.resumedFromStep ?? 0,
        stopped: summary.stopped,
        backend,
        ...(summary.initFrom ? { validationBefore: summary.initFrom.validationBefore.loss } : {}),
      };
    },

    async createModelArtifacts(input: {
      sessionId: string;
      config: CognateConfig;
      datasetDir: string;
      models: TrainedModel[];
    }): Promise<{ files: ExportResult['files']; report: string }> {
      const files: ExportResult['files'] = [];
      for (const m of input.models) {
        const job: ExportJob = {
          model: m.model,
          checkpointDir: m.checkpointDir,
          summaryPath: m.summaryPath,
          logPath: path.join(m.checkpointDir, 'training_log.jsonl'),
          datasetDir: input.datasetDir,
          outDir: path.join(sessionDir(dataDir, 'cognate', input.sessionId), m.model),
          config: input.config,
        };
        const result = await superviseChild<ExportJob, { stage: string }, ExportResult>({
          modulePath: childModulePath(path.join(__dirname, 'engine'), 'export'),
          input: job,
          onEvent: () => undefined,
          details: () => ({ model: m.model }),
        });
        files.push(...result.files);
      }
      // One page for the run: every model's curves and final metrics, and the config (forge report prints its path).
      const dir = sessionDir(dataDir, 'cognate', input.sessionId);
      const report = writeRunReport(dir, {
        title: `Cognate pretraining — ${input.sessionId}`,
        pipeline: 'cognate',
        sessionId: input.sessionId,
        units: input.models.map((m) => cognateReportUnit(path.join(dir, m.model))),
        config: input.config,
        notes: [`TensorBoard: tensorboard --logdir ${tensorboardDir(dataDir, 'cognate', input.sessionId)}`],
      });
      files.push({ ...report, model: '(run report)' });
      return { files, report: report.path };
    },
  };
}
