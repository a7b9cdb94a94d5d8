/**
 * @oiafed/component: the shared primitives of OiaFed components, without dependencies: one
 * registry helper, one argument-schema checker and one Logger interface.
 */
export const PACKAGE_NAME = '@oiafed/component';
export type { Logger } from './logger.js';
export { silentLogger } from './logger.js';
export { closestName, didYouMean, editDistance } from './names.js';
export type { RegisterOptions, Registry, RegistryOptions } from './registry.js';
export { COMPONENT_NAME, createRegistry, unknownNameMessage } from './registry.js';
export type { ArgsSchema, SchemaType } from './schema.js';
export { describeValue, parseArgs, schemaErrors, validateSchema } from './schema.js';
