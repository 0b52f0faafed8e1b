// Drives durable's HTTP API with the real DurableClient of the
// durable-functions npm package, built outside the Functions host.
// Run by ../../npmclient_test.go, which starts the server and registers the
// orchestrators used here (Echo, Wait, FlakyOnce) and the Counter entity
// (its state a number: add, reset, get, delete).
//
// Environment:
//   DURABLE_CLIENT_DATA  the client's clientData as JSON (management URL
//                        templates, or an rpcBaseUrl)
//   DURABLE_TAG          prefix of the instance ids this run chooses
//
// Prints one line per step and "ALL OK" at the end; exits 1 on the first
// failed check.
'use strict';

const assert = require('node:assert/strict');
const { DurableClient } = require('durable-functions/lib/src/durableClient/DurableClient.js');

const clientData = JSON.parse(process.env.DURABLE_CLIENT_DATA);
const tag = process.env.DURABLE_TAG || 'npm';
const client = new DurableClient(clientData);

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function step(name) {
    console.log(`ok - ${name}`);
}

// waitFor polls getStatus until the instance is in one of statuses.
async function waitFor(id, statuses, ms = 20000) {
    const deadline = Date.now() + ms;
    for (;;) {
        const st = await client.getStatus(id);
        if (statuses.includes(st.runtimeStatus)) {
            return st;
        }
        if (Date.now() > deadline) {
            throw new Error(`instance ${id} is ${st.runtimeStatus}, waited for ${statuses}`);
        }
        await sleep(20);
    }
}

async function main() {
    const from = new Date(Date.now() - 60 * 1000);

    // startNew with an input; getStatus until it completes.
    const echo = await client.startNew('Echo', { input: { hello: 'world' } });
    let st = await waitFor(echo, ['Completed']);
    assert.equal(st.name, 'Echo');
    assert.equal(st.instanceId, echo);
    assert.deepEqual(st.input, { hello: 'world' });
    assert.deepEqual(st.output, { hello: 'world' });
    assert.ok(st.createdTime instanceof Date && !isNaN(st.createdTime.getTime()), 'createdTime parses');
    assert.ok(!isNaN(st.lastUpdatedTime.getTime()), 'lastUpdatedTime parses');
    step('startNew with input, getStatus');

    // startNew under a chosen id, without input.
    const noInput = await client.startNew('Echo', { instanceId: `${tag}-noinput` });
    assert.equal(noInput, `${tag}-noinput`);
    st = await waitFor(noInput, ['Completed']);
    assert.ok(st.input === null || st.input === '', `input ${JSON.stringify(st.input)}`);
    step(`startNew with an instance id and no input (input ${JSON.stringify(st.input)})`);

    // startNew without input sends the body "": an orchestrator with an
    // optional input takes it as no input.
    const optional = await client.startNew('Optional');
    st = await waitFor(optional, ['Completed']);
    assert.deepEqual(st.output, ['default']);
    step('startNew without input of an orchestrator with an optional input');

    // getStatus with history: the client keeps .history, which the API
    // names historyEvents, so it is undefined (as with Durable Functions).
    st = await client.getStatus(echo, { showHistory: true, showHistoryOutput: true, showInput: false });
    assert.equal(st.runtimeStatus, 'Completed');
    if (!clientData.rpcBaseUrl) {
        // In rpc mode the client sends showInput only when it is true.
        assert.equal(st.input, null);
    }
    step('getStatus with showHistory and showInput=false');

    await assert.rejects(client.getStatus(`${tag}-nobody`), /404/);
    step('getStatus of an unknown instance throws');

    // raiseEvent.
    const wait = await client.startNew('Wait', { instanceId: `${tag}-wait` });
    st = await waitFor(wait, ['Running']);
    await client.raiseEvent(wait, 'Go', { approved: true });
    st = await waitFor(wait, ['Completed']);
    assert.deepEqual(st.output, { approved: true });
    await client.raiseEvent(wait, 'Go', 'late'); // 410: accepted
    await assert.rejects(client.raiseEvent(`${tag}-nobody`, 'Go', 1), /No instance/);
    step('raiseEvent');

    // suspend, resume, terminate (no reason: the client sends "undefined").
    const term = await client.startNew('Wait');
    await waitFor(term, ['Running']);
    await client.suspend(term);
    await waitFor(term, ['Suspended']);
    await client.resume(term, 'go on');
    await waitFor(term, ['Running']);
    await client.terminate(term, 'enough');
    st = await waitFor(term, ['Terminated']);
    assert.equal(st.output, 'enough');
    await client.terminate(term, 'again'); // 410: accepted
    await assert.rejects(client.terminate(`${tag}-nobody`, 'x'), /No instance/);
    step('suspend, resume, terminate');

    // rewind a failed instance.
    const flaky = await client.startNew('FlakyOnce');
    await waitFor(flaky, ['Failed']);
    await client.rewind(flaky, 'try again');
    st = await waitFor(flaky, ['Completed']);
    assert.equal(st.output, 'second call works');
    step('rewind');

    // rewind an instance whose orchestrator code itself failed (the code
    // is fixed meanwhile): the failed turn runs again on the current code.
    const buggy = await client.startNew('BuggyOnce');
    await waitFor(buggy, ['Failed']);
    await client.rewind(buggy, 'fixed');
    st = await waitFor(buggy, ['Completed']);
    assert.equal(st.output, 'Hello fix!');
    step('rewind of an orchestrator whose code failed');

    // The client builds these messages itself from the status (Durable
    // Functions sends 404 and 410 with empty bodies).
    await assert.rejects(client.rewind(`${tag}-nobody`, 'x'), { message: `No instance with ID '${tag}-nobody' found.` });
    await assert.rejects(client.getStatus(`${tag}-nobody`), (err) => !/\[object Object\]|Details/.test(err.message));
    step('rewind and getStatus of an unknown instance read right');

    // getStatusAll / getStatusBy follow the continuation token (the server
    // pages by 2).
    const all = await client.getStatusAll();
    const ids = all.map((s) => s.instanceId);
    for (const id of [echo, noInput, wait, term, flaky]) {
        assert.ok(ids.includes(id), `getStatusAll lacks ${id}`);
    }
    assert.equal(new Set(ids).size, ids.length, 'getStatusAll repeats instances');
    const terminated = await client.getStatusBy({ runtimeStatus: ['Terminated'] });
    assert.deepEqual(terminated.map((s) => s.instanceId), [term]);
    const future = await client.getStatusBy({ createdTimeFrom: new Date(Date.now() + 3600 * 1000) });
    assert.deepEqual(future, []);
    step('getStatusAll and getStatusBy');

    // purge.
    let res = await client.purgeInstanceHistory(echo);
    assert.equal(res.instancesDeleted, 1);
    res = await client.purgeInstanceHistory(echo);
    assert.equal(res.instancesDeleted, 0);
    await assert.rejects(client.getStatus(echo), /404/);
    res = await client.purgeInstanceHistoryBy({ createdTimeFrom: from, runtimeStatus: ['Terminated'] });
    assert.equal(res.instancesDeleted, 1);
    res = await client.purgeInstanceHistoryBy({ createdTimeFrom: from, runtimeStatus: ['Terminated'] });
    assert.equal(res.instancesDeleted, 0);
    step('purgeInstanceHistory and purgeInstanceHistoryBy');

    // Entities: signal a counter, then read its state.
    const counter = { name: 'Counter', key: `${tag}-counter` };
    await client.signalEntity(counter, 'add', 5);
    await client.signalEntity(counter, 'add', 2);
    let state;
    for (const deadline = Date.now() + 20000; Date.now() < deadline; await sleep(20)) {
        state = await client.readEntityState(counter);
        if (state.entityExists && state.entityState === 7) {
            break;
        }
    }
    assert.equal(state.entityExists, true);
    assert.equal(state.entityState, 7);
    const missing = await client.readEntityState({ name: 'Counter', key: `${tag}-nothing` });
    assert.equal(missing.entityExists, false);
    step('signalEntity and readEntityState');

    console.log('ALL OK');
}

main().catch((err) => {
    console.error(`not ok - ${err.stack || err}`);
    process.exit(1);
});
