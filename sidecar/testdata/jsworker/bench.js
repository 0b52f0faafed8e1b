// bench's JavaScript worker (go run ./bench -w W1 -jsworker): serves W1's
// HelloCities orchestrator and Hello activity with the unmodified
// @microsoft/durabletask-js worker on DURABLE_GRPC, until stdin closes.
"use strict";
const { TaskHubGrpcWorker, NoOpLogger } = require("@microsoft/durabletask-js");

const worker = new TaskHubGrpcWorker({ hostAddress: process.env.DURABLE_GRPC, logger: new NoOpLogger(), workItemFilters: "auto" });
worker.addNamedOrchestrator("HelloCities", async function* (ctx) {
  const out = [];
  for (const city of ["Tokyo", "Seattle", "London"]) {
    out.push(yield ctx.callActivity("Hello", city));
  }
  return out;
});
worker.addNamedActivity("Hello", async (_ctx, city) => `Hello ${city}!`);
worker.start().then(() => console.log("STARTED"));
process.stdin.resume();
process.stdin.on("end", () => worker.stop().then(() => process.exit(0), () => process.exit(1)));
