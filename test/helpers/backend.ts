// The backend the suite runs on: FORGE_TF_BACKEND when set (`npm run test:wasm` sets wasm), else `auto`,
// i.e. native TensorFlow where `npm install` built it, else wasm. Tests that switch to the cpu backend for a
// reference come back to this one with useTestBackend().
import { initBackend, type BackendChoice, type BackendInfo } from '../../common/backend';

let chosen: BackendChoice | undefined;

export async function useTestBackend(): Promise<BackendInfo> {
  const info = await initBackend(chosen);
  chosen = info.backend as BackendChoice;
  return info;
}

/** For jobs that choose their own backend (a trainer, a child process): the one useTestBackend() chose. */
export function testBackendChoice(): BackendChoice {
  return chosen ?? ((process.env.FORGE_TF_BACKEND as BackendChoice) || 'auto');
}
