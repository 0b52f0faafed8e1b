// A JavaScript worker and client of durable, through the Durable Task
// sidecar protocol: the orchestration and its activity are JavaScript, the
// engine (journal, timers, recovery) is durable's. Start a node first:
//
//   go run ./cmd/durable serve --grpc 127.0.0.1:4001
//
// then, here: npm ci && node app.js
"use strict";
const { TaskHubGrpcClient, TaskHubGrpcWorker, NoOpLogger, whenAll } = require("@microsoft/durabletask-js");

const hostAddress = process.env.DURABLE_GRPC || "127.0.0.1:4001";

// An activity: plain code that does the work (I/O belongs here).
const hello = async (_ctx, city) => `Hello ${city}!`;

// An orchestrator: a generator that yields tasks. It must be
// deterministic; the SDK replays it from the history durable hands it.
const helloCities = async function* (ctx, cities) {
  // Fan out: every city at once, then wait for all of them.
  const greetings = yield whenAll(cities.map((city) => ctx.callActivity("hello", city)));
  // A durable timer: the instance holds no process while it waits.
  yield ctx.createTimer(1);
  return greetings;
};

async function main() {
  const worker = new TaskHubGrpcWorker({ hostAddress, logger: new NoOpLogger(), workItemFilters: "auto" });
  worker.addNamedOrchestrator("helloCities", helloCities);
  worker.addNamedActivity("hello", hello);
  await worker.start();

  const client = new TaskHubGrpcClient({ hostAddress, logger: new NoOpLogger() });
  let id;
  for (let attempt = 0; !id; attempt++) {
    try {
      id = await client.scheduleNewOrchestration("helloCities", ["Tokyo", "Seattle", "London"]);
    } catch (e) {
      // The worker's stream announces its names to the node just after it opens.
      if (attempt > 50 || !String(e).includes("not registered")) throw e;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  console.log(`started helloCities as ${id}`);
  const state = await client.waitForOrchestrationCompletion(id, true, 60);
  console.log(`${state.runtimeStatus === 1 ? "Completed" : state.runtimeStatus}: ${state.serializedOutput}`);

  await client.stop();
  await worker.stop();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
