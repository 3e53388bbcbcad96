// Activity `checkInitFrom` (Cognate): runs before anything is written for a continued-pretraining or
// fine-tuning run. It checks that the exported parent exists and matches its manifest, takes the model
// fields the input did not set from the parent (as from_pretrained takes config.json), points
// config.tokenizerPath at the parent's tokenizer.json (so the data is tokenized as the parent was trained),
// and refuses — non-retryable, naming each difference — a parent whose architecture, shapes or tokenizer
// do not fit. Reads JSON and hashes files only: runs on the worker, no child process.
import { ApplicationFailure } from '@temporalio/common';
import { FAILURE_TYPES } from '../../common/constants';
import { formatZodError } from '../../common/validation';
import { CognateInputSchema, type CognateConfig, type CognateInitFrom, type CognateModelSpec } from './config';
import { COGNATE_INHERITED_FIELDS, cognateParentMismatches, inspectCognateParent, type CognateParentRef } from './engine/init-from';

export interface CheckCognateInitFromInput {
  sessionId: string;
  initFrom: CognateInitFrom;
  config: CognateConfig;
  models?: CognateModelSpec[];
  /** Config fields the input set itself (never replaced by the parent's). */
  explicitFields: string[];
}

export interface CheckedCognateInitFrom {
  parent: CognateParentRef;
  /** The run's config: the parent's model fields where the input left them unset, the parent's tokenizer. */
  config: CognateConfig;
  /** The input's models, else one model named like the parent. */
  models: CognateModelSpec[];
  /** Config fields taken from the parent. */
  inherited: string[];
}

const refuse = (message: string): never => {
  throw ApplicationFailure.nonRetryable(message, FAILURE_TYPES.invalidParent);
};

export function checkCognateInitFrom(dataDir: string, input: CheckCognateInitFromInput): CheckedCognateInitFrom {
  let parent: CognateParentRef;
  try {
    parent = inspectCognateParent(dataDir, input.initFrom);
  } catch (e) {
    return refuse((e as Error).message);
  }
  const name = `initFrom ${parent.sessionId}/${parent.model}`;
  const explicit = new Set(input.explicitFields);
  const inherited: string[] = COGNATE_INHERITED_FIELDS.filter((k) => !explicit.has(k) && parent.modelConfig[k] !== input.config[k]);
  const merged = {
    ...input.config,
    ...Object.fromEntries(inherited.map((k) => [k, parent.modelConfig[k as keyof typeof parent.modelConfig]])),
  };
  // A seqLen left at its default must not exceed the parent's position range.
  if (!explicit.has('seqLen') && merged.seqLen > merged.maxSeqLen) {
    merged.seqLen = merged.maxSeqLen;
    inherited.push('seqLen');
  }
  const differs = cognateParentMismatches(parent, merged);
  if (differs.length > 0) refuse(`${name} (${parent.dir}) does not fit this run: ${differs.join('; ')}`);
  if (!merged.tokenizerPath) merged.tokenizerPath = parent.tokenizerPath;
  const parsed = CognateInputSchema.safeParse({ sessionId: input.sessionId, config: merged });
  if (!parsed.success) refuse(`${name}: the config with the parent's model fields is invalid: ${formatZodError(parsed.error)}`);
  return { parent, config: merged, models: input.models ?? [{ name: parent.model }], inherited };
}

export function createCognateInitFromActivities(deps: { dataDir: string }) {
  return {
    /** Check a continued-pretraining / fine-tuning run's parent before anything is written (see the file header). */
    async checkInitFrom(input: CheckCognateInitFromInput): Promise<CheckedCognateInitFrom> {
      return checkCognateInitFrom(deps.dataDir, input);
    },
  };
}
