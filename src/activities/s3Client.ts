import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import type { Settings } from '../settings';

/**
 * An S3 client for real AWS (default credential chain) or, with an endpoint, an S3-compatible
 * server. Against such a server checksums are sent only when required: the SDK's default streams
 * uploads with aws-chunked framing, which simple servers may store inside the object.
 */
export function createS3Client(s3: Settings['s3']): S3Client {
  if (!s3.endpoint) return new S3Client({ region: s3.region });
  return new S3Client({
    region: s3.region,
    endpoint: s3.endpoint,
    forcePathStyle: true,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

/** True for the SDK's "no such key/bucket" errors on HEAD/GET. */
export function isNotFound(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e?.name === 'NotFound' || e?.name === 'NoSuchKey' || e?.$metadata?.httpStatusCode === 404;
}

/** An object's text and ETag; undefined when the key does not exist. */
export async function getObjectText(s3: S3Client, bucket: string, key: string): Promise<{ text: string; etag?: string } | undefined> {
  try {
    const res = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    return { text: await res.Body!.transformToString('utf8'), etag: res.ETag };
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}
