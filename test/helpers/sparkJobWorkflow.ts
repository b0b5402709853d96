/** A one-job workflow for the warm engine's tests: runs one Spark job activity on the engine's queue. */
import { ActivityCancellationType, proxyActivities } from '@temporalio/workflow';
import type { JobRequest, JobRun } from '../../src/contracts/jobInputs';
import type { JobName } from '../../src/contracts/jobResults';

export async function sparkJob(job: JobName, request: JobRequest, sparkTaskQueue: string): Promise<JobRun<unknown>> {
  const jobs = proxyActivities<Record<JobName, (r: JobRequest) => Promise<JobRun<unknown>>>>({
    taskQueue: sparkTaskQueue,
    startToCloseTimeout: '30 minutes',
    heartbeatTimeout: '15s',
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    retry: { maximumAttempts: 3 },
  });
  return jobs[job](request);
}

/** Several jobs one after the other (a small pipeline), each its own activity with a readable id. */
export async function sparkJobs(steps: Array<[JobName, JobRequest]>, sparkTaskQueue: string): Promise<Array<JobRun<unknown>>> {
  const out: Array<JobRun<unknown>> = [];
  for (const [job, request] of steps) {
    const jobs = proxyActivities<Record<JobName, (r: JobRequest) => Promise<JobRun<unknown>>>>({
      taskQueue: sparkTaskQueue,
      activityId: request.resultName.replace(/\//g, '-'),
      startToCloseTimeout: '30 minutes',
      heartbeatTimeout: '15s',
      retry: { maximumAttempts: 3 },
    });
    out.push(await jobs[job](request));
  }
  return out;
}
