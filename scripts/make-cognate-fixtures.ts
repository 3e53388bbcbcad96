// Builds fixtures/cognate/: the first rows of the real datasets (a folder of the original files, by default
// ../shared/datasets beside the checkout on developer machines), in their original formats. JSON arrays are cut at record boundaries of the original text, so every kept record, the
// indentation and the number spelling ("51.0") stay byte-identical to the source.
//   npx tsx scripts/make-cognate-fixtures.ts [sourceDir] [outDir]
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

const SOURCE_DIR = process.argv[2] ?? path.resolve(__dirname, '../../shared/datasets');
const OUT_DIR = process.argv[3] ?? path.resolve(__dirname, '../fixtures/cognate');

const COUNTS = { gsm8kTrain: 40, gsm8kTest: 10, svamp: 40, hotpotqa: 12 };

/** [start, end) of each top-level element of a JSON array, found by scanning brackets outside strings. */
function arrayItemSpans(text: string): [number, number][] {
  const spans: [number, number][] = [];
  let depth = 0;
  let inString = false;
  let start = -1;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (inString) {
      if (ch === '\\') i++;
      else if (ch === '"') inString = false;
      continue;
    }
    if (ch === '"') {
      inString = true;
      if (depth === 1 && start < 0) start = i;
    } else if (ch === '[' || ch === '{') {
      if (depth === 1 && start < 0) start = i;
      depth++;
    } else if (ch === ']' || ch === '}') {
      depth--;
      if (depth === 1 && start >= 0) {
        spans.push([start, i + 1]);
        start = -1;
      }
    }
  }
  return spans;
}

/** The first `n` records of a JSON array file, keeping the original prefix, separators and suffix. */
function headOfJsonArray(text: string, n: number): string {
  const spans = arrayItemSpans(text);
  if (spans.length < n) throw new Error(`only ${spans.length} records, wanted ${n}`);
  const head = text.slice(0, spans[n - 1][1]) + text.slice(spans[spans.length - 1][1]);
  const parsed = JSON.parse(head) as unknown[];
  const original = JSON.parse(text) as unknown[];
  if (parsed.length !== n || JSON.stringify(parsed) !== JSON.stringify(original.slice(0, n))) throw new Error('cut changed the records');
  return head;
}

function headOfJsonl(text: string, n: number): string {
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  if (lines.length < n) throw new Error(`only ${lines.length} lines, wanted ${n}`);
  return lines.slice(0, n).join('\n') + '\n';
}

function write(rel: string, content: string): void {
  const file = path.join(OUT_DIR, rel);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, content);
  const sha = crypto.createHash('sha256').update(content).digest('hex');
  console.log(`${rel}\t${Buffer.byteLength(content)} bytes\tsha256 ${sha}`);
}

const read = (rel: string) => fs.readFileSync(path.join(SOURCE_DIR, rel), 'utf8');
write('gsm8k/train.jsonl', headOfJsonl(read('gsm8k/train.jsonl'), COUNTS.gsm8kTrain));
write('gsm8k/test.jsonl', headOfJsonl(read('gsm8k/test.jsonl'), COUNTS.gsm8kTest));
write('svamp/SVAMP.json', headOfJsonArray(read('svamp/SVAMP.json'), COUNTS.svamp));
write('hotpotqa/dev_distractor_sample.json', headOfJsonArray(read('hotpotqa/dev_distractor_sample.json'), COUNTS.hotpotqa));
