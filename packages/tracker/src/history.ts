/**
 * Per-round run history: one JSON line per round in `<runDir>/history.jsonl`, appended
 * synchronously so a killed trainer leaves every finished round on disk, plus `summary.json`.
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * One finished round as the trainer records it: the one round-record type of the project (core's
 * trainer, its callbacks and this history all use it). Extra keys (per-learner data, custom
 * metrics) are kept.
 */
export interface RoundRecord {
  round: number;
  /** ISO 8601 time the round finished. */
  timestamp: string;
  /** Learners asked to train this round. */
  selected: number;
  /** Learners whose update was aggregated. */
  participants: number;
  /** Selected learners whose update did not come or was refused, and why. */
  failed: Array<{ learner: string; reason: string }>;
  /** Global-model accuracy (0..1), when evaluated this round. */
  accuracy?: number;
  /** Global-model loss, when evaluated this round. */
  loss?: number;
  /** Who evaluated the global model: the trainer on its test split, or the learners on theirs. */
  eval_source?: 'trainer' | 'learners';
  /** Mean local training loss reported by the participants (sample-weighted). */
  train_loss?: number;
  /** Mean local training accuracy reported by the participants (sample-weighted). */
  train_accuracy?: number;
  duration_s: number;
  /** Local training time of the slowest participant. */
  slowest_train_s: number;
  bytes_sent: number;
  bytes_received: number;
  /** Whether the round's updates replaced the global model. */
  aggregated: boolean;
  /** Why the round's updates did not replace the global model (rule error, non-finite aggregate). */
  aggregation_error?: string;
  /**
   * Personalized evaluation (learners with their own test split, `partition.test_fraction`): the
   * learners' accuracy of their personalized models, weighted by test samples (0..1).
   */
  personalized_accuracy?: number;
  /** The learners' personalized loss, weighted the same way. */
  personalized_loss?: number;
  /** Weighted standard deviation of the learners' personalized accuracies. */
  personalized_accuracy_std?: number;
  /** Lowest personalized accuracy of one learner. */
  personalized_accuracy_min?: number;
  /** Highest personalized accuracy of one learner. */
  personalized_accuracy_max?: number;
  /** Learners whose personalized evaluation counted. */
  personalized_learners?: number;
  [k: string]: unknown;
}

/**
 * A round as a history file holds it: the keys checked when it is read back (`round`,
 * `timestamp`, `participants`, `duration_s`) and whatever else of {@link RoundRecord} the writer put there.
 */
export type StoredRoundRecord = Pick<RoundRecord, 'round' | 'timestamp' | 'participants' | 'duration_s'> & Partial<RoundRecord>;

/** File names inside a run directory. */
export const HISTORY_FILE = 'history.jsonl';
export const SUMMARY_FILE = 'summary.json';

/** Appends rounds to `<runDir>/history.jsonl`. */
export class RunHistory {
  /** Path of the JSONL file. */
  readonly file: string;
  private readonly runDir: string;

  constructor(runDir: string) {
    this.runDir = runDir;
    this.file = join(runDir, HISTORY_FILE);
  }

  /** Appends one line, creating the directory on first use. */
  append(record: StoredRoundRecord): void {
    validateRecord(record, `RunHistory.append (${this.file})`);
    mkdirSync(this.runDir, { recursive: true });
    appendFileSync(this.file, `${JSON.stringify(record, jsonSafe)}\n`);
  }

  /** Every round recorded so far; empty before the first append. */
  read(): StoredRoundRecord[] {
    return existsSync(this.file) ? readRunHistory(this.runDir) : [];
  }

  /** Writes `<runDir>/summary.json` (replaced atomically, so readers never see half a file). */
  writeSummary(summary: object): void {
    mkdirSync(this.runDir, { recursive: true });
    const target = join(this.runDir, SUMMARY_FILE);
    const tmp = `${target}.${process.pid}.tmp`;
    writeFileSync(tmp, `${JSON.stringify(summary, jsonSafe, 2)}\n`);
    renameSync(tmp, target);
  }
}

/**
 * Reads `<runDir>/history.jsonl`; blank lines are skipped.
 *
 * @throws Error when the file is missing, or naming `file:line` and the problem for a line that
 *   is not JSON or lacks a numeric `round`.
 */
export function readRunHistory(runDir: string): StoredRoundRecord[] {
  const file = join(runDir, HISTORY_FILE);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new Error(`cannot read run history ${file}: ${code === 'ENOENT' ? 'no such file (has any round finished?)' : String(err)}`);
  }
  const records: StoredRoundRecord[] = [];
  text.split('\n').forEach((line, index) => {
    if (line.trim() === '') return;
    const where = `${file}:${index + 1}`;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (err) {
      throw new Error(`${where}: corrupt run history line, not valid JSON (${(err as Error).message}): ${line.slice(0, 80)}`);
    }
    records.push(validateRecord(value, where));
  });
  return records;
}

/** Summary written next to the history, if any. */
export function readRunSummary(runDir: string): Record<string, unknown> | undefined {
  const file = join(runDir, SUMMARY_FILE);
  if (!existsSync(file)) return undefined;
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch (err) {
    throw new Error(`${file}: not valid JSON (${(err as Error).message})`);
  }
}

function validateRecord(value: unknown, where: string): StoredRoundRecord {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new Error(`${where}: a round record must be a JSON object, got ${Array.isArray(value) ? 'an array' : typeof value}`);
  }
  const record = value as Record<string, unknown>;
  for (const key of ['round', 'participants', 'duration_s'] as const) {
    if (typeof record[key] !== 'number' || !Number.isFinite(record[key])) {
      throw new Error(`${where}: "${key}" must be a finite number, got ${JSON.stringify(record[key])}`);
    }
  }
  return record as StoredRoundRecord;
}

/** NaN/Infinity (a diverged loss) become null rather than invalid JSON. */
function jsonSafe(_key: string, value: unknown): unknown {
  if (typeof value === 'number' && !Number.isFinite(value)) return null;
  if (typeof value === 'bigint') return value.toString();
  return value;
}
