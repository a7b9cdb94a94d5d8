/**
 * A learner process for the secure-aggregation fault tests: real gRPC and the real SecAgg+ learner
 * side, with scripted training (global + secaggDelta(index)) so the test knows the right sum.
 * argv: <trainer port> <node id> <index>. Prints "ready" once registered.
 */
import { LearnerMethods } from '@oiafed/core';
import { scriptedLearnerMetadata, serveScriptedLearner } from '@oiafed/core/testing';
import { GrpcTransport } from '@oiafed/transport';
import { secaggDelta, secaggSamples } from './secagg-updates.js';

const [port, nodeId, index] = process.argv.slice(2);
const i = Number(index);
const transport = new GrpcTransport({
  nodeId: nodeId!,
  role: 'learner',
  connectTo: [{ nodeId: 'trainer', host: '127.0.0.1', port: Number(port) }],
  metadata: scriptedLearnerMetadata(secaggSamples(i)),
});
serveScriptedLearner(transport, {
  nodeId: nodeId!,
  numSamples: secaggSamples(i),
  update: (_round, global) => {
    const delta = secaggDelta(i, global.length);
    return global.map((g, j) => g + delta[j]!);
  },
});
transport.handle(LearnerMethods.shutdown, () => {
  setTimeout(() => void transport.stop().then(() => process.exit(0)), 10);
  return {};
});
await transport.start();
process.stdout.write('ready\n');
