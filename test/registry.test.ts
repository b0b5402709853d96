/** Champion/challenger in the real local S3 server: better challengers win, worse ones do not. */
import { createS3Client } from '../src/activities/s3Client';
import { readChampion } from '../src/activities/recommendationsStore';
import { makeRegisterModel } from '../src/activities/registry';
import type { ModelEntry } from '../src/contracts/registry';
import { boto3Json, stackSettings, uniquePrefix } from './helpers/stack';

const settings = stackSettings();
const s3 = createS3Client(settings.s3);
const register = makeRegisterModel(s3, () => new Date('2026-11-24T02:00:00Z'));
const bucket = settings.s3.bucket;

const entry = (runId: string, rmse: number, over: Partial<ModelEntry> = {}): Omit<ModelEntry, 'registeredAt'> => ({
  runId,
  dataset: 'ml-latest-small',
  protocolKey: '{"split":{"kind":"random"}}',
  dataKey: 'd'.repeat(64),
  point: { rank: 10, regParam: 0.1, maxIter: 10, alpha: 1, implicitPrefs: false },
  metrics: { rmse, mae: 0.7, precision_at_k: 0.1, recall_at_k: 0.1, ndcg_at_k: 0.1, map_at_k: 0.1, catalogue_coverage: 0.1 },
  modelUri: `s3://${bucket}/m/${runId}`,
  ...over,
});

test('the first run becomes champion; a worse challenger is kept out, a better one promoted; each decision is recorded', async () => {
  const prefix = uniquePrefix('registry');
  const first = await register({ bucket, prefix, challenger: entry('run-a', 0.9) });
  expect(first).toMatchObject({ decision: 'promoted', champion: null });

  const worse = await register({ bucket, prefix, challenger: entry('run-b', 0.95) });
  expect(worse.decision).toBe('kept-champion');
  expect(worse.reason).toBe("RMSE 0.95 is not below champion run-a's 0.9");
  expect(worse.champion?.runId).toBe('run-a');
  expect((await readChampion(s3, bucket, prefix, 'ml-latest-small'))?.runId).toBe('run-a');

  const better = await register({ bucket, prefix, challenger: entry('run-c', 0.85) });
  expect(better).toMatchObject({ decision: 'promoted', reason: "RMSE 0.85 < champion run-a's 0.9" });
  expect((await readChampion(s3, bucket, prefix, 'ml-latest-small'))?.runId).toBe('run-c');

  // Decisions, read back with an independent client, carry both sides' metrics.
  const decisions = boto3Json<Record<string, { decision: string; challenger: { metrics: { rmse: number } }; champion: { metrics: { rmse: number } } | null }>>(
    settings,
    `
out = {}
for o in s3.list_objects_v2(Bucket='${bucket}', Prefix='${prefix}/registry/')['Contents']:
    if '/decisions/' in o['Key']:
        out[o['Key'].rsplit('/', 1)[1]] = json.loads(s3.get_object(Bucket='${bucket}', Key=o['Key'])['Body'].read())
print(json.dumps(out))`,
  );
  expect(Object.keys(decisions).sort()).toEqual(['run-a.json', 'run-b.json', 'run-c.json']);
  expect(decisions['run-b.json']).toMatchObject({ decision: 'kept-champion', challenger: { metrics: { rmse: 0.95 } }, champion: { metrics: { rmse: 0.9 } } });

  // A retried registration returns the recorded decision instead of deciding again.
  expect(await register({ bucket, prefix, challenger: entry('run-b', 0.95) })).toEqual(worse);
});

test('metrics on another protocol or other data are never compared: that is another slot', async () => {
  const prefix = uniquePrefix('registry-slots');
  await register({ bucket, prefix, challenger: entry('run-a', 0.8) });
  const otherData = await register({ bucket, prefix, challenger: entry('run-b', 0.99, { dataKey: 'e'.repeat(64) }) });
  expect(otherData).toMatchObject({ decision: 'promoted', champion: null });
  const otherProtocol = await register({ bucket, prefix, challenger: entry('run-c', 0.99, { protocolKey: '{"split":{"kind":"official"}}' }) });
  expect(otherProtocol).toMatchObject({ decision: 'promoted', champion: null });
});
