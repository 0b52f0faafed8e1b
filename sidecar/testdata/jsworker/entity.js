// The end-to-end test of durable's entity work items with the unmodified
// @microsoft/durabletask-js worker and client (driven by
// sidecar/jsentity_test.go, whose node has the Go orchestration
// "GoCallsJSCounter"). It serves the entity "JSCounter" on DURABLE_GRPC,
// signals it from the client, reads its state, has the Go orchestration
// call it (a result, a failure, a signal the entity sends), prints "ok
// NAME" for each scenario and "ALL OK" at the end.
"use strict";
const assert = require("node:assert/strict");
const {
  TaskHubGrpcClient, TaskHubGrpcWorker, TaskEntity, EntityInstanceId, OrchestrationStatus, NoOpLogger,
} = require("@microsoft/durabletask-js");

const hostAddress = process.env.DURABLE_GRPC;
if (!hostAddress) throw new Error("DURABLE_GRPC is not set");
const logger = new NoOpLogger();

// A counter: add returns the new count, get the count; boom changes the
// count and then throws, so its change is rolled back; tell signals "add
// 1" to the counter of the key it is given.
class Counter extends TaskEntity {
  initializeState() { return 0; }
  add(n) { this.state += n; return this.state; }
  get() { return this.state; }
  boom() { this.state = -1; throw new Error("counter says no"); }
  tell(key) { this.context.signalEntity(new EntityInstanceId("JSCounter", key), "add", 1); }
}

// A JavaScript orchestration that signals the counter of its input, then
// calls it: add 3, boom (its failure), get.
const jsCallsCounter = async function* (ctx, key) {
  const id = new EntityInstanceId("JSCounter", key);
  ctx.entities.signalEntity(id, "add", 100);
  const added = yield ctx.entities.callEntity(id, "add", 3);
  let failure;
  try {
    yield ctx.entities.callEntity(id, "boom");
  } catch (e) {
    failure = String(e && e.message);
  }
  const got = yield ctx.entities.callEntity(id, "get");
  return { added, failure, got };
};

// A JavaScript orchestration that holds the counter of its input in a
// critical section across the event "go": a signal sent meanwhile waits
// for the release.
const jsLocksCounter = async function* (ctx, key) {
  const id = new EntityInstanceId("JSCounter", key);
  const lock = yield ctx.entities.lockEntities(id);
  const before = yield ctx.entities.callEntity(id, "get");
  ctx.setCustomStatus("locked");
  yield ctx.waitForExternalEvent("go");
  const after = yield ctx.entities.callEntity(id, "add", 1);
  lock.release();
  return { before, after };
};

// One that ends inside its critical section: durable releases the lock.
const jsEndsLocked = async function* (ctx, key) {
  yield ctx.entities.lockEntities(new EntityInstanceId("JSCounter", key));
  return "ended holding the lock";
};

async function main() {
  const worker = new TaskHubGrpcWorker({ hostAddress, logger, workItemFilters: "auto" });
  worker.addNamedEntity("JSCounter", () => new Counter());
  worker.addNamedOrchestrator("jsCallsCounter", jsCallsCounter);
  worker.addNamedOrchestrator("jsLocksCounter", jsLocksCounter);
  worker.addNamedOrchestrator("jsEndsLocked", jsEndsLocked);
  await worker.start();
  const client = new TaskHubGrpcClient({ hostAddress, logger });
  const tag = process.env.DURABLE_TAG || String(Date.now());
  const counter = new EntityInstanceId("JSCounter", `k-${tag}`);
  const other = new EntityInstanceId("JSCounter", `other-${tag}`);

  const stateOf = async (id, want) => {
    for (let attempt = 0; ; attempt++) {
      const e = await client.getEntity(id, true);
      if (e && e.state === want) return;
      if (attempt > 300) throw new Error(`${id}: state ${JSON.stringify(e && e.state)}, want ${want}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };

  // signal from the client: the worker announces its entity names when
  // its stream opens, so the first signal is retried until it has.
  for (let attempt = 0; ; attempt++) {
    try {
      await client.signalEntity(counter, "add", 5);
      break;
    } catch (e) {
      if (attempt > 50 || !String(e).includes("not registered")) throw e;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  await client.signalEntity(counter, "add", 10);
  await stateOf(counter, 15);
  console.log("ok signal and read");

  // a failed operation is rolled back
  await client.signalEntity(counter, "boom");
  await client.signalEntity(counter, "add", 1);
  await stateOf(counter, 16);
  console.log("ok failed operation rolled back");

  // called from a Go orchestration: add 2, boom (its failure), get; and
  // the entity signals another one
  const instanceId = await client.scheduleNewOrchestration("GoCallsJSCounter", counter.key, `go-calls-${tag}`);
  const st = await client.waitForOrchestrationCompletion(instanceId, true, 60);
  assert.equal(st.runtimeStatus, OrchestrationStatus.COMPLETED, st.serializedOutput);
  const out = JSON.parse(st.serializedOutput);
  assert.equal(out.added, 18);
  assert.match(out.failure, /counter says no/);
  assert.equal(out.got, 18);
  await client.signalEntity(counter, "tell", other.key);
  await stateOf(other, 1);
  console.log("ok called from an orchestration");

  // called and signalled from a JavaScript orchestration
  const fromJS = new EntityInstanceId("JSCounter", `js-${tag}`);
  const jsId = await client.scheduleNewOrchestration("jsCallsCounter", fromJS.key, `js-calls-${tag}`);
  const jsSt = await client.waitForOrchestrationCompletion(jsId, true, 60);
  assert.equal(jsSt.runtimeStatus, OrchestrationStatus.COMPLETED, jsSt.serializedOutput);
  const jsOut = JSON.parse(jsSt.serializedOutput);
  assert.equal(jsOut.added, 103);
  assert.match(jsOut.failure, /counter says no/);
  assert.equal(jsOut.got, 103);
  await stateOf(fromJS, 103);
  console.log("ok called from a JavaScript orchestration");

  // a critical section from a JavaScript orchestration
  const locked = new EntityInstanceId("JSCounter", `locked-${tag}`);
  await client.signalEntity(locked, "add", 10);
  await stateOf(locked, 10);
  const lockId = await client.scheduleNewOrchestration("jsLocksCounter", locked.key, `js-locks-${tag}`);
  for (let attempt = 0; ; attempt++) {
    const s = await client.getOrchestrationState(lockId, true);
    if (s && s.serializedCustomStatus === JSON.stringify("locked")) break;
    if (attempt > 300) throw new Error(`jsLocksCounter never held the lock: ${JSON.stringify(s)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  await client.signalEntity(locked, "add", 100); // waits for the release
  await new Promise((r) => setTimeout(r, 300));
  await stateOf(locked, 10);
  await client.raiseOrchestrationEvent(lockId, "go", true);
  const lockSt = await client.waitForOrchestrationCompletion(lockId, true, 60);
  assert.equal(lockSt.runtimeStatus, OrchestrationStatus.COMPLETED, lockSt.serializedOutput);
  assert.deepEqual(JSON.parse(lockSt.serializedOutput), { before: 10, after: 11 });
  await stateOf(locked, 111);
  const endsId = await client.scheduleNewOrchestration("jsEndsLocked", locked.key, `js-ends-locked-${tag}`);
  await client.waitForOrchestrationCompletion(endsId, true, 60);
  await client.signalEntity(locked, "add", 1);
  await stateOf(locked, 112); // released when the orchestration ended
  console.log("ok critical section from a JavaScript orchestration");

  const ids = [];
  for await (const e of client.getEntities({ instanceIdStartsWith: "@jscounter@", includeState: true })) {
    ids.push(e.id.toString());
  }
  assert.ok(ids.includes(counter.toString()) && ids.includes(other.toString()), `listed ${ids}`);
  console.log("ok query");

  await client.stop();
  await worker.stop();
  console.log("ALL OK");
}

main().then(() => process.exit(0), (e) => {
  console.error("FAILED:", e && e.stack ? e.stack : e);
  process.exit(1);
});
