// TensorFlow.js backend selection shared by both pipelines:
// tfjs-node-gpu (GPU workers) > tfjs-node > wasm. The pure-JS cpu backend is ~35x slower than wasm on
// matmuls here, so it is only used when asked for by name (tests comparing gradients, tiny models).
import * as tf from '@tensorflow/tfjs-core';

export type BackendChoice = 'auto' | 'tensorflow' | 'wasm' | 'cpu';

export interface BackendInfo {
  /** tfjs backend name: "tensorflow", "wasm" or "cpu". */
  backend: string;
  /** What runs the math: "gpu", "cpu (libtensorflow)", "cpu (wasm simd)"... */
  device: string;
  /** npm package that provided the backend. */
  package: string;
}

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

/** Initialise once per process. FORGE_TF_BACKEND overrides the choice (auto|tensorflow|wasm|cpu). */
export async function initBackend(choice: BackendChoice = (process.env.FORGE_TF_BACKEND as BackendChoice) || 'auto'): Promise<BackendInfo> {
  if (current && (choice === 'auto' || choice === current.backend)) return current;
  if (!['auto', 'tensorflow', 'wasm', 'cpu'].includes(choice)) {
    throw new Error(`FORGE_TF_BACKEND must be one of auto, tensorflow, wasm, cpu (got "${choice}")`);
  }
  let info: BackendInfo | undefined;
  if (choice === 'auto' || choice === 'tensorflow') {
    if (tryRequire('@tensorflow/tfjs-node-gpu')) info = { backend: 'tensorflow', device: 'gpu (libtensorflow CUDA)', package: '@tensorflow/tfjs-node-gpu' };
    else if (tryRequire('@tensorflow/tfjs-node')) info = { backend: 'tensorflow', device: 'cpu (libtensorflow)', package: '@tensorflow/tfjs-node' };
    else if (choice === 'tensorflow') throw new Error('FORGE_TF_BACKEND=tensorflow but neither @tensorflow/tfjs-node-gpu nor @tensorflow/tfjs-node is installed');
  }
  if (!info && (choice === 'auto' || choice === 'wasm')) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- registers the backend only when chosen
    require('@tensorflow/tfjs-backend-wasm');
    info = { backend: 'wasm', device: 'cpu (wasm simd)', package: '@tensorflow/tfjs-backend-wasm' };
  }
  if (!info) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- registers the backend only when chosen
    require('@tensorflow/tfjs-backend-cpu');
    info = { backend: 'cpu', device: 'cpu (pure js)', package: '@tensorflow/tfjs-backend-cpu' };
  }
  if (!(await tf.setBackend(info.backend))) throw new Error(`tfjs backend "${info.backend}" failed to initialise`);
  await tf.ready();
  current = info;
  return info;
}

export function backendInfo(): BackendInfo {
  if (!current) throw new Error('initBackend() has not been called in this process');
  return current;
}
