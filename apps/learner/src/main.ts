#!/usr/bin/env node
/** `oiafed-learner --config learner.yaml`: the same as `oiafed run`, refusing configs of another role. */
import { mainForRole } from '@oiafed/cli';

await mainForRole('learner', process.argv.slice(2));
