/**
 * `claimRunId` against the real local S3 server: a run id is bound to one input; the same input
 * resumes, another is refused, a rerun takes a fresh attempt, and a retried claim finds its own.
 */
import { ApplicationFailure } from '@temporalio/common';
import { createS3Client } from '../src/activities/s3Client';
import { makeClaimRunId } from '../src/activities/runClaim';
import { boto3Json, stackSettings, uniquePrefix } from './helpers/stack';

const settings = stackSettings();
const claimRunId = makeClaimRunId(createS3Client(settings.s3));
const bucket = settings.s3.bucket;
const identity = { dataset: 'ml-100k', dataVersion: 'a'.repeat(64), split: { kind: 'official' }, grid: { rank: [8] }, seed: 42 };

function inputJson(prefix: string, runId: string): Record<string, unknown> {
  return boto3Json(settings, `print(s3.get_object(Bucket='${bucket}', Key='${prefix}/runs/${runId}/input.json')['Body'].read().decode())`);
}

describe('claimRunId', () => {
  const prefix = uniquePrefix('claim');
  const claim = (input: Record<string, unknown>, execution: string, rerun = false) =>
    claimRunId({ bucket, prefix, runId: 'run-1', rerun, input, execution });

  it('binds the run id to its input, resumes the same input and refuses another, naming what differs', async () => {
    expect(await claim(identity, 'exec-a')).toEqual({ runId: 'run-1', attempt: 1, resumed: false });
    expect(inputJson(prefix, 'run-1')).toMatchObject({ runId: 'run-1', attempt: 1, input: identity, execution: 'exec-a' });

    // Key order does not make another input.
    const reordered = Object.fromEntries(Object.entries(identity).reverse());
    expect(await claim(reordered, 'exec-b')).toEqual({ runId: 'run-1', attempt: 1, resumed: true });

    const err = await claim({ ...identity, dataVersion: 'b'.repeat(64), grid: { rank: [8, 12] } }, 'exec-c').then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(ApplicationFailure);
    const failure = err as ApplicationFailure;
    expect(failure.type).toBe('RunIdConflict');
    expect(failure.nonRetryable).toBe(true);
    expect(failure.message).toContain('run id run-1 already has outputs from a different input (differs in: dataVersion, grid;');
    expect(failure.message).toContain('Start the run under a new run id, or pass --rerun');
    expect(inputJson(prefix, 'run-1')).toMatchObject({ input: identity, execution: 'exec-a' });
  });

  it('gives a rerun a fresh attempt prefix, and a retried claim of one execution its own attempt', async () => {
    const other = { ...identity, seed: 7 };
    expect(await claim(other, 'exec-d', true)).toEqual({ runId: 'run-1.attempt-2', attempt: 2, resumed: false });
    expect(await claim(other, 'exec-d', true)).toEqual({ runId: 'run-1.attempt-2', attempt: 2, resumed: false });
    expect(await claim(identity, 'exec-e', true)).toEqual({ runId: 'run-1.attempt-3', attempt: 3, resumed: false });
    expect(inputJson(prefix, 'run-1.attempt-2')).toMatchObject({ attempt: 2, input: other });
    expect(inputJson(prefix, 'run-1')).toMatchObject({ input: identity, execution: 'exec-a' });
  });
});
