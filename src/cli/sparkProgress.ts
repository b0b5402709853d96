/**
 * Spark's own progress of a run's running jobs, for `lensflow progress` and the `lensflow run`
 * line. The warm engine (`lensflow_spark.worker`) heartbeats every 2 s with the jobs, stages and
 * tasks its activity's Spark jobs have done; the server keeps the latest beat of each pending
 * activity, which `describe` returns. Nothing is asked of the workflow: a query only sees what
 * the workflow knows, and it never sees heartbeats.
 */
import { defaultPayloadConverter } from '@temporalio/common';
import type { WorkflowHandle } from '@temporalio/client';
import { z } from 'zod';

const Count = z.object({ done: z.number().int(), total: z.number().int() });
/** One heartbeat of the warm engine (`spark_progress` in lensflow_spark/worker.py). */
const EngineBeat = z.object({ job: z.string(), sparkJobs: Count, stages: Count, tasks: Count });

export interface RunningJob extends z.infer<typeof EngineBeat> {
  activityId: string;
}

/**
 * The run's pending Spark activities that have heartbeated Spark progress. Activities on a step
 * runner (EMR) beat the step's handle instead, and are left out: EMR does not report tasks.
 */
export async function runningJobs(handle: WorkflowHandle): Promise<RunningJob[]> {
  const pending = (await handle.describe()).raw.pendingActivities ?? [];
  const out: RunningJob[] = [];
  for (const a of pending) {
    const payload = a.heartbeatDetails?.payloads?.[0];
    if (!payload) continue;
    let beat: unknown;
    try {
      beat = defaultPayloadConverter.fromPayload(payload);
    } catch {
      continue; // not JSON: not the engine's beat
    }
    const parsed = EngineBeat.safeParse(beat);
    if (parsed.success) out.push({ activityId: a.activityId ?? '?', ...parsed.data });
  }
  return out.sort((x, y) => x.activityId.localeCompare(y.activityId));
}

/** ` · spark: grid-0-... 3/5 stages 40/96 tasks; ...`, or '' when no job reports progress. */
export function sparkLine(jobs: RunningJob[]): string {
  if (jobs.length === 0) return '';
  return ` · spark: ${jobs.map((j) => `${j.activityId} ${j.stages.done}/${j.stages.total} stages ${j.tasks.done}/${j.tasks.total} tasks`).join('; ')}`;
}
