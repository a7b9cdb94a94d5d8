// Picks the page's tfjs backend: webgl (GPU) when the browser offers it, else wasm (with
// @oiafed/models' patched training kernels), else the pure-JS cpu backend.
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-webgl';
import { setThreadsCount, setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { registerPatchedWasmKernels } from '@oiafed/models';

export type WebBackend = 'webgl' | 'wasm' | 'cpu';

export const BACKEND_ORDER: readonly WebBackend[] = ['webgl', 'wasm', 'cpu'];

export interface PickedBackend {
  backend: WebBackend;
  /** Why each earlier choice was passed over. */
  skipped: string[];
}

/**
 * @oiafed/models yields to the event loop with setImmediate (Node). A browser has none: a
 * MessageChannel gives the same "after pending I/O" turn without setTimeout's 4 ms clamp, so
 * heartbeats are answered between batches.
 */
export function installBrowserShims(): void {
  const g = globalThis as { setImmediate?: (fn: () => void) => unknown };
  if (typeof g.setImmediate === 'function') return;
  const channel = new MessageChannel();
  const queue: Array<() => void> = [];
  channel.port1.onmessage = () => queue.shift()?.();
  g.setImmediate = (fn: () => void) => {
    queue.push(fn);
    channel.port2.postMessage(0);
  };
}

/**
 * The WebGL renderer's name when it is a software rasterizer (SwiftShader, llvmpipe: a browser
 * without a usable GPU), else undefined. bench:web: software webgl trains lenet about 8x slower than
 * wasm, so the automatic choice passes it over.
 */
export function softwareWebGlRenderer(): string | undefined {
  if (typeof OffscreenCanvas === 'undefined') return undefined;
  const gl = new OffscreenCanvas(1, 1).getContext('webgl2') ?? new OffscreenCanvas(1, 1).getContext('webgl');
  if (!gl) return undefined;
  const info = gl.getExtension('WEBGL_debug_renderer_info');
  const renderer = String(gl.getParameter(info ? info.UNMASKED_RENDERER_WEBGL : gl.RENDERER));
  return /swiftshader|llvmpipe|softpipe|software/i.test(renderer) ? renderer : undefined;
}

/** Selects the first backend of `order` that initialises; `wasmPath`: where the .wasm files are served (prefix or file map). */
export async function pickBackend(options: { order?: readonly WebBackend[]; wasmPath?: string | Record<string, string> } = {}): Promise<PickedBackend> {
  installBrowserShims();
  registerPatchedWasmKernels();
  if (options.wasmPath) setWasmPaths(options.wasmPath);
  // Threaded wasm needs cross-origin isolation; one thread works everywhere.
  setThreadsCount(1);
  const skipped: string[] = [];
  for (const name of options.order ?? BACKEND_ORDER) {
    // Only the automatic choice skips software GL; an explicit order is obeyed.
    const software = !options.order && name === 'webgl' ? softwareWebGlRenderer() : undefined;
    if (software) {
      skipped.push(`webgl: software renderer (${software}), slower than wasm`);
      continue;
    }
    try {
      if (await tf.setBackend(name)) {
        await tf.ready();
        return { backend: name, skipped };
      }
      skipped.push(`${name}: not available`);
    } catch (err) {
      skipped.push(`${name}: ${(err as Error).message}`);
    }
  }
  throw new Error(`no tfjs backend could start (${skipped.join('; ')})`);
}
