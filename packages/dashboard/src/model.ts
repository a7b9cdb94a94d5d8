/**
 * What the dashboard shows, as plain JSON-safe data: the run header, the finished rounds, the
 * learners table and the current round's progress. The server keeps one {@link DashboardState};
 * the page receives it as a snapshot and then as events. Browser-safe (no node imports): the page
 * script imports these types and {@link applyEvent}.
 */
import type { StoredRoundRecord } from '@oiafed/tracker';

/** A learner's state in the table. */
export type LearnerState = 'registered' | 'training' | 'uploading' | 'lost';

/** One row of the learners table; every field but `id` and `state` is optional. */
export interface LearnerRow {
  /** Node id as the learner registered it: comes from the network, shown as text only. */
  id: string;
  state: LearnerState;
  /** Compute backend the learner reported (e.g. `wasm`, `tensorflow`, `webgl`). */
  backend?: string;
  /** Local training samples. */
  samples?: number;
  /** ISO time of the last heartbeat or message heard from the learner. */
  last_heartbeat?: string;
  /** Seconds of the learner's last local training. */
  last_round_s?: number;
  /** Bytes the learner sent to the trainer (updates) and received from it (global models). */
  bytes_up?: number;
  bytes_down?: number;
  /** Updates refused by validation, and the last reason. */
  rejected?: number;
  last_rejection?: string;
}

/** The run header. */
export interface RunInfo {
  exp_name: string;
  model: string;
  aggregator: string;
  max_rounds: number;
  /** ISO time the trainer started. */
  started_at: string;
  /** `running` until the run ends; then `finished` or `failed`. */
  status: 'waiting' | 'running' | 'finished' | 'failed';
  /** Why the run failed, when it did. */
  error?: string;
  /** Why a finished run stopped before max_rounds (early stopping, a stop signal). */
  stop_reason?: string;
}

/** The round in flight: how many of the selected learners have replied. */
export interface RoundProgress {
  round: number;
  selected: number;
  done: number;
  /** ISO time the round started. */
  started_at: string;
}

/** Where the page links to; relative paths or absolute URLs. */
export interface DashboardLinks {
  /** Port of the trainer's Prometheus endpoint (`/metrics`), on the page's own host. */
  metrics_port?: number;
  /** The run report (`/report` on the dashboard when a run directory is known). */
  report?: string;
}

/** Everything the page needs on connect. */
export interface DashboardSnapshot {
  run: RunInfo;
  rounds: StoredRoundRecord[];
  learners: LearnerRow[];
  progress?: RoundProgress;
  links: DashboardLinks;
  /** Server time (ISO) when the snapshot was taken, for the elapsed clock. */
  now: string;
}

/** One Server-Sent Event after the snapshot: its `event:` name and JSON data. */
export type DashboardEvent =
  | { type: 'snapshot'; data: DashboardSnapshot }
  | { type: 'round'; data: StoredRoundRecord }
  | { type: 'learner'; data: LearnerRow }
  | { type: 'progress'; data: RoundProgress | null }
  | { type: 'run'; data: RunInfo };

/** Rounds kept in memory (and sent in a snapshot); older ones stay in the history file and the report. */
export const MAX_ROUNDS_KEPT = 5000;
/** Learner rows kept: a hostile peer cycling ids must not grow the table without bound. */
export const MAX_LEARNERS_KEPT = 1000;

/** The dashboard's state, mutated by {@link applyEvent} on both sides of the stream. */
export interface DashboardState {
  run: RunInfo;
  rounds: StoredRoundRecord[];
  learners: Map<string, LearnerRow>;
  progress?: RoundProgress;
  links: DashboardLinks;
}

/** A fresh state before the trainer says anything. */
export function emptyState(run?: Partial<RunInfo>): DashboardState {
  return {
    run: { exp_name: '', model: '', aggregator: '', max_rounds: 0, started_at: new Date().toISOString(), status: 'waiting', ...run },
    rounds: [],
    learners: new Map(),
    links: {},
  };
}

/** The state as a snapshot event payload. */
export function toSnapshot(state: DashboardState): DashboardSnapshot {
  return {
    run: state.run,
    rounds: state.rounds,
    learners: [...state.learners.values()],
    progress: state.progress,
    links: state.links,
    now: new Date().toISOString(),
  };
}

/** Applies one event to a state (the server before broadcasting it, the page on receipt). */
export function applyEvent(state: DashboardState, event: DashboardEvent): void {
  switch (event.type) {
    case 'snapshot':
      state.run = event.data.run;
      state.rounds = [...event.data.rounds];
      state.learners = new Map(event.data.learners.map((l) => [l.id, l]));
      state.progress = event.data.progress;
      state.links = event.data.links;
      return;
    case 'round':
      state.rounds.push(event.data);
      if (state.rounds.length > MAX_ROUNDS_KEPT) state.rounds.splice(0, state.rounds.length - MAX_ROUNDS_KEPT);
      return;
    case 'learner':
      if (!state.learners.has(event.data.id) && state.learners.size >= MAX_LEARNERS_KEPT) dropOneLost(state.learners);
      if (state.learners.has(event.data.id) || state.learners.size < MAX_LEARNERS_KEPT) state.learners.set(event.data.id, event.data);
      return;
    case 'progress':
      state.progress = event.data ?? undefined;
      return;
    case 'run':
      state.run = event.data;
      return;
  }
}

/** Frees a row for a new learner by forgetting the oldest lost one (none lost: the new one is not shown). */
function dropOneLost(learners: Map<string, LearnerRow>): void {
  for (const [id, row] of learners) {
    if (row.state === 'lost') {
      learners.delete(id);
      return;
    }
  }
}
