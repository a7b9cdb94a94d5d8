/**
 * A transport whose outgoing calls pass through `around` first: tests record what a trainer
 * receives, or act (kill a process) between a reply and its delivery; benchmarks count bytes.
 * Everything else is the wrapped transport's own.
 */
import type { Payload, Transport } from '@oiafed/transport';

export type CallInterceptor = (to: string, method: string, payload: Payload, next: () => Promise<Payload>) => Promise<Payload>;

export function interceptCalls(transport: Transport, around: CallInterceptor): Transport {
  return new Proxy(transport, {
    get(target, prop) {
      if (prop === 'call') {
        return (to: string, method: string, payload: Payload, options?: Parameters<Transport['call']>[3]) =>
          around(to, method, payload, () => target.call(to, method, payload, options));
      }
      const value = Reflect.get(target, prop, target) as unknown;
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}
