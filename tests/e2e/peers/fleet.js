#!/usr/bin/env node
// A fleet of ocpp-rpc chargers (strict mode), each running one full
// transaction: boot, status, authorize, start, meter values, stop, status.
//
// Input: one JSON object on stdin
//   {"url": "ws://127.0.0.1:8000/ocpp/", "chargers": [{"identity": "...",
//    "password": "..."}], "idTag": "...", "meterValues": 5,
//    "concurrency": 100, "strict": true}
// Output: one JSON line with what was sent, what was answered and every strict
// validation failure or error (the first 50 of each, and their counts).

'use strict';

const { RPCClient } = require('ocpp-rpc');

const nowZ = () => new Date().toISOString();

async function readStdin() {
    const chunks = [];
    for await (const chunk of process.stdin) chunks.push(chunk);
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
}

function record(list, item) {
    if (list.length < 50) list.push(item);
}

async function runCharger(spec, plan, report) {
    const base = plan.url.endsWith('/') ? plan.url.slice(0, -1) : plan.url;
    const client = new RPCClient({
        endpoint: base,
        identity: spec.identity,
        password: spec.password,
        protocols: ['ocpp1.6'],
        strictMode: plan.strict ?? true,
        reconnect: false,
        callTimeoutMs: plan.callTimeoutMs ?? 30000,
    });
    client.on('strictValidationFailure', (ev) => {
        report.strictFailureCount += 1;
        record(report.strictFailures, {
            identity: spec.identity,
            method: ev.method,
            outbound: ev.outbound,
            isCall: ev.isCall,
            error: String(ev.error?.message ?? ev.error),
            params: ev.params,
            result: ev.result ?? null,
        });
    });
    client.on('badMessage', (ev) => {
        report.badMessageCount += 1;
        record(report.errors, { identity: spec.identity, badMessage: String(ev.buffer) });
    });

    const call = async (method, params) => {
        report.sent[method] = (report.sent[method] ?? 0) + 1;
        try {
            const response = await client.call(method, params);
            report.answered[method] = (report.answered[method] ?? 0) + 1;
            return response;
        } catch (err) {
            report.errorCount += 1;
            record(report.errors, {
                identity: spec.identity,
                method,
                error: String(err?.message ?? err),
                rpcErrorCode: err?.rpcErrorCode ?? null,
            });
            return null;
        }
    };

    try {
        await client.connect();
    } catch (err) {
        report.connectFailureCount += 1;
        record(report.connectFailures, { identity: spec.identity, error: String(err?.message ?? err) });
        return;
    }
    report.connected += 1;

    const boot = await call('BootNotification', {
        chargePointVendor: 'GIU-e2e',
        chargePointModel: 'ocpp-rpc-fleet',
        chargePointSerialNumber: `SN-${spec.identity}`,
        firmwareVersion: '1.0.0',
    });
    if (!boot || boot.status !== 'Accepted') {
        record(report.errors, { identity: spec.identity, method: 'BootNotification', response: boot });
    }
    await call('StatusNotification', { connectorId: 0, errorCode: 'NoError', status: 'Available', timestamp: nowZ() });
    await call('StatusNotification', { connectorId: 1, errorCode: 'NoError', status: 'Preparing', timestamp: nowZ() });
    const auth = await call('Authorize', { idTag: plan.idTag });
    const start = await call('StartTransaction', {
        connectorId: 1,
        idTag: plan.idTag,
        meterStart: spec.meterStartWh ?? 1000,
        timestamp: nowZ(),
    });
    if (!start || typeof start.transactionId !== 'number') {
        record(report.errors, { identity: spec.identity, method: 'StartTransaction', response: start });
        await client.close({ code: 1000 });
        return;
    }
    await call('StatusNotification', { connectorId: 1, errorCode: 'NoError', status: 'Charging', timestamp: nowZ() });
    const meterStart = spec.meterStartWh ?? 1000;
    const stepWh = plan.stepWh ?? 250;
    const samples = plan.meterValues ?? 5;
    for (let i = 1; i <= samples; i += 1) {
        await call('MeterValues', {
            connectorId: 1,
            transactionId: start.transactionId,
            meterValue: [{
                timestamp: nowZ(),
                sampledValue: [
                    { value: String(meterStart + i * stepWh), context: 'Sample.Periodic', measurand: 'Energy.Active.Import.Register', unit: 'Wh' },
                    { value: '7200', context: 'Sample.Periodic', measurand: 'Power.Active.Import', unit: 'W' },
                ],
            }],
        });
        report.samplesSent += 2;
    }
    const meterStop = meterStart + samples * stepWh;
    await call('StopTransaction', {
        transactionId: start.transactionId,
        idTag: plan.idTag,
        meterStop,
        timestamp: nowZ(),
        reason: 'EVDisconnected',
    });
    await call('StatusNotification', { connectorId: 1, errorCode: 'NoError', status: 'Available', timestamp: nowZ() });
    report.transactions.push({
        identity: spec.identity,
        transactionId: start.transactionId,
        authorized: auth?.idTagInfo?.status ?? null,
        meterStart,
        meterStop,
    });
    await client.close({ code: 1000, awaitPending: true });
}

async function main() {
    const plan = await readStdin();
    const report = {
        chargers: plan.chargers.length,
        connected: 0,
        connectFailureCount: 0,
        connectFailures: [],
        sent: {},
        answered: {},
        errorCount: 0,
        errors: [],
        strictFailureCount: 0,
        strictFailures: [],
        badMessageCount: 0,
        samplesSent: 0,
        transactions: [],
        durationMs: 0,
    };
    const started = Date.now();
    const queue = [...plan.chargers];
    const workers = Array.from({ length: Math.min(plan.concurrency ?? 100, queue.length) }, async () => {
        while (queue.length) {
            const spec = queue.shift();
            await runCharger(spec, plan, report);
        }
    });
    await Promise.all(workers);
    report.durationMs = Date.now() - started;
    process.stdout.write(JSON.stringify(report) + '\n');
}

main().catch((err) => {
    process.stdout.write(JSON.stringify({ fatal: String(err?.stack ?? err) }) + '\n');
    process.exit(1);
});
