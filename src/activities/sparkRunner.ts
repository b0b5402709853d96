import type { StepHandle } from '../contracts/runner';
import type { SparkStep } from '../contracts/sparkStep';

/** What the activity gives a runner for one step. */
export interface StepContext {
  /** Names the step's log file, e.g. `<runId>-<job>`. */
  logName: string;
  /** Records liveness and the handle of the running step (Temporal heartbeat details). */
  heartbeat(handle: StepHandle): void;
  /** Aborted when the activity is cancelled: the runner must stop the step. */
  cancelled: AbortSignal;
  /** The handle a previous attempt heartbeated, to resume that step rather than start anew. */
  resume?: StepHandle;
}

/**
 * Runs EMR-shaped Spark steps somewhere. `run` resolves when the step succeeded, throws a
 * non-retryable `SparkJobFailed` ApplicationFailure (with the tail of the job's stderr) when it
 * failed, and stops the step when `cancelled` fires.
 */
export interface SparkStepRunner {
  run(step: SparkStep, ctx: StepContext): Promise<void>;
}
