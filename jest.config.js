/** Tests run against a real Temporal dev server and real training at small sizes, so they are slow by design. */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  // hyparquet and tfjs-core's gradient registration ship as ES modules: transform them to CommonJS too.
  transform: { '^.+\\.(t|j)s$': ['@swc/jest', { jsc: { target: 'es2022' }, module: { type: 'commonjs' } }] },
  transformIgnorePatterns: ['/node_modules/(?!(hyparquet|hyparquet-writer)/|@tensorflow/tfjs-core/dist/)'],
  testTimeout: 120_000,
  setupFiles: ['<rootDir>/test/helpers/quiet-runtime.ts'],
  globalSetup: '<rootDir>/test/helpers/global-setup.ts',
  globalTeardown: '<rootDir>/test/helpers/global-teardown.ts',
};
