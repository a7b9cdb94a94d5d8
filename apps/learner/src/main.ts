#!/usr/bin/env node
/** `oiafed-learner --config learner.yaml`: the same as `oiafed run`, refusing configs of another role. */
import { main } from '@oiafed/cli';

const args = process.argv.slice(2);
await main(args[0] === '--help' || args[0] === '-h' ? ['run', '--help'] : ['run', ...args], { expectRole: 'learner' });
