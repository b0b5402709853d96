/**
 * Activity `claimRunId`: binds a run id to one input before any stage writes under it, so a run id
 * is never silently reused for other data or settings. The claim is `runs/<runId>/input.json`:
 * absent, it is written (with `If-None-Match: *`, so two starters cannot both win); equal, the run
 * resumes and finished stages are reused; different, the start is refused. A rerun takes the first
 * free attempt, `<runId>.attempt-<n>`, a fresh prefix with nothing to reuse.
 */
import { createHash } from 'node:crypto';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { ApplicationFailure } from '@temporalio/common';
import { runLayout } from '../contracts/pipeline';
import { ClaimRunIdInput, type ClaimRunIdResult, RunInputRecord } from '../contracts/runClaim';
import { getObjectText } from './s3Client';

/** JSON with object keys sorted at every level: equal inputs, equal text. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
    return `{${entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** The run id of attempt `n` of a run: attempt 1 is the run id itself. */
export function attemptRunId(runId: string, attempt: number): string {
  return attempt === 1 ? runId : `${runId}.attempt-${attempt}`;
}

/** Keys whose values differ between two inputs, for the refusal message. */
function differences(a: Record<string, unknown>, b: Record<string, unknown>): string[] {
  return [...new Set([...Object.keys(a), ...Object.keys(b)])].filter((k) => canonicalJson(a[k]) !== canonicalJson(b[k])).sort();
}

/** Builds the activity over an S3 client. */
export function makeClaimRunId(s3: S3Client) {
  return async function claimRunId(rawInput: ClaimRunIdInput): Promise<ClaimRunIdResult> {
    const claim = ClaimRunIdInput.parse(rawInput);
    const fingerprint = createHash('sha256').update(canonicalJson(claim.input)).digest('hex');
    for (let attempt = 1; ; attempt++) {
      const runId = attemptRunId(claim.runId, attempt);
      const key = runLayout(claim.bucket, claim.prefix, runId).inputUri.slice(`s3://${claim.bucket}/`.length);
      const found = await getObjectText(s3, claim.bucket, key);
      if (!found) {
        const record: RunInputRecord = { runId, attempt, fingerprint, input: claim.input, execution: claim.execution };
        const written = await s3
          .send(new PutObjectCommand({ Bucket: claim.bucket, Key: key, Body: JSON.stringify(record, null, 2), ContentType: 'application/json', IfNoneMatch: '*' }))
          .then(
            () => true,
            (err: { $metadata?: { httpStatusCode?: number } }) => {
              if (err.$metadata?.httpStatusCode === 412 || err.$metadata?.httpStatusCode === 409) return false; // lost a race: look again
              throw err;
            },
          );
        if (written) return { runId, attempt, resumed: false };
        attempt--;
        continue;
      }
      const record = RunInputRecord.parse(JSON.parse(found.text));
      if (record.execution === claim.execution) return { runId, attempt, resumed: false }; // our own claim, retried
      if (claim.rerun) continue;
      if (record.fingerprint === fingerprint) return { runId, attempt, resumed: true };
      throw ApplicationFailure.nonRetryable(
        `run id ${runId} already has outputs from a different input (differs in: ${differences(record.input, claim.input).join(', ')}; ` +
          `see s3://${claim.bucket}/${key}). Start the run under a new run id, or pass --rerun for a fresh attempt under this one.`,
        'RunIdConflict',
      );
    }
  };
}
