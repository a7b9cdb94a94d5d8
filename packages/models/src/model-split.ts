import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';

/**
 * A model seen as body and head, the split personalized FL is built on (FedPer, FedRep, FedBABU
 * and FedRoD keep or train the head apart; MOON and FedProto read the body's output). The head is
 * a chain of trailing layers (the classifier, with the dropout in front of it); the body is
 * everything before it, and its output, the input of the first head layer, is the sample's
 * representation ("features").
 */
export class BodyHeadSplit {
  /** Names of the head layers, in order. */
  readonly headLayers: readonly string[];
  private readonly head: tfl.layers.Layer[];
  /** The body as a model sharing the full model's layers; undefined when the head is every layer. */
  private readonly body: tfl.LayersModel | undefined;

  /**
   * @param head names of the head layers as the model type declared them; names the built model
   *   lacks (a dropout of rate 0) are skipped. Undeclared: see defaultHead.
   */
  constructor(model: tfl.LayersModel, head: readonly string[] | undefined, where: string) {
    const layers = model.layers.filter((layer) => layer.getClassName() !== 'InputLayer');
    const wanted = new Set(head ?? defaultHead(layers, where));
    const start = layers.findIndex((layer) => wanted.has(layer.name));
    if (start < 0) throw new Error(`${where}: none of the head layers [${[...wanted].join(', ')}] is in the model`);
    const trailing = layers.slice(start);
    const stray = trailing.find((layer) => !wanted.has(layer.name));
    if (stray) throw new Error(`${where}: the head must be the model's trailing layers, but ${stray.name} follows ${layers[start]!.name}`);
    this.head = trailing;
    this.headLayers = trailing.map((layer) => layer.name);
    this.body = start === 0 ? undefined : tfl.model({ inputs: model.inputs, outputs: trailing[0]!.input as tfl.SymbolicTensor });
  }

  /** The head layers' weights (to mark the layout's head tensors). */
  headWeights(): Set<unknown> {
    return new Set(this.head.flatMap((layer) => layer.weights));
  }

  /** The body's output: the representation the head reads. */
  features(x: tf.Tensor, training: boolean): tf.Tensor {
    return this.body ? (this.body.apply(x, { training }) as tf.Tensor) : x;
  }

  /** The head applied to features: the model's logits. */
  logits(features: tf.Tensor, training: boolean): tf.Tensor {
    let h = features;
    for (const layer of this.head) h = layer.apply(h, { training }) as tf.Tensor;
    return h;
  }

  /** Features and logits of one forward pass (the same values as the whole model's `apply`). */
  forward(x: tf.Tensor, training: boolean): { features: tf.Tensor; logits: tf.Tensor } {
    const features = this.features(x, training);
    return { features, logits: this.logits(features, training) };
  }
}

/**
 * The head of a model that declares none: its last layer with weights and the dropout layers
 * right in front of it (so the representation is taken before dropout, as the built-ins declare).
 */
export function defaultHead(layers: readonly tfl.layers.Layer[], where: string): string[] {
  let last = layers.length - 1;
  while (last >= 0 && layers[last]!.weights.length === 0) last--;
  if (last < 0) throw new Error(`${where}: the model has no layer with weights`);
  let first = last;
  while (first > 0 && layers[first - 1]!.getClassName() === 'Dropout') first--;
  return layers.slice(first, last + 1).map((layer) => layer.name);
}

/**
 * The body under other weights, in inference mode, for hooks that compare representations
 * (MOON). It points the model's variables at the other weights for one forward pass and back;
 * the tensors of each weight vector are built once per training run.
 */
export class ReferenceBodies {
  private readonly cache = new Map<Float32Array, tf.Tensor[]>();

  constructor(
    private readonly split: BodyHeadSplit,
    private readonly refs: ReadonlyArray<{ spec: { offset: number; size: number; shape: number[] }; variable: tfl.LayerVariable }>,
  ) {}

  featuresWith(x: tf.Tensor, weights: Float32Array): tf.Tensor2D {
    let tensors = this.cache.get(weights);
    if (!tensors) {
      tensors = this.refs.map(({ spec }) => tf.tensor(weights.subarray(spec.offset, spec.offset + spec.size), spec.shape, 'float32'));
      this.cache.set(weights, tensors);
    }
    // A clone shares the variable's data, so swapping is by reference, without copies.
    const saved = this.refs.map(({ variable }) => tf.clone(variable.read()));
    try {
      this.refs.forEach(({ variable }, i) => variable.write(tensors[i]!));
      return tf.tidy(() => {
        const features = this.split.features(x, false);
        return tf.reshape(features, [features.shape[0]!, -1]) as tf.Tensor2D;
      });
    } finally {
      this.refs.forEach(({ variable }, i) => variable.write(saved[i]!));
      tf.dispose(saved);
    }
  }

  dispose(): void {
    for (const tensors of this.cache.values()) tf.dispose(tensors);
    this.cache.clear();
  }
}
