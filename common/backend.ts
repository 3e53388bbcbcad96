// TensorFlow.js backend selection shared by both pipelines. `auto` means the backend measured faster for
// the pipeline asking (`prefer`): native TensorFlow (tfjs-node-gpu on GPU workers, else tfjs-node, which
// `npm install` builds, see scripts/ensure-native-tf.js) when installed, else wasm; or wasm first. The
// pure-JS cpu backend is ~35x slower than wasm on matmuls here, so it is only used when asked for by name
// (tests comparing gradients, tiny models). FORGE_TF_BACKEND forces one for every pipeline.
import * as tf from '@tensorflow/tfjs-core';

export type BackendChoice = 'auto' | 'tensorflow' | 'wasm' | 'cpu';
/** What `auto` tries first. */
export type BackendPreference = 'tensorflow' | 'wasm';

export interface BackendInfo {
  /** tfjs backend name: "tensorflow", "wasm" or "cpu". */
  backend: string;
  /** What runs the math: "gpu", "cpu (libtensorflow)", "cpu (wasm simd)"... */
  device: string;
  /** npm package that provided the backend. */
  package: string;
}

/**
 * The backend `auto` tries first per pipeline: the one that trains a whole run faster, measured on one
 * machine in one invocation (README "Native TensorFlow"). Cognate's 24M-parameter model is matmul-bound:
 * native ~3x wasm. Agent Forge's networks are tiny, and with the policy alone in the loop wasm can be
 * ahead, but a whole default run (rollouts and PPO updates, bench/agent-backends.ts) took 0.58x the CPU
 * time and 0.32x the wall time on native. Change an entry when a new measurement says otherwise.
 */
export const PIPELINE_BACKEND = { cognate: 'tensorflow', agent: 'tensorflow' } as const satisfies Record<string, BackendPreference>;

let current: BackendInfo | undefined;

function tryRequire(name: string): boolean {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- optional backends are probed at run time
    require(name);
    return true;
  } catch {
    return false;
  }
}

function nativeInfo(): BackendInfo | undefined {
  // TensorFlow prints INFO lines (oneDNN, CPU features) at every process start; keep its warnings and errors.
  process.env.TF_CPP_MIN_LOG_LEVEL ??= '1';
  for (const pkg of ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']) {
    if (tryRequire(pkg)) return { backend: 'tensorflow', device: 'cpu (libtensorflow)', package: pkg };
  }
  return undefined;
}

/**
 * Initialise once per process. `choice` defaults to FORGE_TF_BACKEND, else `auto`; `auto` takes `prefer`
 * first (each pipeline's entry passes the backend measured faster for it, see README "Native TensorFlow").
 */
export async function initBackend(
  choice: BackendChoice = (process.env.FORGE_TF_BACKEND as BackendChoice) || 'auto',
  prefer: BackendPreference = 'tensorflow',
): Promise<BackendInfo> {
  if (current && (choice === 'auto' || choice === current.backend)) return current;
  if (!['auto', 'tensorflow', 'wasm', 'cpu'].includes(choice)) {
    throw new Error(`FORGE_TF_BACKEND must be one of auto, tensorflow, wasm, cpu (got "${choice}")`);
  }
  const wasm: BackendInfo = { backend: 'wasm', device: 'cpu (wasm simd)', package: '@tensorflow/tfjs-backend-wasm' };
  let info: BackendInfo | undefined;
  if (choice === 'tensorflow') {
    info = nativeInfo();
    if (!info)
      throw new Error(
        'FORGE_TF_BACKEND=tensorflow but neither @tensorflow/tfjs-node-gpu nor @tensorflow/tfjs-node loads (run: node scripts/ensure-native-tf.js)',
      );
  } else if (choice === 'wasm' || (choice === 'auto' && prefer === 'wasm')) {
    info = wasm;
  } else if (choice === 'auto') {
    info = nativeInfo() ?? wasm;
  }
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- registers the backend only when chosen
  if (info === wasm) require('@tensorflow/tfjs-backend-wasm');
  if (!info) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- registers the backend only when chosen
    require('@tensorflow/tfjs-backend-cpu');
    info = { backend: 'cpu', device: 'cpu (pure js)', package: '@tensorflow/tfjs-backend-cpu' };
  }
  if (!(await tf.setBackend(info.backend))) throw new Error(`tfjs backend "${info.backend}" failed to initialise`);
  await tf.ready();
  if (info.backend === 'tensorflow') {
    // tfjs-node-gpu runs on the CPU when TensorFlow finds no CUDA device: record what it actually uses.
    const native = tf.backend() as unknown as { isUsingGpuDevice?: boolean; binding?: { TF_Version?: string } };
    const version = native.binding?.TF_Version ? ` ${native.binding.TF_Version}` : '';
    info.device = native.isUsingGpuDevice ? `gpu (libtensorflow${version} CUDA)` : `cpu (libtensorflow${version})`;
  }
  current = info;
  return info;
}

export function backendInfo(): BackendInfo {
  if (!current) throw new Error('initBackend() has not been called in this process');
  return current;
}
