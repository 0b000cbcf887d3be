// Runs e2e suites in a stable order, with the suites that stop the shared Kafka
// broker last, so a broker restart never delays another suite's events.
const Sequencer = require('@jest/test-sequencer').default;

const DISRUPTIVE = /(outage|device-event-thread)/;

class LatchkeySequencer extends Sequencer {
  sort(tests) {
    return [...tests].sort((a, b) => {
      const da = DISRUPTIVE.test(a.path);
      const db = DISRUPTIVE.test(b.path);
      if (da !== db) return da ? 1 : -1;
      return a.path.localeCompare(b.path);
    });
  }
}

module.exports = LatchkeySequencer;
