/**
 * Determinism guard: recorded histories of real runs must replay against today's workflow code, and
 * every activity must be scheduled with the options it was recorded with (task queue, timeouts,
 * retry policy; replay itself checks only activity ids, types and order). A change that alters the
 * commands a run issues fails here: put it behind `patched()`, or re-record the histories on the
 * local stack with `make record-histories` (test/histories/record.ts) and commit them.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Worker, type InjectedSinks } from '@temporalio/worker';
import type { ScheduledActivity, ScheduledOptionsSinks } from './histories/scheduledOptions';

const dir = join(__dirname, 'histories');
const files = readdirSync(dir).filter((f) => f.endsWith('.json')).sort();
const load = (f: string) => JSON.parse(readFileSync(join(dir, f), 'utf8')) as RecordedHistory;

interface RecordedEvent {
  eventType: string;
  activityTaskScheduledEventAttributes?: {
    activityId: string;
    activityType: { name: string };
    taskQueue: { name: string };
    startToCloseTimeout?: string;
    scheduleToCloseTimeout?: string;
    scheduleToStartTimeout?: string;
    heartbeatTimeout?: string;
    retryPolicy?: { initialInterval?: string; backoffCoefficient?: number; maximumInterval?: string; maximumAttempts?: number; nonRetryableErrorTypes?: string[] };
  };
  markerRecordedEventAttributes?: { markerName: string; details?: Record<string, { payloads?: Array<{ data?: string }> }> };
  workflowExecutionSignaledEventAttributes?: { signalName: string };
  workflowExecutionStartedEventAttributes?: { taskQueue: { name: string } };
}
interface RecordedHistory {
  events: RecordedEvent[];
}

/** A protobuf JSON duration ("1800s", "0.500s") in milliseconds. */
const durationMs = (d: string | undefined) => (d ? Math.round(parseFloat(d) * 1000) : 0);

/** The options of each activity as the history recorded them, in the order they were scheduled. */
function recordedActivities(history: RecordedHistory): ScheduledActivity[] {
  return history.events.flatMap(({ activityTaskScheduledEventAttributes: a }) => {
    if (!a) return [];
    return [
      {
        activityId: a.activityId,
        activityType: a.activityType.name,
        taskQueue: a.taskQueue.name,
        startToCloseMs: durationMs(a.startToCloseTimeout),
        scheduleToCloseMs: durationMs(a.scheduleToCloseTimeout),
        scheduleToStartMs: durationMs(a.scheduleToStartTimeout),
        heartbeatMs: durationMs(a.heartbeatTimeout),
        retry: {
          initialIntervalMs: durationMs(a.retryPolicy?.initialInterval),
          backoffCoefficient: a.retryPolicy?.backoffCoefficient ?? 0,
          maximumIntervalMs: durationMs(a.retryPolicy?.maximumInterval),
          maximumAttempts: a.retryPolicy?.maximumAttempts ?? 0,
          nonRetryableErrorTypes: a.retryPolicy?.nonRetryableErrorTypes ?? [],
        },
      },
    ];
  });
}

/** Names of the local activities a history's markers record. */
function localActivities(history: RecordedHistory): string[] {
  return history.events.flatMap(({ markerRecordedEventAttributes: m }) => {
    const data = m?.markerName === 'core_local_activity' ? m.details?.data?.payloads?.[0]?.data : undefined;
    return data ? [(JSON.parse(Buffer.from(data, 'base64').toString('utf8')) as { activity_type: string }).activity_type] : [];
  });
}

const startQueue = (h: RecordedHistory) => h.events[0]!.workflowExecutionStartedEventAttributes!.taskQueue.name;
const activityTypes = (h: RecordedHistory) => recordedActivities(h).map((a) => a.activityType);

test('the recorded histories cover every branch of the workflow', () => {
  const required = ['full-pipeline-local.json', 'register-false.json', 'cancelled-by-signal.json', 'failed-run.json', 'emr-transient.json'];
  expect(files).toEqual(expect.arrayContaining(required));
  const outcome = (f: string) => load(f).events.at(-1)!.eventType;
  expect(required.map((f) => [f, outcome(f)])).toEqual([
    ['full-pipeline-local.json', 'EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED'],
    ['register-false.json', 'EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED'],
    ['cancelled-by-signal.json', 'EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED'],
    ['failed-run.json', 'EVENT_TYPE_WORKFLOW_EXECUTION_FAILED'],
    ['emr-transient.json', 'EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED'],
  ]);
  expect(activityTypes(load('full-pipeline-local.json'))).toContain('registerModel');
  expect(activityTypes(load('register-false.json'))).not.toContain('registerModel');
  const cancelled = load('cancelled-by-signal.json');
  expect(cancelled.events.flatMap((e) => e.workflowExecutionSignaledEventAttributes?.signalName ?? [])).toEqual(['cancel']);
  expect(localActivities(cancelled)).toEqual(['requestCancellation']);
  expect(activityTypes(load('emr-transient.json'))).toEqual(expect.arrayContaining(['createEmrCluster', 'runSparkStep', 'terminateEmrCluster']));
});

test('every recorded history replays without nondeterminism, each activity scheduled with its recorded options', async () => {
  const scheduled = new Map<string, ScheduledActivity[]>(files.map((f) => [f, []]));
  const sinks: InjectedSinks<ScheduledOptionsSinks> = {
    scheduled: {
      activity: {
        // The replay worker polls a queue of its own: the workflow's task queue in the recording.
        fn: (info, a) => {
          const taskQueue = a.taskQueue.startsWith(info.taskQueue) ? startQueue(load(info.workflowId)) + a.taskQueue.slice(info.taskQueue.length) : a.taskQueue;
          scheduled.get(info.workflowId)?.push({ ...a, taskQueue });
        },
        callDuringReplay: true,
      },
    },
  };
  const histories = files.map((f) => ({ workflowId: f, history: load(f) }));
  const failures: string[] = [];
  const replay = Worker.runReplayHistories(
    { workflowsPath: require.resolve('../src/workflows'), interceptors: { workflowModules: [require.resolve('./histories/scheduledOptions')] }, sinks },
    histories,
  );
  for await (const result of replay) {
    if (result.error) failures.push(`${result.workflowId}: ${result.error.message}`);
  }
  for (const f of files) {
    const now = scheduled.get(f)!;
    recordedActivities(load(f)).forEach((recorded, i) => {
      const current = now[i];
      if (!current) return; // replay stopped before it (reported above as nondeterminism)
      for (const key of Object.keys(recorded) as Array<keyof ScheduledActivity>) {
        if (JSON.stringify(recorded[key]) !== JSON.stringify(current[key])) {
          failures.push(`${f}: activity ${recorded.activityId} (${recorded.activityType}) is scheduled with ${key} ${JSON.stringify(current[key])}, recorded ${JSON.stringify(recorded[key])}`);
        }
      }
    });
  }
  expect(failures).toEqual([]);
});
