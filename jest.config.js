/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: "node",
  roots: ["<rootDir>/test"],
  testMatch: ["**/*.test.ts"],
  transform: { "^.+\\.ts$": ["ts-jest", { tsconfig: "tsconfig.json", diagnostics: { ignoreCodes: [151002] } }] },
  // Integration and e2e tests start real nats-server and agent processes.
  testTimeout: 60000,
  maxWorkers: 2,
};
