// The three sources' row schemas (hub parquet and original JSON), checked row by row, and their text
// formatting. A bad row is a bad file: the error names the file, the row and the field, and is not retried.
import { NonRetryableError } from '../../../common/child';
import type { CognateConfig } from '../config';

export type SourceName = CognateConfig['datasetSources'][number];

/** Short sources are single problems; long ones carry many context paragraphs (they exercise memory). */
export const LONG_SOURCES: ReadonlySet<SourceName> = new Set(['HotpotQA']);

export interface Example {
  source: SourceName;
  text: string;
  long: boolean;
}

export function malformed(where: string, what: string): NonRetryableError {
  return new NonRetryableError(`${where}: ${what}`);
}

function field(row: Record<string, unknown>, name: string, where: string): unknown {
  if (!(name in row) || row[name] === undefined || row[name] === null) throw malformed(where, `missing field "${name}"`);
  return row[name];
}

function str(row: Record<string, unknown>, name: string, where: string): string {
  const value = field(row, name, where);
  if (typeof value !== 'string') throw malformed(where, `field "${name}" must be a string (found ${describe(value)})`);
  return value;
}

function describe(value: unknown): string {
  if (Array.isArray(value)) return 'a list';
  if (value === null) return 'null';
  return typeof value === 'object'
    ? 'an object'
    : `${typeof value} ${JSON.stringify(typeof value === 'bigint' ? value.toString() : value)?.slice(0, 40)}`;
}

function asObject(row: unknown, where: string): Record<string, unknown> {
  if (typeof row !== 'object' || row === null || Array.isArray(row))
    throw malformed(where, `row must be an object (found ${describe(row)})`);
  return row as Record<string, unknown>;
}

/** GSM8K (`openai/gsm8k` main, or grade-school-math *.jsonl): question + worked answer ending in "#### n". */
export function formatGsm8k(raw: unknown, where: string): Example {
  const row = asObject(raw, where);
  const question = str(row, 'question', where);
  const answer = str(row, 'answer', where);
  return { source: 'GSM8K', text: `Problem: ${question.trim()}\nSolution: ${answer.trim()}`, long: false };
}

/** SVAMP (`ChilleD/SVAMP` or arkilpatel/SVAMP SVAMP.json): Body + Question, solved as Equation = Answer. */
export function formatSvamp(raw: unknown, where: string): Example {
  const row = asObject(raw, where);
  const body = str(row, 'Body', where);
  const question = str(row, 'Question', where);
  const equation = str(row, 'Equation', where);
  const answerRaw = field(row, 'Answer', where);
  // Hub parquet stores Answer as float64, the original JSON as a number; both print as e.g. "51"
  const answer =
    typeof answerRaw === 'number' ? answerRaw : typeof answerRaw === 'string' && answerRaw.trim() !== '' ? Number(answerRaw) : NaN;
  if (!Number.isFinite(answer)) throw malformed(where, `field "Answer" must be a number (found ${describe(answerRaw)})`);
  return { source: 'SVAMP', text: `Problem: ${body.trim()} ${question.trim()}\nSolution: ${equation.trim()} = ${answer}`, long: false };
}

/**
 * HotpotQA distractor: the hub stores context as {title: [...], sentences: [[...]]}, the original JSON as
 * [[title, [sentences]]]. Sentences keep their own leading spaces, so they are joined without a separator.
 */
export function formatHotpotQa(raw: unknown, where: string): Example {
  const row = asObject(raw, where);
  const question = str(row, 'question', where);
  const answer = str(row, 'answer', where);
  const context = field(row, 'context', where);
  const paragraphs: [string, string[]][] = [];
  const checkSentences = (sentences: unknown, at: string): string[] => {
    if (!Array.isArray(sentences) || !sentences.every((s) => typeof s === 'string'))
      throw malformed(where, `field "${at}" must be a list of strings`);
    return sentences;
  };
  if (Array.isArray(context)) {
    context.forEach((pair, i) => {
      if (!Array.isArray(pair) || pair.length !== 2 || typeof pair[0] !== 'string')
        throw malformed(where, `field "context[${i}]" must be [title, sentences]`);
      paragraphs.push([pair[0], checkSentences(pair[1], `context[${i}][1]`)]);
    });
  } else if (typeof context === 'object' && context !== null) {
    const { title, sentences } = context as { title?: unknown; sentences?: unknown };
    if (!Array.isArray(title) || !title.every((t) => typeof t === 'string'))
      throw malformed(where, 'field "context.title" must be a list of strings');
    if (!Array.isArray(sentences) || sentences.length !== title.length)
      throw malformed(where, `field "context.sentences" must be a list with one entry per title (${title.length})`);
    title.forEach((t: string, i) => paragraphs.push([t, checkSentences(sentences[i], `context.sentences[${i}]`)]));
  } else {
    throw malformed(where, `field "context" must be a list of [title, sentences] or {title, sentences} (found ${describe(context)})`);
  }
  const contextText = paragraphs.map(([title, sentences]) => `${title}: ${sentences.join('').trim()}`).join('\n');
  return { source: 'HotpotQA', text: `Context:\n${contextText}\nQuestion: ${question.trim()}\nAnswer: ${answer.trim()}`, long: true };
}

export const FORMATTERS: Record<SourceName, (raw: unknown, where: string) => Example> = {
  GSM8K: formatGsm8k,
  SVAMP: formatSvamp,
  HotpotQA: formatHotpotQa,
};

/** Columns a hub parquet file must have; checked from the schema before any row is read. */
export const REQUIRED_COLUMNS: Record<SourceName, string[]> = {
  GSM8K: ['question', 'answer'],
  SVAMP: ['Body', 'Question', 'Equation', 'Answer'],
  HotpotQA: ['question', 'answer', 'context'],
};
