// The PyTorch implementation shipped with every Cognate export (activities/cognate/engine/hf/): the export
// carries it with auto_map and checksums, and — when python3 has torch and transformers — transformers
// loads the export with trust_remote_code and computes tfjs's logits (within 1e-4), ACT depths, LTM reads
// and greedy generations (scripts/check_cognate_hf.py against scripts/cognate-hf-parity.ts's reference).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sha256File, verifyManifest, type Manifest } from '../common/export/files';
import { HF_AUTO_MAP, HF_CODE_DIR, HF_CODE_FILES } from '../activities/cognate/engine/hf/code';
import { buildReference } from '../scripts/cognate-hf-parity';

const REPO = path.resolve(__dirname, '..');
const CHECKER = path.join(REPO, 'scripts', 'check_cognate_hf.py');
const TOLERANCE = 1e-4;

interface CheckSummary {
  ok: boolean;
  failures: string[];
  error?: string;
  class: string;
  ltm_fill: number;
  logits: { ok: boolean; max_abs_diff: number };
  act_steps: { ok: boolean; distinct: number[]; torch_mean: number; tfjs_mean: number };
  ltm: { ok: boolean };
  train_mode: { ok: boolean; max_abs_diff: number };
  loss_masked: { ok: boolean; max_abs_diff: number; ponder_cost: number; tfjs_ponder_cost: number; ponder_cost_all_positions: number };
  generate: { ok: boolean; torch: number[]; tfjs: number[] };
  save_reload: { ok: boolean; files: string[] };
  ablations: { no_memory_max_abs_diff: number; no_act_max_abs_diff: number };
}

let tmp: string;
let env: NodeJS.ProcessEnv;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cognate-hf-'));
  // transformers copies remote code into $HF_HOME/modules: keep it out of the user's cache.
  env = { ...process.env, HF_HOME: path.join(tmp, 'hf-home'), HF_HUB_OFFLINE: '1', TOKENIZERS_PARALLELISM: 'false' };
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** Run the checker; its JSON is the last stdout line (progress bars go to stderr). */
function check(exportDir: string, referenceDir: string): { status: number | null; summary: CheckSummary; stderr: string } {
  const res = spawnSync('python3', [CHECKER, exportDir, referenceDir, '--tolerance', String(TOLERANCE)], {
    encoding: 'utf8',
    env,
    timeout: 600_000,
  });
  const last = res.stdout.trim().split('\n').pop() ?? '';
  let summary: CheckSummary;
  try {
    summary = JSON.parse(last) as CheckSummary;
  } catch {
    throw new Error(`check_cognate_hf.py printed no JSON (status ${res.status}): ${res.stdout}\n${res.stderr}`);
  }
  return { status: res.status, summary, stderr: res.stderr };
}

function expectParity(summary: CheckSummary, nLayers: number): void {
  expect(summary.failures).toEqual([]);
  expect(summary.class).toMatch(/modeling_cognate\.CognateForCausalLM$/);
  expect(summary.logits.max_abs_diff).toBeLessThanOrEqual(TOLERANCE);
  expect(summary.train_mode.max_abs_diff).toBeLessThanOrEqual(TOLERANCE);
  // The training loss with -100 labels matches tfjs's masked loss, whose ponder cost counts the scored
  // positions only; charged over every position it would differ by more than the tolerance (so the check can fail).
  expect(summary.loss_masked.max_abs_diff).toBeLessThanOrEqual(TOLERANCE);
  expect(Math.abs(summary.loss_masked.ponder_cost - summary.loss_masked.tfjs_ponder_cost)).toBeLessThanOrEqual(TOLERANCE);
  expect(Math.abs(summary.loss_masked.ponder_cost_all_positions - summary.loss_masked.ponder_cost)).toBeGreaterThan(10 * TOLERANCE);
  // ACT really halted positions after different blocks, and the torch model halted the same ones.
  expect(summary.act_steps.ok).toBe(true);
  expect(summary.act_steps.distinct.length).toBeGreaterThanOrEqual(2);
  expect(Math.min(...summary.act_steps.distinct)).toBeLessThan(nLayers);
  expect(summary.ltm.ok).toBe(true);
  expect(summary.ltm_fill).toBeGreaterThan(0);
  expect(summary.generate.torch).toEqual(summary.generate.tfjs);
  expect(summary.generate.torch.length).toBeGreaterThan(0);
  expect(summary.save_reload.files).toEqual(expect.arrayContaining(['ltm.safetensors', 'model.safetensors', 'modeling_cognate.py']));
  // Without the memory read or without ACT the logits are far from tfjs's: both are exercised.
  expect(summary.ablations.no_memory_max_abs_diff).toBeGreaterThan(100 * TOLERANCE);
  expect(summary.ablations.no_act_max_abs_diff).toBeGreaterThan(100 * TOLERANCE);
}

describe('Cognate export carries its PyTorch implementation', () => {
  let exportDir: string;
  let referenceDir: string;
  beforeAll(async () => {
    ({ exportDir, referenceDir } = await buildReference({ preset: 'tiny', out: path.join(tmp, 'tiny'), generate: 5, python: false }));
  });

  test('the .py files are in the export byte for byte, in the manifest with their sha256, named by auto_map', () => {
    expect(verifyManifest(exportDir)).toEqual([]);
    const manifest = JSON.parse(fs.readFileSync(path.join(exportDir, 'manifest.json'), 'utf8')) as Manifest;
    for (const name of HF_CODE_FILES) {
      const entry = manifest.files.find((f) => f.path === name);
      expect(entry).toBeDefined();
      expect(entry!.sha256).toBe(sha256File(path.join(HF_CODE_DIR, name)));
      expect(fs.readFileSync(path.join(exportDir, name)).equals(fs.readFileSync(path.join(HF_CODE_DIR, name)))).toBe(true);
    }
    const config = JSON.parse(fs.readFileSync(path.join(exportDir, 'config.json'), 'utf8')) as Record<string, unknown>;
    expect(config).toMatchObject({
      architectures: ['CognateForCausalLM'],
      model_type: 'cognate',
      auto_map: HF_AUTO_MAP,
      ltm_file: 'ltm.safetensors',
    });
    for (const target of Object.values(HF_AUTO_MAP)) expect(HF_CODE_FILES).toContain(`${target.split('.')[0]}.py`);
  });

  describe('transformers (real torch + transformers)', () => {
    const probe = spawnSync('python3', ['-c', 'import torch, transformers, safetensors, numpy'], { encoding: 'utf8' });
    const havePython = probe.status === 0;
    if (!havePython) {
      console.warn(
        `SKIPPING transformers parity tests: python3 cannot import torch, transformers, safetensors, numpy (${(probe.stderr || String(probe.error)).trim().split('\n').pop()})`,
      );
    }
    const maybe = havePython ? test : test.skip;

    maybe(
      'tiny model (ACT + LTM): AutoModelForCausalLM logits equal tfjs within 1e-4, same halting, same greedy tokens',
      () => {
        const { status, summary, stderr } = check(exportDir, referenceDir);
        console.log('check_cognate_hf.py (tiny):', JSON.stringify(summary));
        if (status !== 0) console.log(stderr.slice(-4000));
        expectParity(summary, 4);
        expect(status).toBe(0);
      },
      300_000,
    );

    maybe(
      'scripts/gpu_port_check.py (run on GPU machines) trains, halts and generates with the port; here on the CPU at a tiny size',
      () => {
        const tiny = { num_hidden_layers: 3, hidden_size: 32, intermediate_size: 64, vocab_size: 300, mem_capacity: 16 };
        const args = ['--device', 'cpu', '--batch', '2', '--seq', '16', '--fill', '8', '--config', JSON.stringify(tiny)];
        const res = spawnSync('python3', [path.join(REPO, 'scripts', 'gpu_port_check.py'), ...args], {
          encoding: 'utf8',
          timeout: 240_000,
        });
        if (res.status !== 0) console.log(res.stderr.slice(-4000));
        const out = JSON.parse(res.stdout.trim().split('\n').pop() as string) as Record<string, unknown>;
        expect(out).toMatchObject({ ok: true, device: 'cpu', ltmFillPerStream: 8, evalMeanBlocks: 3, generatedLength: 24 });
        for (const mode of ['train_float32', 'train_bfloat16']) {
          const r = out[mode] as { loss: number; tokensPerSecond: number };
          expect(Number.isFinite(r.loss)).toBe(true);
          expect(r.tokensPerSecond).toBeGreaterThan(0);
        }
        expect(res.status).toBe(0);
      },
      300_000,
    );

    maybe(
      'a port with the wrong rotary layout (interleaved pairs) is caught',
      () => {
        const wrong = path.join(tmp, 'tiny-wrong-rotary');
        fs.cpSync(exportDir, wrong, { recursive: true });
        const file = path.join(wrong, 'modeling_cognate.py');
        const source = fs.readFileSync(file, 'utf8');
        const correct = 'return torch.cat([-x[..., half:], x[..., :half]], dim=-1)';
        expect(source).toContain(correct);
        // GPT-J style rotate_half: (x0, x1, x2, x3, ...) -> (-x1, x0, -x3, x2, ...)
        fs.writeFileSync(file, source.replace(correct, 'return torch.stack([-x[..., 1::2], x[..., 0::2]], dim=-1).flatten(-2)'));
        const { status, summary } = check(wrong, referenceDir);
        expect(status).toBe(1);
        expect(summary.failures).toContain('logits');
        expect(summary.logits.max_abs_diff).toBeGreaterThan(100 * TOLERANCE);
      },
      300_000,
    );

    maybe(
      'ACT and LTM off: no halting units, no memory sublayer, no bank file; logits and greedy tokens equal tfjs',
      async () => {
        const plain = await buildReference({ preset: 'plain', out: path.join(tmp, 'plain'), generate: 4, python: false });
        expect(fs.existsSync(path.join(plain.exportDir, 'ltm.safetensors'))).toBe(false);
        const { status, summary } = check(plain.exportDir, plain.referenceDir);
        expect(summary.failures).toEqual([]);
        expect(summary.logits.max_abs_diff).toBeLessThanOrEqual(TOLERANCE);
        expect(summary.act_steps.distinct).toEqual([3]);
        expect(summary.ltm_fill).toBeNull();
        expect(summary.generate.torch).toEqual(summary.generate.tfjs);
        expect(status).toBe(0);
      },
      300_000,
    );

    maybe(
      'an export without its LTM bank is refused, naming the file; padding is refused',
      () => {
        const noBank = path.join(tmp, 'tiny-no-bank');
        fs.cpSync(exportDir, noBank, { recursive: true });
        fs.rmSync(path.join(noBank, 'ltm.safetensors'));
        const script = `
import sys, torch
from transformers import AutoModelForCausalLM
try:
    AutoModelForCausalLM.from_pretrained(sys.argv[1], trust_remote_code=True)
    print("loaded without bank")
except FileNotFoundError as e:
    print("refused:", e)
model = AutoModelForCausalLM.from_pretrained(sys.argv[2], trust_remote_code=True).eval()
try:
    model(input_ids=torch.tensor([[1, 2, 3]]), attention_mask=torch.tensor([[0, 1, 1]]))
    print("padding accepted")
except ValueError as e:
    print("refused:", e)`;
        const res = spawnSync('python3', ['-c', script, noBank, exportDir], { encoding: 'utf8', env });
        expect(res.stdout).toContain(`refused: ${path.join(noBank, 'ltm.safetensors')}: the LTM bank is missing`);
        expect(res.stdout).toContain('refused: CognateModel: attention_mask has padding');
        expect(res.status).toBe(0);
      },
      300_000,
    );

    maybe(
      'default-sized model (24.1M parameters, 11 layers, vocab 32000): the same checks',
      () => {
        // A plain node process: jest's sandbox makes the 24M seeded draws ~100x slower (see cognate-model.test.ts).
        const out = path.join(tmp, 'default');
        const res = spawnSync(
          process.execPath,
          ['--import', 'tsx', path.join(REPO, 'scripts', 'cognate-hf-parity.ts'), '--preset', 'default', '--out', out, '--no-python'],
          {
            cwd: REPO,
            encoding: 'utf8',
            env,
            timeout: 600_000,
          },
        );
        if (res.status !== 0) throw new Error(`cognate-hf-parity.ts failed (${res.status}): ${res.stderr}`);
        const { exportDir: dir, referenceDir: ref } = JSON.parse(res.stdout.trim().split('\n').pop()!) as {
          exportDir: string;
          referenceDir: string;
        };
        const { status, summary, stderr } = check(dir, ref);
        console.log('check_cognate_hf.py (default):', JSON.stringify(summary));
        if (status !== 0) console.log(stderr.slice(-4000));
        expectParity(summary, 11);
        expect(status).toBe(0);
        fs.rmSync(out, { recursive: true, force: true });
      },
      900_000,
    );
  });
});
