#!/usr/bin/env node
/** `oiafed-trainer --config trainer.yaml`: the same as `oiafed run`, refusing configs of another role. */
import { mainForRole } from '@oiafed/cli';

await mainForRole('trainer', process.argv.slice(2));
