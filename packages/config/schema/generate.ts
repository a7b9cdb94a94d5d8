// Writes node-config.schema.json from the TS schema object: `npx tsx packages/config/schema/generate.ts`.
import { writeFileSync } from 'node:fs';
import { renderSchemaJson } from '../src/schema.js';

writeFileSync(new URL('./node-config.schema.json', import.meta.url), renderSchemaJson());
