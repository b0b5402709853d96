import { z } from 'zod';

/** An `s3://bucket/key` URI. Payloads carry URIs, never data. */
export const S3Uri = z.string().regex(/^s3:\/\/[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]\/.*$/, 'expected s3://bucket/key');

/** S3 bucket names as AWS accepts them (3–63 lowercase letters, digits, dots, hyphens). */
export const BucketName = z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'not a valid S3 bucket name');

/** A key prefix without leading or trailing slash, e.g. `lensflow` or `team/lensflow`. */
export const KeyPrefix = z
  .string()
  .regex(/^[A-Za-z0-9!_.*'()-]+(\/[A-Za-z0-9!_.*'()-]+)*$/, 'use letters, digits and single slashes, no leading or trailing slash');

/** Splits `s3://bucket/key` into its parts. */
export function parseS3Uri(uri: string): { bucket: string; key: string } {
  const m = /^s3:\/\/([^/]+)\/(.*)$/.exec(uri);
  if (!m) throw new Error(`not an s3:// URI: ${uri}`);
  return { bucket: m[1]!, key: m[2]! };
}
