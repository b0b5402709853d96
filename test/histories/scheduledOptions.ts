/**
 * A workflow interceptor for the replay test: reports, through a sink called during replay, the
 * options of every activity the current workflow code schedules, in the units a history records
 * them (milliseconds, the task queue's name), so the test can compare them with the recorded
 * ActivityTaskScheduled events. Replay itself only checks activity ids and types.
 */
import type { Duration } from '@temporalio/common';
import { msOptionalToNumber } from '@temporalio/common/lib/time';
import { proxySinks, workflowInfo, type Sinks, type WorkflowInterceptorsFactory } from '@temporalio/workflow';

/** What a history's ActivityTaskScheduled event says about an activity's options. */
export interface ScheduledActivity {
  activityId: string;
  activityType: string;
  taskQueue: string;
  startToCloseMs: number;
  scheduleToCloseMs: number;
  scheduleToStartMs: number;
  heartbeatMs: number;
  retry: { initialIntervalMs: number; backoffCoefficient: number; maximumIntervalMs: number; maximumAttempts: number; nonRetryableErrorTypes: string[] };
}

export interface ScheduledOptionsSinks extends Sinks {
  scheduled: { activity(activity: ScheduledActivity): void };
}

const { scheduled } = proxySinks<ScheduledOptionsSinks>();
const ms = (d: Duration | undefined) => msOptionalToNumber(d) ?? 0;

export const interceptors: WorkflowInterceptorsFactory = () => ({
  outbound: [
    {
      scheduleActivity(input, next) {
        const { options: o, seq } = input;
        // Unset fields as the server records them: no timeout is 0, and the retry defaults.
        const initialIntervalMs = ms(o.retry?.initialInterval) || 1_000;
        scheduled.activity({
          activityId: o.activityId ?? String(seq),
          activityType: input.activityType,
          taskQueue: o.taskQueue ?? workflowInfo().taskQueue,
          startToCloseMs: ms(o.startToCloseTimeout),
          scheduleToCloseMs: ms(o.scheduleToCloseTimeout),
          scheduleToStartMs: ms(o.scheduleToStartTimeout),
          heartbeatMs: ms(o.heartbeatTimeout),
          retry: {
            initialIntervalMs,
            backoffCoefficient: o.retry?.backoffCoefficient ?? 2,
            maximumIntervalMs: ms(o.retry?.maximumInterval) || 100 * initialIntervalMs,
            maximumAttempts: o.retry?.maximumAttempts ?? 0,
            nonRetryableErrorTypes: o.retry?.nonRetryableErrorTypes ?? [],
          },
        });
        return next(input);
      },
    },
  ],
});
