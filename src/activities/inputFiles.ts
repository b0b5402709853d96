/**
 * File-level checks of a release's raw files before anything is staged: a file that is empty, holds
 * only its header, names other columns, uses another delimiter or is not valid in its encoding fails
 * here, non-retryably, instead of being read as zero rows or as one quarantined "row" later.
 * The formats come from `contracts/releaseFormats` (the Spark readers check the same rules).
 */
import { createHash } from 'node:crypto';
import { isUtf8 } from 'node:buffer';
import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { ApplicationFailure } from '@temporalio/common';
import type { DatasetName } from '../contracts/datasets';
import { CANDIDATE_DELIMITERS, type FileDefect, type FileFormat, RELEASE_FORMATS } from '../contracts/releaseFormats';

/** Bytes kept from a file's start for the header and first-record checks. */
const HEAD_BYTES = 64 * 1024;
/** Records looked at for the format: all of them must be malformed for the file to be. */
const SAMPLE_LINES = 5;

/** A non-retryable failure naming the file, the problem and the fix; its type is the defect. */
export function fileDefect(defect: FileDefect, file: string, problem: string, fix: string): ApplicationFailure {
  return ApplicationFailure.nonRetryable(`${file}: ${problem}. ${fix}`, defect);
}

const shipped = (dataset: DatasetName, name: string) =>
  `Fix: replace it with ${name} as GroupLens ships it in ${dataset}, or choose the dataset whose format it has.`;
const show = (d: string) => JSON.stringify(d);

/** The first `n` non-blank lines of the file's head, without BOM and line ends. */
function firstLines(head: string, n: number): string[] {
  return head
    .replace(/^\uFEFF/, '')
    .split('\n')
    .map((l) => l.replace(/\r$/, ''))
    .filter((l) => l.trim() !== '')
    .slice(0, n);
}

/** The delimiter (other than the expected one) that splits `line` into `want` fields, if any. */
function otherDelimiter(line: string, fmt: FileFormat, fits: (fields: string[]) => boolean): string | undefined {
  return CANDIDATE_DELIMITERS.find((d) => d !== fmt.delimiter && fits(line.split(d)));
}

/** Checks the first records of a file against its format; throws the defect found. */
export function checkHead(dataset: DatasetName, name: string, file: string, head: string, complete: boolean): void {
  const fmt = RELEASE_FORMATS[dataset][name];
  if (!fmt) return;
  const lines = firstLines(head, SAMPLE_LINES);
  const fix = shipped(dataset, name);
  if (lines.length === 0) {
    if (complete) throw fileDefect('EmptyFile', file, 'the file is empty (no line but blank ones)', fix);
    return;
  }
  const first = lines[0]!;
  const n = fmt.columns.length;
  if (fmt.hasHeader) {
    const expected = fmt.columns.join(fmt.delimiter);
    if (first !== expected) {
      const d = otherDelimiter(first, fmt, (f) => f.join(',') === fmt.columns.join(','));
      if (d) throw fileDefect('WrongDelimiter', file, `the header is separated by ${show(d)}, not by ${show(fmt.delimiter)} as ${dataset} is`, fix);
      throw fileDefect('WrongColumns', file, `expected the header ${show(expected)}, found ${show(first)}`, fix);
    }
    if (lines.length < 2 && complete) throw fileDefect('NoDataRows', file, 'the file holds its header and no data row', fix);
    return;
  }
  // A format defect shows on every line; one bad line among good ones is a row for cleaning to quarantine.
  const records = lines.slice(0, SAMPLE_LINES);
  if (records.some((l) => l.split(fmt.delimiter).length === n)) return;
  const fields = first.split(fmt.delimiter).length;
  const problem = `none of the first ${records.length} line(s) splits into ${dataset}'s ${n} fields (${fmt.columns.join(', ')}) on ${show(fmt.delimiter)}; line 1 has ${fields}`;
  const d = otherDelimiter(first, fmt, (f) => f.length === n);
  if (d) throw fileDefect('WrongDelimiter', file, `${problem}, and ${show(d)} would split it into ${n}`, fix);
  throw fileDefect('WrongFormat', file, problem, fix);
}

/** 1-based number of the first line that is not valid UTF-8 (lines are split on `\n`, ASCII in UTF-8). */
function firstInvalidUtf8Line(bytes: Buffer): number {
  let line = 1;
  for (let start = 0; start < bytes.length; line++) {
    const nl = bytes.indexOf(0x0a, start);
    const end = nl < 0 ? bytes.length : nl;
    if (!isUtf8(bytes.subarray(start, end))) return line;
    start = end + 1;
  }
  return line;
}

/**
 * Streams a release file once: its SHA-256 and size, and every file-level check of its format
 * (unknown files are only hashed). Throws a non-retryable `FileDefect` failure naming `label`.
 */
export async function inspectFile(dataset: DatasetName, name: string, path: string, label: string): Promise<{ sha256: string; bytes: number }> {
  const fmt = RELEASE_FORMATS[dataset][name];
  const hash = createHash('sha256');
  const decoder = fmt?.encoding === 'utf-8' ? new TextDecoder('utf-8', { fatal: true }) : undefined;
  const head: Buffer[] = [];
  let headBytes = 0;
  let bytes = 0;
  let invalid = false;
  for await (const chunk of createReadStream(path) as AsyncIterable<Buffer>) {
    hash.update(chunk);
    bytes += chunk.length;
    if (headBytes < HEAD_BYTES) {
      head.push(chunk);
      headBytes += chunk.length;
    }
    if (decoder && !invalid) {
      try {
        decoder.decode(chunk, { stream: true });
      } catch {
        invalid = true;
      }
    }
  }
  if (decoder && !invalid) {
    try {
      decoder.decode();
    } catch {
      invalid = true;
    }
  }
  if (fmt) {
    const headBuf = Buffer.concat(head).subarray(0, HEAD_BYTES);
    if (invalid) {
      // Rare, so the file is read again to say where.
      const line = firstInvalidUtf8Line(await readFile(path));
      throw fileDefect(
        'InvalidEncoding',
        label,
        `line ${line} is not valid UTF-8, the encoding ${dataset} ships ${name} in`,
        `Fix: use the file as GroupLens ships it, or convert it to UTF-8 (e.g. iconv -f latin1 -t utf-8).`,
      );
    }
    const text = headBuf.toString(fmt.encoding === 'utf-8' ? 'utf8' : 'latin1');
    checkHead(dataset, name, label, text, bytes <= HEAD_BYTES);
  }
  return { sha256: hash.digest('hex'), bytes };
}
