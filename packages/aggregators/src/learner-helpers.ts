/**
 * Learner-side math of algorithms whose client step differs from plain SGD. The default learner
 * in @oiafed/core calls these on flat vectors; they stay tfjs-free so plugins can reuse them.
 */

function checkLengths(fn: string, vectors: Record<string, Float32Array>): number {
  let expected = -1;
  let first = '';
  for (const [name, v] of Object.entries(vectors)) {
    if (!(v instanceof Float32Array)) throw new Error(`${fn}: ${name} must be a Float32Array`);
    if (expected < 0) {
      expected = v.length;
      first = name;
    } else if (v.length !== expected) {
      throw new Error(`${fn}: ${name} has length ${v.length} but ${first} has ${expected}; all vectors must match`);
    }
  }
  return expected;
}

/**
 * SCAFFOLD client control update, option II of Karimireddy et al. 2020 (Algorithm 1, line 12):
 * c_i+ = c_i - c + (x - y_i) / (K * eta_l), and the delta sent to the server is c_i+ - c_i.
 * @param steps K, the number of local SGD steps taken.
 * @param lr eta_l, the local learning rate.
 */
export function scaffoldControlUpdate(args: {
  clientControl: Float32Array;
  serverControl: Float32Array;
  global: Float32Array;
  local: Float32Array;
  steps: number;
  lr: number;
}): { newClientControl: Float32Array; delta: Float32Array } {
  const { clientControl, serverControl, global, local, steps, lr } = args;
  const n = checkLengths('scaffoldControlUpdate', { clientControl, serverControl, global, local });
  if (!Number.isFinite(steps) || steps <= 0) {
    throw new Error(`scaffoldControlUpdate: steps must be a positive number of local SGD steps, got ${steps}`);
  }
  if (!Number.isFinite(lr) || lr <= 0) {
    throw new Error(`scaffoldControlUpdate: lr must be a positive learning rate, got ${lr}`);
  }
  const inv = 1 / (steps * lr);
  const newClientControl = new Float32Array(n);
  const delta = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const ci = clientControl[i] - serverControl[i] + (global[i] - local[i]) * inv;
    newClientControl[i] = ci;
    delta[i] = ci - clientControl[i];
  }
  return { newClientControl, delta };
}

/**
 * FedNova's a_i = ||a_i||_1 (Wang et al. 2020, "Tackling the Objective Inconsistency Problem", Sec. 4
 * and App. on momentum): tau for plain SGD, and [tau - rho (1 - rho^tau) / (1 - rho)] / (1 - rho)
 * for SGD with heavy-ball momentum rho.
 */
export function fednovaNormalizer(steps: number, momentum: number): number {
  if (!Number.isFinite(steps) || steps < 0) {
    throw new Error(`fednovaNormalizer: steps must be a finite number >= 0, got ${steps}`);
  }
  if (!Number.isFinite(momentum) || momentum < 0 || momentum >= 1) {
    throw new Error(`fednovaNormalizer: momentum must be in [0, 1), got ${momentum}`);
  }
  if (momentum === 0) return steps;
  const rho = momentum;
  return (steps - (rho * (1 - Math.pow(rho, steps))) / (1 - rho)) / (1 - rho);
}
