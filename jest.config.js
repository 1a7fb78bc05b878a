/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  // @kubernetes/client-node 1.x ships ES modules only (as do some of its dependencies): swc turns them into
  // CommonJS for jest. Node itself loads them with require() (Node >= 20.19).
  transform: { '^.+\\.(ts|m?js)$': ['@swc/jest'] },
  transformIgnorePatterns: [
    '/node_modules/(?!(@kubernetes/client-node|openid-client|oauth4webapi|jose|jsonpath-plus)/)',
  ],
  // Real servers start inside tests; give them room, the suite itself stays serial.
  testTimeout: 120000,
  maxWorkers: 1,
};
