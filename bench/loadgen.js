#!/usr/bin/env node
// Load generator for bench/ocpp_load.py: N ocpp-rpc chargers in this one Node
// process connect, boot, start a transaction, then send MeterValues at a set
// total rate for a set time. Open loop: a call is sent on schedule whether or
// not the charger's previous one was answered, so a slow server shows as
// latency (ocpp-rpc queues a charger's calls: one outstanding CALL per
// direction, as OCPP-J says).
//
// Input: the first stdin line, JSON: {url, chargers: [{identity, password}],
//   rate, durationS, connectConcurrency, idTag}
// Output, one JSON line each:
//   {"phase": "held", ...}      every charger connected, booted, in a transaction;
//                               then it waits for a line on stdin (the driver
//                               reads server memory here) before the steady phase
//   {"phase": "steady", ...}    MeterValues figures; waits for a line on stdin
//   {"phase": "done"}           sockets closed

'use strict';

const readline = require('node:readline');
const { RPCClient } = require('ocpp-rpc');

const stdinLines = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]();
let plan = null;
const out = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');
const nowZ = () => new Date().toISOString();

function percentile(sorted, p) {
    if (!sorted.length) return null;
    const index = Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1);
    return sorted[Math.max(0, index)];
}

async function openCharger(spec, errors) {
    const base = plan.url.endsWith('/') ? plan.url.slice(0, -1) : plan.url;
    const client = new RPCClient({
        endpoint: base,
        identity: spec.identity,
        password: spec.password,
        protocols: ['ocpp1.6'],
        // Schema checks cost the generator CPU it needs to keep the rate; the
        // e2e load test runs the same flow in strict mode.
        strictMode: false,
        reconnect: false,
        callTimeoutMs: 60000,
        pingIntervalMs: 60000,
    });
    client.on('disconnect', () => { client._giuDropped = true; });
    try {
        await client.connect();
        await client.call('BootNotification', { chargePointVendor: 'GIU-bench', chargePointModel: 'loadgen' });
        await client.call('StatusNotification', { connectorId: 1, errorCode: 'NoError', status: 'Preparing', timestamp: nowZ() });
        const start = await client.call('StartTransaction', { connectorId: 1, idTag: plan.idTag, meterStart: 0, timestamp: nowZ() });
        client._giuTx = start.transactionId;
        client._giuMeterWh = 0;
        return client;
    } catch (err) {
        if (errors.length < 20) errors.push(`${spec.identity}: ${err?.message ?? err}`);
        client.close({ force: true }).catch(() => {});
        return null;
    }
}

async function main() {
    plan = JSON.parse((await stdinLines.next()).value);
    const errors = [];
    const connectStarted = Date.now();
    const clients = [];
    const queue = [...plan.chargers];
    await Promise.all(Array.from({ length: plan.connectConcurrency ?? 100 }, async () => {
        while (queue.length) {
            const client = await openCharger(queue.shift(), errors);
            if (client) clients.push(client);
        }
    }));
    const connectS = (Date.now() - connectStarted) / 1000;
    out({ phase: 'held', held: clients.length, wanted: plan.chargers.length, connectS, errors });
    await stdinLines.next();

    const latenciesMs = [];
    let sent = 0;
    let answered = 0;
    let failed = 0;
    const failures = [];
    const pending = new Set();
    const tickMs = 5;
    let next = 0;
    const cpuStart = process.cpuUsage();
    const steadyStarted = process.hrtime.bigint();
    const endAt = Date.now() + plan.durationS * 1000;
    await new Promise((resolve) => {
        const timer = setInterval(() => {
            if (Date.now() >= endAt) {
                clearInterval(timer);
                resolve();
                return;
            }
            // Calls owed by the clock, not by the tick count: timers drift.
            const elapsedS = Number(process.hrtime.bigint() - steadyStarted) / 1e9;
            let owed = Math.floor(plan.rate * elapsedS) - sent;
            while (owed > 0 && clients.length) {
                owed -= 1;
                const client = clients[next % clients.length];
                next += 1;
                client._giuMeterWh += 50;
                const t0 = process.hrtime.bigint();
                sent += 1;
                const p = client.call('MeterValues', {
                    connectorId: 1,
                    transactionId: client._giuTx,
                    meterValue: [{
                        timestamp: nowZ(),
                        sampledValue: [
                            { value: String(client._giuMeterWh), measurand: 'Energy.Active.Import.Register', unit: 'Wh', context: 'Sample.Periodic' },
                            { value: '11000', measurand: 'Power.Active.Import', unit: 'W', context: 'Sample.Periodic' },
                        ],
                    }],
                }).then(() => {
                    answered += 1;
                    latenciesMs.push(Number(process.hrtime.bigint() - t0) / 1e6);
                }, (err) => {
                    failed += 1;
                    if (failures.length < 20) failures.push(String(err?.message ?? err));
                }).finally(() => pending.delete(p));
                pending.add(p);
            }
        }, tickMs);
    });
    const sendWindowS = Number(process.hrtime.bigint() - steadyStarted) / 1e9;
    await Promise.all([...pending]);
    const drainS = Number(process.hrtime.bigint() - steadyStarted) / 1e9;
    latenciesMs.sort((a, b) => a - b);
    const stillHeld = clients.filter((c) => !c._giuDropped).length;
    out({
        phase: 'steady',
        held: stillHeld,
        rateAsked: plan.rate,
        sent,
        answered,
        failed,
        failures,
        sendWindowS,
        drainS,
        answeredPerS: answered / drainS,
        p50Ms: percentile(latenciesMs, 50),
        p99Ms: percentile(latenciesMs, 99),
        maxMs: latenciesMs.length ? latenciesMs[latenciesMs.length - 1] : null,
        generatorCpuShare: (() => {
            const used = process.cpuUsage(cpuStart);
            return (used.user + used.system) / 1e6 / drainS;
        })(),
    });
    await stdinLines.next();
    await Promise.all(clients.map((c) => c.close({ code: 1000, force: true }).catch(() => {})));
    out({ phase: 'done' });
    process.exit(0);
}

main().catch((err) => {
    out({ phase: 'fatal', error: String(err?.stack ?? err) });
    process.exit(1);
});
