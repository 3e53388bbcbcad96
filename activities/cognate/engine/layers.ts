// Differentiable building blocks of the Cognate model, shared by the model, its tests and the benchmark.
//
// Three tfjs facts shape this file:
// - On the wasm backend a matMul with transposeA/transposeB runs ~10x slower than the plain one (measured
//   2.2 vs 22-27 GFLOP/s at [512,216]x[216,864]), batched matMuls 20-50x slower than a loop of 2-D ones,
//   and tfjs' own matMul gradient uses exactly those. Every matmul here is 2-D and untransposed, and
//   linear weights are stored [in, out] (export transposes them to PyTorch's [out, in]).
// - For its backward, tfjs keeps a copy of the inputs of almost every op (reshape, add and mul included):
//   ~116 MB per block at T=512. The ops below are single tape nodes with hand-written gradients that keep
//   only what the gradient needs (and never a copy of a weight variable: it outlives the step).
// - The native TensorFlow backend is the opposite: transposed and batched matMuls cost what plain ones do
//   (BatchMatMulV2 with adj_x/adj_y), while every kernel call costs a fixed overhead, so there the ops below
//   use transpose flags, one batched attention and fewer passes (`opStyle()`; measured in
//   bench/cognate-throughput.ts, README "Throughput").
// - tfjs has no gradient for comparisons or topk. `detach` gives a tensor the tape does not know, so masks
//   and retrieval indices computed from it never enter the backward pass.
import * as tf from '@tensorflow/tfjs-core';
// tfjs-core's node bundle registers neither gradients nor chained ops (x.add(y)); these ESM side-effect
// modules do (tsx loads them as is; jest must be allowed to transform @tensorflow/tfjs-core/dist).
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import '@tensorflow/tfjs-core/dist/public/chained_ops/register_all_chained_ops';

export type OpStyle = 'native' | 'wasm';

/**
 * Which shapes the ops below take: 'native' on the TensorFlow backend, 'wasm' (2-D untransposed matmuls,
 * per-head attention) elsewhere. FORGE_COGNATE_OPS=wasm|native forces one (the benchmark compares both on
 * the same backend; the gradient tests run whichever the backend picks).
 */
export function opStyle(): OpStyle {
  const forced = process.env.FORGE_COGNATE_OPS;
  if (forced === 'native' || forced === 'wasm') return forced;
  if (forced) throw new Error(`FORGE_COGNATE_OPS must be native or wasm (got "${forced}")`);
  return tf.getBackend() === 'tensorflow' ? 'native' : 'wasm';
}

/** The same data as a new tensor with no tape history: a stop-gradient that copies nothing. */
export function detach<T extends tf.Tensor>(x: T): T {
  const engine = tf.engine();
  const copy = engine.makeTensorFromDataId(x.dataId, x.shape, x.dtype) as T;
  engine.backend.incRef(x.dataId); // the data now has one more owner: it lives until both are disposed
  return copy;
}

type SaveFn = (tensors: tf.Tensor[]) => void;
type CustomOp = (inputs: tf.Tensor[], save: SaveFn) => { value: tf.Tensor; gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.Tensor[] };

/**
 * tf.customGrad with typed inputs: f gets the inputs and a save function, returns the value and one
 * gradient per input. The backward runs after the forward's scope is disposed: gradFunc may use only
 * its arguments, tensors passed to save(), and tensors created outside the gradient function.
 */
export function customOp(f: CustomOp): (...inputs: tf.Tensor[]) => tf.Tensor {
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const save = args.pop() as SaveFn;
    const { value, gradFunc } = f(args as tf.Tensor[], save);
    // tidy: tfjs runs a custom gradient outside the per-node scope, so its temporaries would otherwise live
    // until the whole backward ends (~420 MB for the cross-entropy of a 32000-token vocabulary at T=512).
    return { value, gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.tidy(() => gradFunc(dy, saved)) };
  });
  return (...inputs) => op(...inputs);
}

/** Save `t` for the backward unless it is a variable (those outlive the step: no copy needed). */
function saveUnlessVariable(t: tf.Tensor): (saved: tf.Tensor[]) => tf.Tensor {
  if (t instanceof tf.Variable) return () => t;
  return (saved) => saved[saved.length - 1];
}

/** x.reshape(shape), whose backward needs only the old shape (tf.reshape keeps a copy of x). */
export function reshape<T extends tf.Tensor>(x: tf.Tensor, shape: number[]): T {
  const from = x.shape;
  return customOp(([t]) => ({ value: t.reshape(shape), gradFunc: (dy) => [dy.reshape(from)] }))(x) as T;
}

/** a + b of equal shapes; tf.add would keep copies of both to undo broadcasting. */
export function addSame<T extends tf.Tensor>(a: T, b: tf.Tensor): T {
  if (a.shape.join() !== b.shape.join()) throw new Error(`addSame: shapes [${a.shape}] and [${b.shape}] differ`);
  return customOp(([x, y]) => ({ value: x.add(y), gradFunc: (dy) => [dy, dy] }))(a, b) as T;
}

/** mask ? a : b per position: mask [...] of 0/1 constants, a, b [..., C]. */
export function select<T extends tf.Tensor>(mask: tf.Tensor, a: T, b: tf.Tensor): T {
  return customOp(([x, y], save) => {
    const m = mask.expandDims(-1); // [..., 1]
    save([m]);
    return {
      value: y.add(x.sub(y).mul(m)),
      gradFunc: (dy, [ms]) => [dy.mul(ms), dy.mul(tf.scalar(1).sub(ms))],
    };
  })(a, b) as T;
}

/** x [..., in] @ weight [in, out] (+ bias [out]) → [..., out]. Keeps only x for the backward. */
export function linear(x: tf.Tensor, weight: tf.Tensor2D, bias?: tf.Tensor1D): tf.Tensor {
  const [inDim, outDim] = weight.shape;
  const savedWeight = saveUnlessVariable(weight);
  const style = opStyle(); // chosen with the forward: the backward runs later
  const op = customOp((inputs, save) => {
    const [xi, wi] = inputs;
    save(wi instanceof tf.Variable ? [xi] : [xi, wi]);
    let y = tf.matMul(xi.reshape<tf.Tensor2D>([-1, inDim]), wi); // [N, out]
    if (inputs[2]) y = y.add(inputs[2]);
    return {
      value: y.reshape([...xi.shape.slice(0, -1), outDim]),
      gradFunc: (dy, saved) => {
        const xs = saved[0];
        const rows = dy.reshape<tf.Tensor2D>([-1, outDim]); // [N, out]
        if (style === 'native') {
          // dx = dy Wᵀ, dW = xᵀ dy with the transposes folded into the matmul (no transpose kernels)
          const dxn = tf.matMul(rows, savedWeight(saved) as tf.Tensor2D, false, true).reshape(xs.shape);
          const dwn = tf.matMul(xs.reshape<tf.Tensor2D>([-1, inDim]), rows, true, false);
          return bias ? [dxn, dwn, rows.sum(0)] : [dxn, dwn];
        }
        const dx = tf.matMul(rows, tf.transpose(savedWeight(saved) as tf.Tensor2D)).reshape(xs.shape);
        const dw = tf.matMul(tf.transpose(xs.reshape<tf.Tensor2D>([-1, inDim])), rows);
        return bias ? [dx, dw, rows.sum(0)] : [dx, dw];
      },
    };
  });
  return bias ? op(x, weight, bias) : op(x, weight);
}

/**
 * RMSNorm (Zhang & Sennrich 2019): x · r · w with r = (mean(x²) + eps)^−½. x [..., C], w [C].
 * Hand-written backward saves only x and r; tfjs' autodiff would keep a copy of every intermediate.
 *   dx = r · (g − x · r² · mean(g · x)),  g = dy · w;   dw = Σ_rows dy · x · r
 */
export function rmsNorm(x: tf.Tensor, weight: tf.Tensor1D, eps = 1e-6): tf.Tensor {
  const savedWeight = saveUnlessVariable(weight);
  const op = customOp(([input, w], save) => {
    const r = input.square().mean(-1, true).add(eps).rsqrt(); // [..., 1]
    save(w instanceof tf.Variable ? [input, r] : [input, r, w]);
    return {
      value: input.mul(r).mul(w),
      gradFunc: (dy, saved) => {
        const [xs, rs] = saved;
        const ws = savedWeight(saved);
        const g = dy.mul(ws);
        const dx = g.sub(xs.mul(rs.square()).mul(g.mul(xs).mean(-1, true))).mul(rs);
        const dw = dy.mul(xs).mul(rs).reshape([-1, ws.shape[0]]).sum(0);
        return [dx, dw];
      },
    };
  });
  return op(x, weight);
}

export function silu(x: tf.Tensor): tf.Tensor {
  return x.mul(x.sigmoid());
}

/**
 * SwiGLU's gating silu(gate) · up, with a backward that saves only its two inputs.
 *   d gate = dy · up · σ(g) · (1 + g · (1 − σ(g))),   d up = dy · silu(g)
 */
export function swiglu(gate: tf.Tensor, up: tf.Tensor): tf.Tensor {
  const op = customOp(([g, u], save) => {
    save([g, u]);
    return {
      value: silu(g).mul(u),
      gradFunc: (dy, [gs, us]) => {
        const sig = gs.sigmoid();
        const dSilu = sig.mul(gs.mul(tf.scalar(1).sub(sig)).add(1));
        return [dy.mul(us).mul(dSilu), dy.mul(gs.mul(sig))];
      },
    };
  });
  return op(gate, up);
}

/** Rotary tables (Su et al. 2021, GPT-NeoX half-split layout): cos, sin [maxSeqLen, headDim]. */
export function rotaryTables(maxSeqLen: number, headDim: number, base = 10000): { cos: tf.Tensor2D; sin: tf.Tensor2D } {
  const half = headDim / 2;
  const cos = new Float32Array(maxSeqLen * headDim);
  const sin = new Float32Array(maxSeqLen * headDim);
  for (let t = 0; t < maxSeqLen; t++) {
    for (let i = 0; i < half; i++) {
      const angle = t / Math.pow(base, (2 * i) / headDim);
      for (const j of [i, i + half]) {
        cos[t * headDim + j] = Math.cos(angle);
        sin[t * headDim + j] = Math.sin(angle);
      }
    }
  }
  return { cos: tf.tensor2d(cos, [maxSeqLen, headDim]), sin: tf.tensor2d(sin, [maxSeqLen, headDim]) };
}

/** rotate_half as a matrix: x @ P = concat(−x[D/2:], x[:D/2]) ([D, D], a signed permutation). */
export function rotateHalfMatrix(headDim: number): tf.Tensor2D {
  const half = headDim / 2;
  const p = new Float32Array(headDim * headDim);
  for (let i = 0; i < half; i++) {
    p[(i + half) * headDim + i] = -1; // out[i] = −x[i + half]
    p[i * headDim + i + half] = 1; // out[i + half] = x[i]
  }
  return tf.tensor2d(p, [headDim, headDim]);
}

/**
 * Rotate x [..., R, H, D] by per-row angles cos, sin [R, D] (rows are positions): x·cos + rotate_half(x)·sin.
 * rotate_half is a matmul with rotateHalf [D, D]: slicing and concatenating 27-wide halves is ~100x slower on wasm.
 * Backward: dx = dy·cos + (dy·sin) rotateHalfᵀ.
 */
export function applyRotary(x: tf.Tensor, cos: tf.Tensor2D, sin: tf.Tensor2D, rotateHalf: tf.Tensor2D): tf.Tensor {
  const d = rotateHalf.shape[0];
  const style = opStyle();
  return customOp(([xi], save) => {
    const c = cos.expandDims(1); // [R, 1, D]: broadcast over heads
    const s = sin.expandDims(1);
    save([c, s, rotateHalf]);
    const rotated = tf.matMul(xi.reshape<tf.Tensor2D>([-1, d]), rotateHalf).reshape(xi.shape);
    return {
      value: xi.mul(c).add(rotated.mul(s)),
      gradFunc: (dy, [cs, ss, p]) => {
        const rows = dy.mul(ss).reshape<tf.Tensor2D>([-1, d]);
        const back = (
          style === 'native' ? tf.matMul(rows, p as tf.Tensor2D, false, true) : tf.matMul(rows, tf.transpose(p as tf.Tensor2D))
        ).reshape(dy.shape);
        return [dy.mul(cs).add(back)];
      },
    };
  })(x);
}

/** Additive causal mask [T, T]: 0 where key <= query, -1e9 above the diagonal. */
export function causalMask(t: number): tf.Tensor2D {
  const m = new Float32Array(t * t);
  for (let q = 0; q < t; q++) for (let k = q + 1; k < t; k++) m[q * t + k] = -1e9;
  return tf.tensor2d(m, [t, t]);
}

/**
 * softmax(q kᵀ / sqrt(D) + mask) v over equal-batch rank-3 tensors.
 * q [N, Tq, D], k [N, Tk, D], v [N, Tk, D], mask broadcastable to [Tq, Tk] (constant) → [N, Tq, D].
 * The backward keeps q, k, v and the probabilities P only (autodiff kept ~7 copies of the [N, Tq, Tk] scores):
 *   dV = Pᵀ dY,  dP = dY Vᵀ,  dS = P ⊙ (dP − rowsum(dP ⊙ P)) / sqrt(D),  dQ = dS K,  dK = dSᵀ Q
 * Long sequences run as one 2-D problem per batch·head: wasm's batched matMul is 4-5x slower there
 * ([4,512,54]x[4,54,512]: 191 vs 43 ms). Short ones run batched: a loop over thousands of tiny heads
 * (the GrokFast preset: N = 2048, T = 4) would cost far more in kernel calls than the products.
 */
export function attention(q: tf.Tensor3D, k: tf.Tensor3D, v: tf.Tensor3D, mask: tf.Tensor): tf.Tensor3D {
  if (opStyle() === 'native') return attentionNative(q, k, v, mask);
  return q.shape[1] >= 64 ? attentionPerHead(q, k, v, mask) : attentionBatched(q, k, v, mask);
}

/**
 * Native TensorFlow: every head in one batched matMul with the transposes as flags, and the 1/sqrt(D) scale
 * applied to the [N, T, D] operands and results instead of the [N, Tq, Tk] scores (fewer kernels, smaller passes).
 */
function attentionNative(q: tf.Tensor3D, k: tf.Tensor3D, v: tf.Tensor3D, mask: tf.Tensor): tf.Tensor3D {
  const scale = 1 / Math.sqrt(q.shape[2]);
  const op = customOp(([qi, ki, vi], save) => {
    const probs = tf.softmax(tf.matMul(qi.mul<tf.Tensor3D>(scale), ki as tf.Tensor3D, false, true).add(mask)) as tf.Tensor3D; // [N, Tq, Tk]
    save([qi, ki, vi, probs]);
    return {
      value: tf.matMul(probs, vi), // [N, Tq, D]
      gradFunc: (dy, [qs, ks, vs, p]) => {
        const dp = tf.matMul(dy, vs, false, true); // [N, Tq, Tk]
        const ds = p.mul<tf.Tensor3D>(dp.sub(dp.mul(p).sum(-1, true))); // unscaled
        return [
          tf.matMul(ds, ks as tf.Tensor3D).mul(scale),
          tf.matMul(ds, qs as tf.Tensor3D, true, false).mul(scale),
          tf.matMul(p, dy, true, false),
        ];
      },
    };
  });
  return op(q, k, v) as tf.Tensor3D;
}

const swapLastTwo = (x: tf.Tensor): tf.Tensor3D => tf.transpose(x, [0, 2, 1]) as tf.Tensor3D;

function attentionBatched(q: tf.Tensor3D, k: tf.Tensor3D, v: tf.Tensor3D, mask: tf.Tensor): tf.Tensor3D {
  const scale = 1 / Math.sqrt(q.shape[2]);
  const op = customOp(([qi, ki, vi], save) => {
    const probs = tf.softmax(
      tf
        .matMul(qi as tf.Tensor3D, swapLastTwo(ki))
        .mul(scale)
        .add(mask),
    ) as tf.Tensor3D; // [N, Tq, Tk]
    save([qi, ki, vi, probs]);
    return {
      value: tf.matMul(probs, vi), // [N, Tq, D]
      gradFunc: (dy, [qs, ks, vs, p]) => {
        const dp = tf.matMul(dy, swapLastTwo(vs));
        const ds = p.mul(dp.sub(dp.mul(p).sum(-1, true))).mul<tf.Tensor3D>(scale);
        return [tf.matMul(ds, ks), tf.matMul(swapLastTwo(ds), qs), tf.matMul(swapLastTwo(p), dy)];
      },
    };
  });
  return op(q, k, v) as tf.Tensor3D;
}

function attentionPerHead(q: tf.Tensor3D, k: tf.Tensor3D, v: tf.Tensor3D, mask: tf.Tensor): tf.Tensor3D {
  const n = q.shape[0];
  const scale = 1 / Math.sqrt(q.shape[2]);
  // Per-head lists end to end: splitting [N, T, T] tensors would cost ~20 ms per [4,512,512] unstack.
  const op = customOp(([qi, ki, vi], save) => {
    const [qs, ks, vs] = [qi, ki, vi].map((t) => tf.unstack(t) as tf.Tensor2D[]); // N × [T, D]
    const probs = qs.map((qn, i) => tf.softmax(tf.matMul(qn, tf.transpose(ks[i])).mul(scale).add(mask)) as tf.Tensor2D); // N × [Tq, Tk]
    save([...qs, ...ks, ...vs, ...probs]);
    return {
      value: tf.stack(probs.map((p, i) => tf.matMul(p, vs[i]))), // [N, Tq, D]
      gradFunc: (dy, saved) => {
        const [sq, sk, sv, sp] = [0, 1, 2, 3].map((j) => saved.slice(j * n, (j + 1) * n) as tf.Tensor2D[]);
        const perHead = (tf.unstack(dy) as tf.Tensor2D[]).map((dyn, i) => {
          const dp = tf.matMul(dyn, tf.transpose(sv[i])); // [Tq, Tk]
          const ds = sp[i].mul(dp.sub(dp.mul(sp[i]).sum(-1, true))).mul<tf.Tensor2D>(scale);
          return [tf.matMul(ds, sk[i]), tf.matMul(tf.transpose(ds), sq[i]), tf.matMul(tf.transpose(sp[i]), dyn)];
        });
        return [0, 1, 2].map((j) => tf.stack(perHead.map((g) => g[j]))); // dQ, dK, dV
      },
    };
  });
  return op(q, k, v) as tf.Tensor3D;
}

/**
 * Cross-entropy of logits [..., V] against integer targets [...] → per-position losses [...].
 * Custom gradient (softmax − onehot) · dy: one fused step instead of differentiating logSoftmax and a pick.
 */
export function crossEntropy(logits: tf.Tensor, targets: tf.Tensor): tf.Tensor {
  const vocab = logits.shape[logits.rank - 1];
  const outShape = logits.shape.slice(0, -1);
  const flatTargets = targets.reshape([-1]).toInt() as tf.Tensor1D;
  // int32 oneHot then a cast: the wasm OneHot kernel writes integer bits into a float32 output.
  const oneHot = (ids: tf.Tensor): tf.Tensor => tf.oneHot(ids as tf.Tensor1D, vocab).toFloat(); // [N, V]
  if (opStyle() === 'native') {
    // Native: the target logits by one gather from the flat logits (index n·V + target: a batchDims gather
    // crashes the wasm kernel, which the tests run this style on too), the one-hot made only in the backward,
    // and the softmax from the saved log-sum-exp (one sub + exp instead of a second max/sub/exp/sum/div pass).
    const rowCount = flatTargets.shape[0];
    const flatIndex = tf.range(0, rowCount * vocab, vocab, 'int32').add<tf.Tensor1D>(flatTargets); // [N]
    // float32 straight from OneHot on native; elsewhere int32 then a cast (see above)
    const hot = (ids: tf.Tensor): tf.Tensor => (tf.getBackend() === 'tensorflow' ? tf.oneHot(ids, vocab, 1, 0, 'float32') : oneHot(ids));
    const nativeOp = customOp(([z], save) => {
      const rows = z.reshape<tf.Tensor2D>([-1, vocab]);
      const lse = tf.logSumExp(rows, -1, true); // [N, 1]
      save([rows, lse, flatTargets]);
      return {
        value: lse
          .reshape([-1])
          .sub(tf.gather(z.reshape([-1]), flatIndex))
          .reshape(outShape),
        gradFunc: (dy, [savedRows, savedLse, savedTargets]) => [
          tf
            .exp(savedRows.sub(savedLse))
            .sub(hot(savedTargets))
            .mul(dy.reshape([-1, 1]))
            .reshape(logits.shape),
        ],
      };
    });
    return nativeOp(logits);
  }
  const op = customOp(([z], save) => {
    const rows = z.reshape([-1, vocab]);
    save([rows, flatTargets]); // the backward runs after the forward's tensors are freed: keep what it needs
    return {
      value: tf
        .logSumExp(rows, -1)
        .sub(rows.mul(oneHot(flatTargets)).sum(-1))
        .reshape(outShape),
      gradFunc: (dy, [savedRows, savedTargets]) => [
        tf
          .softmax(savedRows)
          .sub(oneHot(savedTargets))
          .mul(dy.reshape([-1, 1]))
          .reshape(logits.shape),
      ],
    };
  });
  return op(logits);
}

/** crossEntropy for logits [N, V] and targets [N]. */
export function crossEntropyPerRow(logits: tf.Tensor2D, targets: tf.Tensor1D): tf.Tensor1D {
  return crossEntropy(logits, targets) as tf.Tensor1D;
}
