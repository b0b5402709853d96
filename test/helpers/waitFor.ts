/**
 * Waiting on an event instead of a fixed number of polls: `check` is asked until it returns a value
 * (anything but undefined), with a generous deadline; a deadline that runs out fails with what never
 * happened and the last thing seen, not with an unrelated assertion further down.
 */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined> | T | undefined,
  { timeoutMs = 120_000, intervalMs = 200, seen }: { timeoutMs?: number; intervalMs?: number; seen?: () => unknown } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) {
      const last = seen ? `; last seen: ${JSON.stringify(await seen())}` : '';
      throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}${last}`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
