export { startDashboard } from './server.js';
export type { DashboardOptions, DashboardServer, RouteHandler } from './server.js';
export { MAX_LEARNERS_KEPT, MAX_ROUNDS_KEPT } from './model.js';
export type {
  DashboardEvent,
  DashboardLinks,
  DashboardSnapshot,
  LearnerRow,
  LearnerState,
  RoundProgress,
  RunInfo,
} from './model.js';
