// Token embedding lookup with a gradient that works on every backend.
//
// tf.gather's gradient is unsortedSegmentSum, a kernel the wasm backend does not have. The lookup's
// gradient is a scatter-add of dy rows into the rows of the ids: dense [V, C], non-zero only on the rows
// that were used. Doing it as oneHot(ids)ᵀ · dy would cost V·N·C multiply-adds (3.5 G at V=32000,
// N=512, C=216: ~0.3 s on wasm per step); doing it directly costs N·C adds. Backends that have the
// kernel (cpu, tensorflow) use it; the others get the same sum from a loop over dy's values.
import * as tf from '@tensorflow/tfjs-core';
import { customOp } from './layers';

function backendHasSegmentSum(): boolean {
  return tf.getKernel('UnsortedSegmentSum', tf.getBackend()) !== undefined;
}

/** dW [V, C] with dW[ids[n]] += dy[n] for every row n. */
export function scatterAddRows(dy: tf.Tensor2D, ids: tf.Tensor1D, vocabSize: number): tf.Tensor2D {
  if (backendHasSegmentSum()) return tf.unsortedSegmentSum(dy, ids, vocabSize);
  const [n, c] = dy.shape;
  const dyValues = dy.dataSync();
  const idValues = ids.dataSync();
  const grad = new Float32Array(vocabSize * c);
  for (let row = 0; row < n; row++) {
    const dst = idValues[row] * c;
    const src = row * c;
    for (let j = 0; j < c; j++) grad[dst + j] += dyValues[src + j];
  }
  return tf.tensor2d(grad, [vocabSize, c]);
}

/** weight [V, C], ids int32 [...] → [..., C]; differentiable in weight on every backend. */
export function embed(weight: tf.Tensor2D, ids: tf.Tensor): tf.Tensor {
  const [vocabSize, dim] = weight.shape;
  const flatIds = ids.reshape<tf.Tensor1D>([-1]);
  const lookup = customOp(([w], save) => {
    save([flatIds]);
    return {
      value: tf.gather(w, flatIds), // [N, C]
      gradFunc: (dy, [savedIds]) => [scatterAddRows(dy as tf.Tensor2D, savedIds as tf.Tensor1D, vocabSize)],
    };
  });
  return (lookup(weight) as tf.Tensor2D).reshape([...ids.shape, dim]);
}
