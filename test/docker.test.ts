// docker/: what can be checked without a Docker engine. The compose file is validated by `docker compose
// config` (or docker-compose) when a client is installed; every file the compose file and Dockerfiles refer
// to exists; the images' entry points are npm scripts of package.json; the search-attribute registration
// script runs, twice, against this test run's real Temporal server and leaves the attributes with their types.
import { execFile, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import YAML from 'yaml';
import { SEARCH_ATTRIBUTES as FORGE_SEARCH_ATTRIBUTES } from '../common/search-attributes';
import { findTemporalBinary } from '../common/temporal-cli';
import { ROOT, temporalCli } from './helpers/temporal';

const run = promisify(execFile);
const DOCKER = path.join(ROOT, 'docker');
const COMPOSE = path.join(DOCKER, 'compose.yaml');

// The names and types the workflows set (common/search-attributes.ts); the compose cluster must register exactly these.
const SEARCH_ATTRIBUTES: Record<string, string> = Object.fromEntries(FORGE_SEARCH_ATTRIBUTES.map((a) => [a.name, a.cliType]));

interface Service {
  image?: string;
  build?: { context: string; dockerfile: string };
  environment?: Record<string, string>;
  volumes?: string[];
  depends_on?: Record<string, { condition: string }> | string[];
  profiles?: string[];
  entrypoint?: string[];
  deploy?: { resources?: { reservations?: { devices?: { driver: string; capabilities: string[] }[] } } };
}
const compose = YAML.parse(fs.readFileSync(COMPOSE, 'utf8'), { merge: true }) as {
  services: Record<string, Service>;
  volumes: Record<string, unknown>;
};
const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };

function composeClient(): string[] | null {
  if (spawnSync('docker', ['compose', 'version'], { stdio: 'ignore' }).status === 0) return ['docker', 'compose'];
  if (spawnSync('docker-compose', ['version'], { stdio: 'ignore' }).status === 0) return ['docker-compose'];
  return null;
}

test('docker compose config accepts the file, with and without the gpu profile', async () => {
  const client = composeClient();
  if (!client) {
    console.warn(
      'no `docker compose` or `docker-compose` client installed: skipped `compose config` (the structural checks below still run)',
    );
    return;
  }
  const base = ['postgresql', 'temporal', 'temporal-setup', 'temporal-ui', 'worker-agent'];
  const services = async (...extra: string[]) =>
    (await run(client[0], [...client.slice(1), '-f', COMPOSE, ...extra, 'config', '--services'])).stdout.trim().split('\n');
  // docker-compose 1.x lists profiled services always, compose v2 only with their profile: both must list the base.
  expect(await services()).toEqual(expect.arrayContaining(base));
  expect((await services('--profile', 'gpu')).sort()).toEqual([...base, 'worker-cognate'].sort());
  // The normalized file keeps the GPU worker behind its profile with its NVIDIA reservation.
  const normalized = YAML.parse((await run(client[0], [...client.slice(1), '-f', COMPOSE, '--profile', 'gpu', 'config'])).stdout) as {
    services: Record<string, Service>;
  };
  expect(normalized.services['worker-cognate'].profiles).toEqual(['gpu']);
  expect(normalized.services['worker-cognate'].deploy?.resources?.reservations?.devices?.[0].driver).toBe('nvidia');
  // And rejects a broken one (so a pass above means something).
  const broken = path.join(DOCKER, `.broken-${process.pid}.yaml`);
  fs.writeFileSync(broken, 'services:\n  x:\n    image: 3\n    depends_on: {y: {condition: nonsense}}\n');
  try {
    await expect(run(client[0], [...client.slice(1), '-f', broken, 'config', '-q'])).rejects.toThrow();
  } finally {
    fs.rmSync(broken);
  }
});

test('the cluster keeps its state in volumes, the UI and the setup step talk to the server, workers share FORGE_DATA_DIR', () => {
  const s = compose.services;
  expect(s.postgresql.volumes).toContain('temporal-postgres:/var/lib/postgresql/data');
  expect(s.temporal.environment).toMatchObject({ DB: 'postgres12', POSTGRES_SEEDS: 'postgresql' });
  expect(s.temporal.depends_on).toMatchObject({ postgresql: { condition: 'service_healthy' } });
  expect(s['temporal-ui'].environment?.TEMPORAL_ADDRESS).toBe('temporal:7233');
  expect(Object.keys(compose.volumes).sort()).toEqual(['forge-data', 'temporal-postgres']);
  for (const name of ['worker-agent', 'worker-cognate']) {
    const w = s[name];
    expect(w.environment?.TEMPORAL_ADDRESS).toBe('temporal:7233');
    expect(w.volumes).toContain(`forge-data:${w.environment?.FORGE_DATA_DIR}`);
    expect(w.environment?.FORGE_METRICS_PORT).toBeTruthy();
    expect(w.depends_on).toMatchObject({ 'temporal-setup': { condition: 'service_completed_successfully' } });
  }
  expect(s['worker-cognate'].profiles).toEqual(['gpu']);
  expect(s['worker-cognate'].deploy?.resources?.reservations?.devices?.[0]).toMatchObject({ driver: 'nvidia', capabilities: ['gpu'] });
  // Host files mounted into containers exist.
  for (const svc of Object.values(s)) {
    for (const v of svc.volumes ?? []) {
      if (v.startsWith('./')) expect(fs.existsSync(path.join(DOCKER, v.split(':')[0]))).toBe(true);
    }
  }
});

test('every file the Dockerfiles copy exists, the GPU image is CUDA 12 with the native TensorFlow step, entry points are npm scripts', () => {
  const expectedScript: Record<string, string> = { 'worker-agent': 'worker:agent', 'worker-cognate': 'worker:cognate' };
  for (const [name, svc] of Object.entries(compose.services)) {
    if (!svc.build) continue;
    const context = path.resolve(DOCKER, svc.build.context);
    expect(context).toBe(ROOT);
    const dockerfile = path.join(context, svc.build.dockerfile);
    const text = fs.readFileSync(dockerfile, 'utf8');
    const lines = text.split('\n').map((l) => l.trim());
    for (const line of lines.filter((l) => /^COPY\s/.test(l) && !l.includes('--from='))) {
      const args = line.replace(/^COPY\s+/, '').split(/\s+/);
      for (const src of args.slice(0, -1))
        expect({ file: src, exists: fs.existsSync(path.join(context, src)) }).toEqual({ file: src, exists: true });
    }
    // Files the build runs (node scripts/...).
    for (const m of text.matchAll(/node (scripts\/[\w.-]+)/g)) {
      if (fs.existsSync(path.join(ROOT, m[1]))) continue;
      throw new Error(`${svc.build.dockerfile} runs ${m[1]}, which does not exist`);
    }
    const cmd = JSON.parse(
      lines
        .filter((l) => l.startsWith('CMD '))
        .at(-1)!
        .slice(4),
    ) as string[];
    expect(cmd.slice(0, 2)).toEqual(['npm', 'run']);
    const script = cmd.at(-1)!;
    expect(script).toBe(expectedScript[name]);
    expect(pkg.scripts[script]).toBeDefined();
    expect(fs.existsSync(path.join(ROOT, pkg.scripts[script].split(' ').at(-1)!))).toBe(true);
  }
  const gpu = fs.readFileSync(path.join(DOCKER, 'worker-gpu.Dockerfile'), 'utf8');
  expect(gpu).toMatch(/^FROM nvidia\/cuda:12\.[\w.-]+/m);
  expect(gpu).toMatch(/FORGE_TF_GPU=1 node scripts\/ensure-native-tf\.js/);
  const ignore = fs.readFileSync(path.join(ROOT, '.dockerignore'), 'utf8').split('\n');
  expect(ignore).toContain('node_modules');
});

test('the registration script registers exactly the Forge search attributes with their types, idempotently', async () => {
  const script = fs.readFileSync(path.join(DOCKER, 'temporal', 'register-search-attributes.sh'), 'utf8');
  const declared = Object.fromEntries(
    /^ATTRIBUTES="([^"]+)"/m
      .exec(script)![1]
      .split(' ')
      .map((e) => e.split(':')),
  );
  expect(declared).toEqual(SEARCH_ATTRIBUTES);

  // Run it as the setup container would, against this test run's server, with the Temporal CLI on PATH.
  const bin = findTemporalBinary();
  if (!bin) throw new Error('Temporal CLI not found; run npm install');
  const env = {
    ...process.env,
    PATH: `${path.dirname(bin)}${path.delimiter}${process.env.PATH}`,
    TEMPORAL_ADDRESS: process.env.TEMPORAL_ADDRESS!,
    TEMPORAL_NAMESPACE: 'default',
  };
  const first = await run('sh', [path.join(DOCKER, 'temporal', 'register-search-attributes.sh')], { env, timeout: 120_000 });
  expect(first.stdout).toContain('search attributes ready');
  const second = await run('sh', [path.join(DOCKER, 'temporal', 'register-search-attributes.sh')], { env, timeout: 120_000 });
  for (const name of Object.keys(SEARCH_ATTRIBUTES)) expect(second.stdout).toContain(`search attribute ${name} already registered`);

  const listed = JSON.parse(await temporalCli('operator', 'search-attribute', 'list', '--output', 'json')) as {
    customAttributes: Record<string, string>;
  };
  for (const [name, type] of Object.entries(SEARCH_ATTRIBUTES))
    expect([name, listed.customAttributes[name]]).toEqual([name, `INDEXED_VALUE_TYPE_${type.toUpperCase()}`]);
});
