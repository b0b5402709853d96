/**
 * Activity `registerModel`: the champion/challenger registry in S3.
 *
 * Champions are kept per slot — dataset, protocol and data content — because metrics are only
 * comparable within one: `<prefix>/registry/<dataset>/<slot>/champion.json` points at the champion
 * run. A challenger is promoted only when its ALS RMSE is strictly lower than the champion's; every
 * decision is written to `decisions/<runId>.json` with both sides' metrics. The champion pointer is
 * replaced with a conditional write, so two runs finishing together cannot both win.
 */
import { createHash } from 'node:crypto';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { ApplicationFailure } from '@temporalio/common';
import { ModelEntry, RegisterModelInput, RegistryDecision } from '../contracts/registry';
import { latestChampionKey } from './recommendationsStore';
import { getObjectText } from './s3Client';

async function getJson(s3: S3Client, bucket: string, key: string): Promise<{ body: unknown; etag?: string } | undefined> {
  const got = await getObjectText(s3, bucket, key);
  return got && { body: JSON.parse(got.text), etag: got.etag };
}

function putJson(s3: S3Client, bucket: string, key: string, doc: unknown, condition: { IfMatch?: string; IfNoneMatch?: string } = {}) {
  return s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: JSON.stringify(doc, null, 2), ContentType: 'application/json', ...condition }));
}

/** The folder of one comparison slot. */
export function registrySlot(prefix: string, entry: Pick<ModelEntry, 'dataset' | 'protocolKey' | 'dataKey'>): string {
  const slot = createHash('sha256').update(`${entry.protocolKey}\n${entry.dataKey}`).digest('hex').slice(0, 16);
  return `${prefix}/registry/${entry.dataset}/${slot}/`;
}

export function makeRegisterModel(s3: S3Client, now: () => Date = () => new Date()) {
  return async function registerModel(rawInput: RegisterModelInput): Promise<RegistryDecision> {
    const { bucket, prefix, challenger: c } = RegisterModelInput.parse(rawInput);
    const base = registrySlot(prefix, c);
    const championKey = `${base}champion.json`;
    const decisionKey = `${base}decisions/${c.runId}.json`;
    const uri = (key: string) => `s3://${bucket}/${key}`;

    const recorded = await getJson(s3, bucket, decisionKey);
    if (recorded) return RegistryDecision.parse(recorded.body); // a retry after the decision was made

    const current = await getJson(s3, bucket, championKey);
    const champion = current ? ModelEntry.parse(current.body) : null;
    const challenger: ModelEntry = { ...c, registeredAt: now().toISOString() };
    let decision: RegistryDecision['decision'];
    let reason: string;
    if (champion?.runId === c.runId) {
      // This run was promoted before a crash, and the decision record was not written yet.
      [decision, reason] = ['promoted', 'this run is already the champion'];
    } else if (c.metrics.rmse === null) {
      [decision, reason] = ['kept-champion', 'the challenger has no RMSE'];
    } else if (!champion) {
      [decision, reason] = ['promoted', 'no champion yet for this dataset, protocol and data'];
    } else if (champion.metrics.rmse === null || c.metrics.rmse < champion.metrics.rmse) {
      [decision, reason] = ['promoted', `RMSE ${c.metrics.rmse} < champion ${champion.runId}'s ${champion.metrics.rmse}`];
    } else {
      [decision, reason] = ['kept-champion', `RMSE ${c.metrics.rmse} is not below champion ${champion.runId}'s ${champion.metrics.rmse}`];
    }

    if (decision === 'promoted' && champion?.runId !== c.runId) {
      try {
        await putJson(s3, bucket, championKey, challenger, current?.etag ? { IfMatch: current.etag } : { IfNoneMatch: '*' });
      } catch (err) {
        const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
        if (status === 412 || status === 409) {
          throw ApplicationFailure.retryable('the champion changed while deciding; deciding again', 'RegistryRace');
        }
        throw err;
      }
    }
    const result: RegistryDecision = {
      decision,
      reason,
      challenger,
      champion,
      decisionUri: uri(decisionKey),
      championUri: uri(championKey),
    };
    if (decision === 'promoted') await putJson(s3, bucket, latestChampionKey(prefix, c.dataset), challenger);
    await putJson(s3, bucket, decisionKey, result);
    return result;
  };
}
