export { HELP, UsageError, runCommand } from './commands.js';
export type { CommandIo } from './commands.js';
export { main, mainForRole, runWithExitCode } from './main.js';
