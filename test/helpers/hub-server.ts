// A loopback stand-in for the Hugging Face hub: the real fixture rows (fixtures/cognate) as parquet files,
// in the hub's schemas and URL layout (/datasets/<repo>/resolve/<revision>/<path>), answering like the hub
// does: a redirect to a CDN URL carrying X-Linked-Etag (sha256), X-Linked-Size and X-Repo-Commit.
// Failures can be injected per file: an HTTP status, a body cut short, or a corrupt (truncated) file.
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { parquetWriteBuffer, type SchemaElement } from 'hyparquet-writer';
import { FIXTURES_DIR, HUB_DATASETS } from '../../activities/cognate/data/sources';

export type HubFailure =
  /** Answer the resolve request with this status. */
  | { file: string; kind: 'status'; status: number; times?: number }
  /** Send the full Content-Length but only half the body, then drop the connection. */
  | { file: string; kind: 'truncate'; times?: number }
  /** Publish a truncated parquet file as if it were the real one (its etag matches the broken bytes). */
  | { file: string; kind: 'corrupt' };

export interface HubServerOptions {
  fixturesDir?: string;
  failures?: HubFailure[];
}

export interface HubRequest {
  method: string;
  path: string;
  status: number;
}

export interface HubServer {
  url: string;
  requests: HubRequest[];
  /** Served files by repo path ("openai/gsm8k/main/train-00000-of-00001.parquet"), for assertions. */
  files: Map<string, { sha256: string; bytes: number; rows: number }>;
  close(): Promise<void>;
}

const STRING = (name: string): SchemaElement => ({ name, type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'OPTIONAL' });
const LIST = (name: string): SchemaElement[] => [
  { name, repetition_type: 'OPTIONAL', converted_type: 'LIST', num_children: 1 },
  { name: 'list', repetition_type: 'REPEATED', num_children: 1 },
];

function table(columns: { schema: SchemaElement[]; name: string; values: unknown[] }[]): Buffer {
  const schema: SchemaElement[] = [{ name: 'schema', num_children: columns.length }, ...columns.flatMap((c) => c.schema)];
  return Buffer.from(parquetWriteBuffer({ columnData: columns.map((c) => ({ name: c.name, data: c.values as never })), schema }));
}

function stringColumns(rows: Record<string, unknown>[], names: string[]) {
  return names.map((name) => ({ name, schema: [STRING(name)], values: rows.map((r) => r[name]) }));
}

type Row = Record<string, unknown>;

/** Hub parquet files built from the fixture rows, keyed "<repo>/<path in repo>". */
function buildHubFiles(fixturesDir: string): Map<string, { body: Buffer; rows: number }> {
  const readJsonl = (rel: string): Row[] =>
    fs
      .readFileSync(path.join(fixturesDir, rel), 'utf8')
      .split('\n')
      .filter((l) => l.trim())
      .map((l) => JSON.parse(l) as Row);
  const readJson = (rel: string): Row[] => JSON.parse(fs.readFileSync(path.join(fixturesDir, rel), 'utf8')) as Row[];
  const out = new Map<string, { body: Buffer; rows: number }>();
  const put = (repoKey: keyof typeof HUB_DATASETS, file: string, rows: Row[], build: (rows: Row[]) => Buffer) =>
    out.set(`${HUB_DATASETS[repoKey].repo}/${file}`, { body: build(rows), rows: rows.length });

  // openai/gsm8k main: question, answer
  const gsm = (rows: Row[]) => table(stringColumns(rows, ['question', 'answer']));
  put('GSM8K', HUB_DATASETS.GSM8K.files.train[0], readJsonl('gsm8k/train.jsonl'), gsm);
  put('GSM8K', HUB_DATASETS.GSM8K.files.validation[0], readJsonl('gsm8k/test.jsonl'), gsm);

  // ChilleD/SVAMP: the original columns with Answer as float64, plus question_concat
  const svamp = (rows: Row[]) =>
    table([
      ...stringColumns(rows, ['ID', 'Body', 'Question', 'Equation']),
      { name: 'Answer', schema: [{ name: 'Answer', type: 'DOUBLE', repetition_type: 'OPTIONAL' }], values: rows.map((r) => r.Answer) },
      ...stringColumns(rows, ['Type']),
      { name: 'question_concat', schema: [STRING('question_concat')], values: rows.map((r) => `${String(r.Body)} ${String(r.Question)}`) },
    ]);
  const svampRows = readJson('svamp/SVAMP.json');
  const svampTrain = Math.round(svampRows.length * 0.75);
  put('SVAMP', HUB_DATASETS.SVAMP.files.train[0], svampRows.slice(0, svampTrain), svamp);
  put('SVAMP', HUB_DATASETS.SVAMP.files.validation[0], svampRows.slice(svampTrain), svamp);

  // hotpotqa/hotpot_qa distractor: id, question, answer, type, level, supporting_facts{title,sent_id}, context{title,sentences}
  const hotpot = (rows: Row[]) => {
    const facts = rows.map((r) => r.supporting_facts as [string, number][]);
    const context = rows.map((r) => r.context as [string, string[]][]);
    return table([
      { name: 'id', schema: [STRING('id')], values: rows.map((r) => r._id) },
      ...stringColumns(rows, ['question', 'answer', 'type', 'level']),
      {
        name: 'supporting_facts',
        schema: [
          { name: 'supporting_facts', repetition_type: 'OPTIONAL', num_children: 2 },
          ...LIST('title'),
          STRING('element'),
          ...LIST('sent_id'),
          { name: 'element', type: 'INT32', repetition_type: 'OPTIONAL' },
        ],
        values: facts.map((f) => ({ title: f.map(([t]) => t), sent_id: f.map(([, i]) => i) })),
      },
      {
        name: 'context',
        schema: [
          { name: 'context', repetition_type: 'OPTIONAL', num_children: 2 },
          ...LIST('title'),
          STRING('element'),
          ...LIST('sentences'),
          ...LIST('element'),
          STRING('element'),
        ],
        values: context.map((c) => ({ title: c.map(([t]) => t), sentences: c.map(([, s]) => s) })),
      },
    ]);
  };
  const hotpotRows = readJson('hotpotqa/dev_distractor_sample.json');
  const [t0, t1, v] = HUB_DATASETS.HotpotQA.files.train.concat(HUB_DATASETS.HotpotQA.files.validation);
  put('HotpotQA', t0, hotpotRows.slice(0, 5), hotpot);
  put('HotpotQA', t1, hotpotRows.slice(5, 9), hotpot);
  put('HotpotQA', v, hotpotRows.slice(9), hotpot);
  return out;
}

const sha256 = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex');

export async function startHubServer(opts: HubServerOptions = {}): Promise<HubServer> {
  const built = buildHubFiles(opts.fixturesDir ?? FIXTURES_DIR);
  const failures = (opts.failures ?? []).map((f) => ({ ...f, left: 'times' in f && f.times !== undefined ? f.times : Infinity }));
  for (const f of failures) {
    if (f.kind !== 'corrupt') continue;
    const entry = [...built.entries()].find(([key]) => key.endsWith(f.file));
    if (!entry) throw new Error(`hub-server: no file matches "${f.file}"`);
    entry[1].body = entry[1].body.subarray(0, Math.floor(entry[1].body.length / 2));
  }
  const bySha = new Map<string, { key: string; body: Buffer }>();
  const files = new Map<string, { sha256: string; bytes: number; rows: number }>();
  for (const [key, { body, rows }] of built) {
    const digest = sha256(body);
    bySha.set(digest, { key, body });
    files.set(key, { sha256: digest, bytes: body.length, rows });
  }
  const requests: HubRequest[] = [];
  const failureFor = (key: string, kind: 'status' | 'truncate') => {
    const f = failures.find((x) => x.kind === kind && key.endsWith(x.file) && x.left > 0);
    if (f) f.left--;
    return f;
  };

  const server = http.createServer((req, res) => {
    const urlPath = (req.url ?? '/').split('?')[0];
    const reply = (status: number, body: string, headers: Record<string, string | number> = {}) => {
      requests.push({ method: req.method ?? 'GET', path: urlPath, status });
      res.writeHead(status, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body), ...headers });
      res.end(body);
    };
    // /datasets/<owner>/<name>/resolve/<revision>/<path...>
    const m = /^\/datasets\/([^/]+)\/([^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(urlPath);
    if (m) {
      const repo = `${m[1]}/${m[2]}`;
      const revision = decodeURIComponent(m[3]);
      const file = m[4].split('/').map(decodeURIComponent).join('/');
      const spec = Object.values(HUB_DATASETS).find((s) => s.repo === repo);
      if (!spec) return reply(404, 'Repository not found', { 'x-error-code': 'RepoNotFound' });
      if (revision !== spec.revision && revision !== 'main')
        return reply(404, 'Revision not found', { 'x-error-code': 'RevisionNotFound' });
      const key = `${repo}/${file}`;
      const failure = failureFor(key, 'status');
      if (failure && failure.kind === 'status') return reply(failure.status, `injected ${failure.status}`);
      const entry = files.get(key);
      if (!entry) return reply(404, 'Entry not found', { 'x-error-code': 'EntryNotFound' });
      return reply(302, 'Found', {
        location: `/cdn/${entry.sha256}`,
        'x-linked-etag': `"${entry.sha256}"`,
        'x-linked-size': entry.bytes,
        'x-repo-commit': sha256(Buffer.from(`${repo}@${spec.revision}`)).slice(0, 40),
      });
    }
    const cdn = /^\/cdn\/([0-9a-f]{64})$/.exec(urlPath);
    const blob = cdn ? bySha.get(cdn[1]) : undefined;
    if (!blob) return reply(404, 'Not found');
    if (failureFor(blob.key, 'truncate')) {
      requests.push({ method: req.method ?? 'GET', path: urlPath, status: 200 });
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': blob.body.length });
      res.write(blob.body.subarray(0, Math.floor(blob.body.length / 2)), () => res.destroy());
      return;
    }
    requests.push({ method: req.method ?? 'GET', path: urlPath, status: 200 });
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': blob.body.length, etag: `"${cdn?.[1]}"` });
    res.end(blob.body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    files,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((err) => (err ? reject(err) : resolve()));
      }),
  };
}
