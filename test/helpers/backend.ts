// The backend the suite runs on: FORGE_TF_BACKEND when set (`npm run test:wasm` sets wasm), else what `auto`
// picks for Cognate: native TensorFlow where `npm install` built it, else wasm. Tests that switch to the cpu
// backend for a reference come back to this one with useTestBackend(). Resolved by name, not by calling
// initBackend('auto'), which would keep whatever backend an earlier beforeAll set (often cpu).
import { initBackend, type BackendChoice, type BackendInfo } from '../../common/backend';

let chosen: BackendChoice | undefined;

export async function useTestBackend(): Promise<BackendInfo> {
  if (chosen) return initBackend(chosen);
  const forced = process.env.FORGE_TF_BACKEND as BackendChoice | undefined;
  if (forced && forced !== 'auto') {
    chosen = forced;
    return initBackend(forced);
  }
  try {
    const info = await initBackend('tensorflow');
    chosen = 'tensorflow';
    return info;
  } catch {
    chosen = 'wasm';
    return initBackend('wasm');
  }
}

/** For jobs that choose their own backend (a trainer, a child process): the one useTestBackend() chose. */
export function testBackendChoice(): BackendChoice {
  if (!chosen) throw new Error('call useTestBackend() first');
  return chosen;
}
