// Subpath `@oiafed/transport/wire`: the generated protobuf codecs of the wire protocol
// (proto/oiafed/v1/node.proto), for tools and tests that speak the protocol directly, e.g. a
// fuzzer sending malformed frames. Applications use GrpcTransport instead.
// Each message name is both its interface and its codec (encode/decode/fromPartial).
export { Ack, Cancel, Chunk, DataType, Envelope, EnvelopeKind, ErrorInfo, Frame, Heartbeat, NodeServiceService, Register, RegisterAck, TensorProto } from './generated/oiafed/v1/node.js';
export type { NodeServiceServer } from './generated/oiafed/v1/node.js';
