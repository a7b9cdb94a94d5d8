/**
 * Per-step hooks of local training: what an algorithm adds to each optimizer step of
 * `FedModel.train` beyond cross-entropy. A hook can add a loss term computed from the weights and
 * from the body's output (the representation), change the logits the loss sees, and act after the
 * step on the detached features. Algorithms that must run in another thread (the learner pool)
 * declare their terms as data (`StepTerm`), built here into hooks on whichever thread trains;
 * a `StepHook` object of your own works too, on the main thread.
 */
import * as tf from '@tensorflow/tfjs-core';

/** One mini-batch as a hook sees it. Tensors belong to the step: do not dispose them. */
export interface StepContext {
  x: tf.Tensor;
  labels: tf.Tensor1D;
  yOneHot: tf.Tensor;
  /** The body's output (before the head), flattened to [batch, dim]. */
  features: tf.Tensor2D;
  /** The head's output. */
  logits: tf.Tensor2D;
  epoch: number;
  epochs: number;
  /** Trainable variables by layout name. */
  variables: ReadonlyMap<string, tf.Variable>;
}

/** Runs the body with other weights, in inference mode (MOON's global and previous models). */
export interface ReferenceForward {
  /** Flattened features of `x` under `weights` (full layout); the caller owns the result. */
  featuresWith(x: tf.Tensor, weights: Float32Array): tf.Tensor2D;
}

/** Hooks around one optimizer step; every member is optional. */
export interface StepHook {
  /** Before the gradient tape: compute constants for this batch (kept until `afterStep`). */
  prepare?(x: tf.Tensor, reference: ReferenceForward): void;
  /** The logits the cross-entropy sees (the accuracy keeps the model's own). */
  lossLogits?(logits: tf.Tensor2D, ctx: StepContext): tf.Tensor2D;
  /** A term added to the loss, inside the tape (differentiated w.r.t. the trainable weights). */
  loss?(ctx: StepContext): tf.Scalar | undefined;
  /** A gradient before the optimizer sees it (inside a tidy). */
  transformGradient?(name: string, gradient: tf.Tensor, variable: tf.Variable): tf.Tensor;
  /** After the optimizer step, with the step's features and logits (detached). */
  afterStep?(ctx: StepContext): void;
  /** At the end of the run: vectors returned in `TrainResult.outputs`. */
  outputs?(): Record<string, Float32Array>;
  /** Frees what the hook holds; called once when the run ends, also on error. */
  dispose?(): void;
}

/**
 * MOON's model-contrastive term (Li et al. 2021, eq. 3), times mu: with z this model's
 * representation, z_glob the global model's and z_prev each previous local model's,
 * -log( e^{sim(z,z_glob)/tau} / (e^{sim(z,z_glob)/tau} + sum_prev e^{sim(z,z_prev)/tau}) ),
 * averaged over the batch; sim is cosine similarity.
 */
export interface ContrastiveTerm {
  kind: 'contrastive';
  mu: number;
  temperature: number;
  /** The positive model's weights (the round's global model), full layout. */
  positive: Float32Array;
  /** Negative models' weights (the learner's previous local models), full layout. */
  negatives: Float32Array[];
}

/**
 * FedProto's prototype regularizer (Tan et al. 2022, eq. 8's second term), times lambda: the
 * mean over the batch and the feature dimension of (f(x_i) - C_{y_i})^2, where a sample whose
 * class has no global prototype contributes zero (as the paper's code does).
 */
export interface PrototypeTerm {
  kind: 'prototype';
  lambda: number;
  /** Global prototypes, [numClasses, dim] row-major. */
  prototypes: Float32Array;
  /** 1 for classes that have a global prototype, per class. */
  present: Float32Array;
}

/**
 * Per-class sums of the features (FedProto's local prototypes) or of the logits (FedDistill's
 * local logits) seen in the last epoch: `outputs.class_feature_sums` / `class_logit_sums`
 * ([classes, dim] row-major) and `class_counts`.
 */
export interface ClassFeaturesTerm {
  kind: 'class_features';
  /** What to sum; default `features`. */
  of?: 'features' | 'logits';
}

/**
 * Federated distillation's regularizer (Jeong et al. 2018, as PFLlib's FedDistill), times lambda:
 * the batch mean of the cross-entropy between the soft targets softmax(T_{y_i}) and the model's
 * softmax, where T holds the global per-class mean logits; a sample whose class has no global
 * logits adds nothing.
 */
export interface SoftTargetsTerm {
  kind: 'soft_targets';
  lambda: number;
  /** Global per-class logits, [numClasses, numClasses] row-major. */
  targets: Float32Array;
  /** 1 for classes that have global logits, per class. */
  present: Float32Array;
}

/**
 * Balanced softmax (Ren et al. 2020; FedRoD's generic loss, Chen & Chao 2022, eq. 5): the
 * cross-entropy sees logits + log n_c, with n_c the class counts of the data the run trains on
 * (or `classCounts` when given).
 */
export interface BalancedSoftmaxTerm {
  kind: 'balanced_softmax';
  classCounts?: Float32Array;
}

/**
 * A linear head of its own over the detached features (FedRoD's personalized head): after each
 * step, one SGD step on cross-entropy(model logits + features W + b), the model's logits
 * detached. Its final weights come back as `outputs.aux_head` ([dim * classes] then [classes]).
 */
export interface AuxHeadTerm {
  kind: 'aux_head';
  weights: Float32Array;
  lr: number;
}

/** A per-step term declared as data, so it can travel to a worker thread. */
export type StepTerm = ContrastiveTerm | PrototypeTerm | ClassFeaturesTerm | SoftTargetsTerm | BalancedSoftmaxTerm | AuxHeadTerm;

/** The hook that implements `term`; `labels` are those of the data the run trains on. */
export function stepHookFor(term: StepTerm, numClasses: number, labels: Int32Array): StepHook {
  switch (term.kind) {
    case 'contrastive':
      return contrastiveHook(term);
    case 'prototype':
      return prototypeHook(term, numClasses);
    case 'class_features':
      return classFeaturesHook(numClasses, term.of ?? 'features');
    case 'soft_targets':
      return softTargetsHook(term, numClasses);
    case 'balanced_softmax':
      return balancedSoftmaxHook(term.classCounts ?? labelCounts(labels, numClasses), numClasses);
    case 'aux_head':
      return auxHeadHook(term, numClasses);
    default:
      throw new Error(`unknown step term ${JSON.stringify((term as { kind?: unknown }).kind)}`);
  }
}

/**
 * Cosine similarity of matching rows, as PyTorch computes it: the norm product is
 * sqrt(max(|a|^2 |b|^2, eps^2)), so a zero row (a dead ReLU layer) has a finite gradient.
 */
export function rowCosine(a: tf.Tensor2D, b: tf.Tensor2D): tf.Tensor1D {
  return tf.tidy(() => {
    const dot = tf.sum(tf.mul(a, b), 1);
    const squares = tf.mul(tf.sum(tf.square(a), 1), tf.sum(tf.square(b), 1));
    return tf.div(dot, tf.sqrt(tf.maximum(squares, 1e-16))) as tf.Tensor1D;
  });
}

function contrastiveHook(term: ContrastiveTerm): StepHook {
  let references: tf.Tensor2D[] = [];
  const release = () => {
    tf.dispose(references);
    references = [];
  };
  return {
    prepare(x, reference) {
      release();
      references = [term.positive, ...term.negatives].map((weights) => reference.featuresWith(x, weights));
    },
    loss({ features }) {
      // Column 0 is the positive pair: the loss is cross-entropy with label 0 over [pos, negs] / tau.
      const sims = references.map((z) => rowCosine(features, z));
      const logits = tf.div(tf.stack(sims, 1), term.temperature) as tf.Tensor2D;
      const nll = tf.neg(tf.mean(tf.slice(tf.logSoftmax(logits), [0, 0], [-1, 1])));
      return tf.mul(nll, term.mu) as tf.Scalar;
    },
    afterStep: release,
    dispose: release,
  };
}

function prototypeHook(term: PrototypeTerm, numClasses: number): StepHook {
  const dim = term.prototypes.length / numClasses;
  if (!Number.isInteger(dim) || term.present.length !== numClasses) {
    throw new Error(`prototype term: expected [${numClasses} x dim] prototypes and ${numClasses} flags`);
  }
  const prototypes = tf.tensor2d(term.prototypes, [numClasses, dim]);
  const present = tf.tensor1d(term.present);
  return {
    loss({ features, labels }) {
      if (features.shape[1] !== dim) throw new Error(`prototype term: features have ${features.shape[1]} dims, prototypes ${dim}`);
      const target = tf.gather(prototypes, labels);
      const mask = tf.expandDims(tf.gather(present, labels), 1);
      return tf.mul(tf.mean(tf.mul(tf.square(tf.sub(features, target)), mask)), term.lambda) as tf.Scalar;
    },
    dispose: () => tf.dispose([prototypes, present]),
  };
}

function classFeaturesHook(numClasses: number, of: 'features' | 'logits'): StepHook {
  let sums: Float64Array | undefined;
  const counts = new Float64Array(numClasses);
  return {
    afterStep(ctx) {
      const { labels, epoch, epochs } = ctx;
      const features = of === 'features' ? ctx.features : ctx.logits;
      if (epoch !== epochs - 1) return;
      const [b, dim] = features.shape;
      sums ??= new Float64Array(numClasses * dim);
      const f = features.dataSync();
      const y = labels.dataSync();
      for (let i = 0; i < b; i++) {
        counts[y[i]!]! += 1;
        for (let j = 0; j < dim; j++) sums[y[i]! * dim + j]! += f[i * dim + j]!;
      }
    },
    outputs: () => ({ [`class_${of === 'features' ? 'feature' : 'logit'}_sums`]: Float32Array.from(sums ?? []), class_counts: Float32Array.from(counts) }),
  };
}

function softTargetsHook(term: SoftTargetsTerm, numClasses: number): StepHook {
  if (term.targets.length !== numClasses * numClasses || term.present.length !== numClasses) {
    throw new Error(`soft_targets term: expected [${numClasses} x ${numClasses}] targets and ${numClasses} flags`);
  }
  const soft = tf.tidy(() => tf.softmax(tf.tensor2d(term.targets, [numClasses, numClasses])));
  const present = tf.tensor1d(term.present);
  return {
    loss({ logits, labels }) {
      const perSample = tf.neg(tf.sum(tf.mul(tf.gather(soft, labels), tf.logSoftmax(logits)), 1));
      return tf.mul(tf.mean(tf.mul(perSample, tf.gather(present, labels))), term.lambda) as tf.Scalar;
    },
    dispose: () => tf.dispose([soft, present]),
  };
}

/** Samples per class. */
export function labelCounts(labels: Int32Array, numClasses: number): Float32Array {
  const counts = new Float32Array(numClasses);
  for (const y of labels) counts[y]! += 1;
  return counts;
}

function balancedSoftmaxHook(classCounts: Float32Array, numClasses: number): StepHook {
  if (classCounts.length !== numClasses) throw new Error(`balanced_softmax term: expected ${numClasses} class counts`);
  // log 0 would be -Infinity, and 0 * -Infinity a NaN in the one-hot product: a very negative
  // finite value gives an absent class the same zero probability.
  const prior = tf.tensor1d(Float32Array.from(classCounts, (n) => (n > 0 ? Math.log(n) : -1e4)));
  return {
    lossLogits: (logits) => tf.add(logits, prior) as tf.Tensor2D,
    dispose: () => prior.dispose(),
  };
}

function auxHeadHook(term: AuxHeadTerm, numClasses: number): StepHook {
  const dim = (term.weights.length - numClasses) / numClasses;
  if (!Number.isInteger(dim) || dim < 1) throw new Error(`aux_head term: expected dim * ${numClasses} + ${numClasses} weights`);
  const w = tf.variable(tf.tensor2d(term.weights.subarray(0, dim * numClasses), [dim, numClasses]));
  const b = tf.variable(tf.tensor1d(term.weights.subarray(dim * numClasses)));
  return {
    afterStep({ features, logits, yOneHot }) {
      tf.tidy(() => {
        // Closed-form gradient of mean cross-entropy w.r.t. a linear head: (softmax - y) / batch.
        const residual = tf.div(tf.sub(tf.softmax(tf.add(logits, tf.add(tf.matMul(features, w), b))), yOneHot), features.shape[0]);
        w.assign(tf.sub(w, tf.mul(tf.matMul(features, residual, true, false), term.lr)));
        b.assign(tf.sub(b, tf.mul(tf.sum(residual, 0), term.lr)));
      });
    },
    outputs() {
      const out = new Float32Array(term.weights.length);
      out.set(w.dataSync() as Float32Array, 0);
      out.set(b.dataSync() as Float32Array, dim * numClasses);
      return { aux_head: out };
    },
    dispose: () => tf.dispose([w, b]),
  };
}
