/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.ts$': ['@swc/jest'] },
  // Real servers start inside tests; give them room, the suite itself stays serial.
  testTimeout: 120000,
  maxWorkers: 1,
};
