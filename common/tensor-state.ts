// A float32 tensor as plain data (shape + Float32Array): how optimizer and filter state enter
// checkpoints (common/checkpoint stores typed arrays, not live tensors).
import * as tf from '@tensorflow/tfjs-core';

export interface TensorState {
  shape: number[];
  data: Float32Array;
}

export function toTensorState(t: tf.Tensor): TensorState {
  if (t.dtype !== 'float32') throw new Error(`toTensorState expects float32, got ${t.dtype}`);
  return { shape: [...t.shape], data: (t.dataSync() as Float32Array).slice() };
}

export function fromTensorState(s: TensorState): tf.Tensor {
  return tf.tensor(s.data, s.shape, 'float32');
}
