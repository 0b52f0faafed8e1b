// A JavaScript worker and client of durable, through the Durable Task
// sidecar protocol: the orchestration, its activity and the entity it calls
// are JavaScript, the engine (journal, timers, entity state, recovery) is
// durable's. Start a node first:
//
//   go run ./cmd/durable serve --grpc 127.0.0.1:4001
//
// then, here: npm ci && node app.js
"use strict";
const {
  TaskHubGrpcClient, TaskHubGrpcWorker, NoOpLogger, whenAll, TaskEntity, EntityInstanceId,
} = require("@microsoft/durabletask-js");

const hostAddress = process.env.DURABLE_GRPC || "127.0.0.1:4001";

// An activity: plain code that does the work (I/O belongs here).
const hello = async (_ctx, city) => `Hello ${city}!`;

// An entity: a counter with durable state, one operation at a time. Each
// method is an operation; durable keeps `this.state` between them. (Its
// name is not "counter": durable serve's sample app registers a Go
// "Counter", and a name registered in Go is served by Go.)
class Counter extends TaskEntity {
  initializeState() { return 0; }
  add(n) { this.state += n; return this.state; }
  get() { return this.state; }
}
const greeted = new EntityInstanceId("greetingCounter", "all");

// An orchestrator: a generator that yields tasks. It must be
// deterministic; the SDK replays it from the history durable hands it.
const helloCities = async function* (ctx, cities) {
  // Fan out: every city at once, then wait for all of them.
  const greetings = yield whenAll(cities.map((city) => ctx.callActivity("hello", city)));
  // A durable timer: the instance holds no process while it waits.
  yield ctx.createTimer(1);
  // Call the entity: it adds the greetings to its count and returns it.
  const total = yield ctx.entities.callEntity(greeted, "add", greetings.length);
  return { greetings, total };
};

async function main() {
  const worker = new TaskHubGrpcWorker({ hostAddress, logger: new NoOpLogger(), workItemFilters: "auto" });
  worker.addNamedOrchestrator("helloCities", helloCities);
  worker.addNamedActivity("hello", hello);
  worker.addNamedEntity("greetingCounter", () => new Counter());
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
  // The entity's state, as durable committed it.
  const counter = await client.getEntity(greeted, true);
  console.log(`${greeted} has counted ${counter ? counter.state : 0} greetings`);

  await client.stop();
  await worker.stop();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
