/**
 * Progress bars for a person watching a terminal: the trainer's rounds and its wait for
 * learners, a learner's local epochs. Off a terminal these stay silent, because the trainer's
 * round lines (stdout) and the nodes' logs already say the same thing once per round, and a
 * redrawn bar in a log file is noise.
 */
import { createProgress, type Progress, type TerminalStream } from '@oiafed/tracker';
import type { PeerInfo, Transport } from '@oiafed/transport';
import type { RoundRecord, TrainerCallback } from './callbacks.js';

/**
 * Where progress goes: stderr by default; only a stream with `isTTY: true` gets bars. Log lines
 * and the CLI's round lines step around a bar on the same terminal (tracker's live line).
 */
export type ProgressStream = TerminalStream;

/** Options of the progress helpers. */
export interface ProgressHookOptions {
  /** Default `process.stderr`. */
  stream?: ProgressStream;
}

function terminal(options: ProgressHookOptions): { stream: ProgressStream; tty: boolean } {
  const stream = options.stream ?? process.stderr;
  return { stream, tty: stream.isTTY === true };
}

function roundNote(record: RoundRecord): string {
  const parts: string[] = [];
  if (record.accuracy !== undefined) parts.push(`acc ${(record.accuracy * 100).toFixed(1)}%`);
  if (record.loss !== undefined) parts.push(`loss ${record.loss.toFixed(3)}`);
  return parts.join(' ');
}

/**
 * A trainer callback that draws a bar of rounds (done / max_rounds, rate, ETA, last accuracy)
 * on a terminal; does nothing elsewhere.
 */
export function trainerProgress(options: ProgressHookOptions = {}): TrainerCallback {
  const { stream, tty } = terminal(options);
  if (!tty) return {};
  let bar: Progress | undefined;
  return {
    onTrainStart({ maxRounds, startRound }) {
      bar = createProgress({ stream });
      bar.start(maxRounds - startRound + 1, 'rounds');
    },
    onRoundEnd(record) {
      bar?.tick(1, roundNote(record));
    },
    onTrainEnd() {
      bar?.done();
      bar = undefined;
    },
  };
}

type PeerSource = Pick<Transport, 'on' | 'peers'>;

/**
 * Draws "waiting for learners  [###---] 2/4" on a terminal until `needed` learners have
 * registered (or the returned stop function is called). Start it before `Trainer.run()`; it
 * follows the transport's `peer-joined` / `peer-left` events. Off a terminal it does nothing.
 */
export function watchRegistrations(transport: PeerSource, needed: number, options: ProgressHookOptions = {}): () => void {
  const { stream, tty } = terminal(options);
  if (!tty || needed <= 0) return () => undefined;
  const learners = () => transport.peers().filter((peer: PeerInfo) => peer.role === 'learner').length;
  const bar = createProgress({ stream });
  let shown = 0;
  let finished = false;
  const unsubscribes: Array<() => void> = [];
  const stop = (note?: string) => {
    if (finished) return;
    finished = true;
    for (const unsubscribe of unsubscribes) unsubscribe();
    bar.done(note);
  };
  const update = () => {
    const count = Math.min(learners(), needed);
    // The bar counts up only; a learner that leaves shows in the note, not as a step back.
    if (count > shown) {
      bar.tick(count - shown, `${count}/${needed} registered`);
      shown = count;
    } else {
      bar.tick(0, `${count}/${needed} registered`);
    }
    if (count >= needed) stop('all registered');
  };
  bar.start(needed, 'waiting for learners');
  unsubscribes.push(transport.on('peer-joined', update), transport.on('peer-left', update));
  update();
  return () => stop();
}

/** One local-epoch report, as the learner passes it on from `FedModel.train`'s `onEpochEnd`. */
export interface EpochInfo {
  round: number;
  /** 1-based epoch just finished. */
  epoch: number;
  epochs: number;
  loss: number;
  accuracy: number;
}

/**
 * A learner's local-epoch bar, one per round ("round 3 local epochs [####] 2/2 loss 0.41"), on a
 * terminal; off a terminal the returned function does nothing (the learner logs a line per round).
 */
export function learnerEpochProgress(options: ProgressHookOptions = {}): (info: EpochInfo) => void {
  const { stream, tty } = terminal(options);
  if (!tty) return () => undefined;
  const bar = createProgress({ stream });
  let round = -1;
  return (info) => {
    if (info.round !== round || info.epoch === 1) {
      round = info.round;
      bar.start(info.epochs, `round ${info.round} local epochs`);
    }
    bar.tick(1, `loss ${info.loss.toFixed(3)} acc ${(info.accuracy * 100).toFixed(1)}%`);
    if (info.epoch >= info.epochs) bar.done();
  };
}
