/** Jest runs the TypeScript sources directly; `npm run typecheck` does the type checking. */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  transform: { '^.+\\.ts$': 'ts-jest' },
  testTimeout: 120_000,
  // Suites share one local stack (Temporal, S3, Spark): run them one at a time on a 2-core machine.
  maxWorkers: 1,
};
