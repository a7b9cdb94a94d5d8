import type { TensorSpec, WeightLayout } from '@oiafed/aggregators';

/**
 * The body/head split as personalized algorithms read it from the layout: a model marks its head
 * tensors `isHead` (@oiafed/models: the classifier its type declares, see registerModel `head`).
 */

/** Whether `spec` is a head tensor. */
export function isHeadTensor(spec: TensorSpec): boolean {
  return (spec as TensorSpec & { isHead?: boolean }).isHead === true;
}

/** Trainable tensor names of the head and of the body; throws when the model marks no head. */
export function headAndBody(layout: WeightLayout, who: string): { head: string[]; body: string[] } {
  const head = layout.filter((spec) => spec.trainable && isHeadTensor(spec)).map((spec) => spec.name);
  if (head.length === 0) throw new Error(`${who}: the model marks no head tensors (declare its head when registering it)`);
  const body = layout.filter((spec) => spec.trainable && !isHeadTensor(spec)).map((spec) => spec.name);
  return { head, body };
}

/**
 * The head's linear classifier: its 2-D kernel [dim, classes] and its bias [classes] (FedProto's
 * prototype size, FedRoD's personalized head).
 */
export function headClassifier(layout: WeightLayout, who: string): { kernel: TensorSpec; bias: TensorSpec; dim: number; classes: number } {
  const head = layout.filter((spec) => spec.trainable && isHeadTensor(spec));
  const kernel = head.find((spec) => spec.shape.length === 2);
  const classes = kernel?.shape[1];
  const bias = head.find((spec) => spec.shape.length === 1 && spec.shape[0] === classes);
  if (!kernel || !bias || classes === undefined) {
    throw new Error(`${who}: the model's head is not a linear classifier (a [dim, classes] kernel and a [classes] bias)`);
  }
  return { kernel, bias, dim: kernel.shape[0]!, classes };
}
