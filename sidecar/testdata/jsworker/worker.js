// The end-to-end test of durable's sidecar protocol with the unmodified
// @microsoft/durabletask-js worker and client (driven by
// cmd/durable/jsworker_test.go). It connects to DURABLE_GRPC, registers
// its orchestrators and activities, runs the scenarios, prints "ok NAME"
// for each, and "ALL OK" at the end. For the restart scenario it prints
// "RESTART NOW" and waits for a line on stdin once the node is back.
"use strict";
const assert = require("node:assert/strict");
const readline = require("node:readline");
const {
  TaskHubGrpcClient, TaskHubGrpcWorker, OrchestrationStatus, NoOpLogger, whenAll, whenAny, TaskEntity, EntityInstanceId,
} = require("@microsoft/durabletask-js");

const hostAddress = process.env.DURABLE_GRPC;
if (!hostAddress) throw new Error("DURABLE_GRPC is not set");
const logger = new NoOpLogger();

// ---- activities
const hello = async (_ctx, city) => `Hello ${city}!`;
const square = async (_ctx, n) => n * n;

// ---- orchestrators
const jsHelloCities = async function* (ctx) {
  const out = [];
  for (const city of ["Tokyo", "Seattle", "London"]) {
    out.push(yield ctx.callActivity("hello", city));
  }
  return out;
};

const jsFanOut = async function* (ctx, n) {
  const tasks = [];
  for (let i = 1; i <= n; i++) tasks.push(ctx.callActivity("square", i));
  const squares = yield whenAll(tasks);
  return squares.reduce((a, b) => a + b, 0);
};

// An external event raced against a durable timer of `seconds`.
const jsApproval = async function* (ctx, seconds) {
  const approval = ctx.waitForExternalEvent("approval");
  const timeout = ctx.createTimer(seconds);
  const winner = yield whenAny([approval, timeout]);
  return winner === approval ? `approved by ${approval.getResult()}` : "timed out";
};

const jsParent = async function* (ctx) {
  const cities = yield ctx.callSubOrchestrator("jsHelloCities");
  return cities.length;
};

const jsCounter = async function* (ctx, n) {
  if (n < 3) {
    ctx.continueAsNew(n + 1, false);
    return;
  }
  return n;
};

const jsWaiter = async function* (ctx) {
  ctx.setCustomStatus("waiting");
  const v = yield ctx.waitForExternalEvent("go");
  return `got ${v}`;
};

// ---- entities (not "Counter": durable serve's sample app has a Go one)
class Tally extends TaskEntity {
  initializeState() { return 0; }
  add(n) { this.state += n; return this.state; }
}

async function main() {
  const worker = new TaskHubGrpcWorker({ hostAddress, logger, workItemFilters: "auto" });
  worker.addNamedOrchestrator("jsHelloCities", jsHelloCities);
  worker.addNamedOrchestrator("jsFanOut", jsFanOut);
  worker.addNamedOrchestrator("jsApproval", jsApproval);
  worker.addNamedOrchestrator("jsParent", jsParent);
  worker.addNamedOrchestrator("jsCounter", jsCounter);
  worker.addNamedOrchestrator("jsWaiter", jsWaiter);
  worker.addNamedActivity("hello", hello);
  worker.addNamedActivity("square", square);
  worker.addNamedEntity("jsTally", () => new Tally());
  await worker.start();
  const client = new TaskHubGrpcClient({ hostAddress, logger });
  const tag = process.env.DURABLE_TAG || String(Date.now());
  const id = (name) => `${name}-${tag}`;

  const run = async (name, input, instanceId) => {
    // The worker announces its names when its stream opens: retry the
    // first start until it has.
    for (let attempt = 0; ; attempt++) {
      try {
        return await client.scheduleNewOrchestration(name, input, instanceId);
      } catch (e) {
        if (attempt > 50 || !String(e).includes("not registered")) throw e;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  };
  const done = async (instanceId) => {
    const st = await client.waitForOrchestrationCompletion(instanceId, true, 60);
    assert.ok(st, `no state for ${instanceId}`);
    return st;
  };

  // hello cities
  let st = await done(await run("jsHelloCities", undefined, id("hello")));
  assert.equal(st.runtimeStatus, OrchestrationStatus.COMPLETED);
  assert.deepEqual(JSON.parse(st.serializedOutput), ["Hello Tokyo!", "Hello Seattle!", "Hello London!"]);
  console.log("ok hello cities");

  // fan-out/fan-in
  st = await done(await run("jsFanOut", 10, id("fanout")));
  assert.equal(JSON.parse(st.serializedOutput), 385);
  console.log("ok fan-out/fan-in");

  // an event raced against a timer: the event wins, then the timer does
  const approved = await run("jsApproval", 3600, id("approval-event"));
  await client.waitForOrchestrationStart(approved, false, 30);
  await client.raiseOrchestrationEvent(approved, "approval", "ana");
  st = await done(approved);
  assert.equal(JSON.parse(st.serializedOutput), "approved by ana");
  st = await done(await run("jsApproval", 1, id("approval-timer")));
  assert.equal(JSON.parse(st.serializedOutput), "timed out");
  console.log("ok event vs timer");

  // sub-orchestration
  st = await done(await run("jsParent", undefined, id("parent")));
  assert.equal(JSON.parse(st.serializedOutput), 3);
  console.log("ok sub-orchestration");

  // continue-as-new
  st = await done(await run("jsCounter", 0, id("counter")));
  assert.equal(st.runtimeStatus, OrchestrationStatus.COMPLETED);
  assert.equal(JSON.parse(st.serializedOutput), 3);
  console.log("ok continue-as-new");

  // terminate
  const doomed = await run("jsWaiter", undefined, id("terminate"));
  await client.waitForOrchestrationStart(doomed, false, 30);
  await client.terminateOrchestration(doomed, "enough");
  st = await done(doomed);
  assert.equal(st.runtimeStatus, OrchestrationStatus.TERMINATED);
  console.log("ok terminate");

  // suspend/resume: an event sent while suspended waits for the resume
  const paused = await run("jsWaiter", undefined, id("suspend"));
  await client.waitForOrchestrationStart(paused, false, 30);
  await client.suspendOrchestration(paused);
  st = await client.getOrchestrationState(paused);
  assert.equal(st.runtimeStatus, OrchestrationStatus.SUSPENDED);
  await client.raiseOrchestrationEvent(paused, "go", 1);
  st = await client.getOrchestrationState(paused);
  assert.equal(st.runtimeStatus, OrchestrationStatus.SUSPENDED);
  await client.resumeOrchestration(paused);
  st = await done(paused);
  assert.equal(JSON.parse(st.serializedOutput), "got 1");
  console.log("ok suspend/resume");

  // purge
  const purged = await client.purgeOrchestration(id("hello"));
  assert.equal(purged.deletedInstanceCount, 1);
  assert.equal(await client.getOrchestrationState(id("hello")), undefined);
  console.log("ok purge");

  // an entity: signalled by the client, its state read back
  const tally = new EntityInstanceId("jsTally", id("tally"));
  await client.signalEntity(tally, "add", 2);
  await client.signalEntity(tally, "add", 3);
  const tallied = async () => {
    for (let attempt = 0; ; attempt++) {
      const e = await client.getEntity(tally, true);
      if (e && e.state === 5) return;
      if (attempt > 300) throw new Error(`tally: ${JSON.stringify(e)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  await tallied();
  console.log("ok entity");

  // a node restart while the worker waits
  const survivor = await run("jsWaiter", undefined, id("restart"));
  st = await client.waitForOrchestrationStart(survivor, true, 30);
  assert.equal(st.runtimeStatus, OrchestrationStatus.RUNNING);
  console.log("RESTART NOW");
  const rl = readline.createInterface({ input: process.stdin });
  await new Promise((resolve) => rl.once("line", resolve));
  rl.close();
  for (let attempt = 0; ; attempt++) {
    try {
      await client.raiseOrchestrationEvent(survivor, "go", 2);
      break;
    } catch (e) {
      if (attempt > 100) throw e;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  st = await done(survivor);
  assert.equal(JSON.parse(st.serializedOutput), "got 2");
  await tallied(); // the entity's state survived the restart
  console.log("ok node restart");

  await client.stop();
  await worker.stop();
  console.log("ALL OK");
}

main().then(() => process.exit(0), (e) => {
  console.error("FAILED:", e && e.stack ? e.stack : e);
  process.exit(1);
});
