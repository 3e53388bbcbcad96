// Run in a child process by ensure-native-tf.js (and by hand: `node scripts/native-tf/check.js
// @tensorflow/tfjs-node`): loads a tfjs-node package, checks that its backend is the native "tensorflow"
// one and that a matmul agrees with the same product computed in plain JS, then prints one JSON line
// { ok, package, backend, tfVersion, gpu, error? }. Loading happens in a child because a binding built
// against the wrong library can abort the process; the parent runs it with LD_BIND_NOW=1 so a TF_* symbol
// missing from the library fails here, at load, instead of at the first call of that op during training.
'use strict';

function matmulJs(a, b, n, k, m) {
  const out = new Float64Array(n * m);
  for (let i = 0; i < n; i++)
    for (let j = 0; j < m; j++) {
      let s = 0;
      for (let t = 0; t < k; t++) s += a[i * k + t] * b[t * m + j];
      out[i * m + j] = s;
    }
  return out;
}

async function main() {
  const pkg = process.argv[2] || '@tensorflow/tfjs-node';
  const result = { ok: false, package: pkg };
  try {
    const tf = require(pkg);
    await tf.ready();
    result.backend = tf.getBackend();
    const backend = tf.backend();
    result.tfVersion = backend.binding && backend.binding.TF_Version;
    result.gpu = Boolean(backend.isUsingGpuDevice);
    if (result.backend !== 'tensorflow') throw new Error(`backend is "${result.backend}", not "tensorflow"`);
    // A deterministic 48x40 by 40x24 product: large enough to go through the BLAS path, exact enough in fp32.
    const n = 48,
      k = 40,
      m = 24;
    const a = Float32Array.from({ length: n * k }, (_, i) => ((i * 37) % 17) / 8 - 1);
    const b = Float32Array.from({ length: k * m }, (_, i) => ((i * 11) % 13) / 6 - 1);
    const got = await tf.matMul(tf.tensor2d(a, [n, k]), tf.tensor2d(b, [k, m])).data();
    const want = matmulJs(a, b, n, k, m);
    let worst = 0;
    for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]));
    result.matmulMaxAbsError = worst;
    if (!(worst < 1e-3)) throw new Error(`matmul differs from the plain-JS product by ${worst}`);
    result.ok = true;
  } catch (err) {
    result.error = String((err && err.message) || err).split('\n')[0];
  }
  process.stdout.write(`${JSON.stringify(result)}\n`);
  process.exit(result.ok ? 0 : 1);
}

main();
