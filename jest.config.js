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
  // Real servers start inside tests (each file its own, on free loopback ports); give them room. Two files run at
  // once: most of a real-server test is waiting on those servers, so two share the machine's cores well (the whole
  // suite measured at 31.7 min with two workers on a 2-core machine under heavy outside load, against 39-41 min serial
  // on the same machine quiet).
  testTimeout: 120000,
  maxWorkers: 2,
};
