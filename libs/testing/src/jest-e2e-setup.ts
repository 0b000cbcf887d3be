// e2e tests wait on real brokers and databases: give them room (each still bounds its own waits).
jest.setTimeout(120_000);
