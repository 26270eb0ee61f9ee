#!/usr/bin/env node
// One OCPP 1.6J charger driven by JSON steps, built on the third-party
// `ocpp-rpc` client (strict mode: every frame in and out is checked against the
// official OCPP 1.6 JSON schemas the package bundles).
//
// Steps come one JSON object a line on stdin; each step is run in turn and
// answered by one JSON line on stdout carrying the step's `id`:
//
//   {"id": 1, "op": "connect", "url": "ws://127.0.0.1:8000/ocpp/",
//    "identity": "CP-1", "password": "...", "strict": true}
//   {"id": 2, "op": "call", "method": "BootNotification", "params": {...}}
//   {"id": 3, "op": "handle", "method": "Reset", "response": {"status": "Rejected"}}
//   {"id": 4, "op": "handle", "method": "Reset", "error": "NotSupported"}
//   {"id": 5, "op": "sleep", "ms": 100}
//   {"id": 6, "op": "close", "code": 1000}
//
// Calls the central system sends (RemoteStopTransaction, Reset, ...) are
// answered at once with a schema-valid default (or what a `handle` step set)
// and reported as {"event": "call", ...} lines. Strict validation failures
// are reported as {"event": "strictValidationFailure", ...} lines, whichever
// side broke the schema. The process ends when stdin closes; its last line is
// {"event": "summary", ...}.

'use strict';

const readline = require('node:readline');
const { RPCClient, createRPCError } = require('ocpp-rpc');

const out = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');
const nowZ = () => new Date().toISOString();

// Schema-valid answers for the 19 calls a central system can send in 1.6.
const DEFAULT_ANSWERS = {
    RemoteStartTransaction: () => ({ status: 'Accepted' }),
    RemoteStopTransaction: () => ({ status: 'Accepted' }),
    Reset: () => ({ status: 'Accepted' }),
    UnlockConnector: () => ({ status: 'Unlocked' }),
    ChangeAvailability: () => ({ status: 'Accepted' }),
    ChangeConfiguration: () => ({ status: 'Accepted' }),
    GetConfiguration: (params) => {
        const known = { HeartbeatInterval: '300', MeterValueSampleInterval: '60' };
        const asked = params.key && params.key.length ? params.key : Object.keys(known);
        return {
            configurationKey: asked
                .filter((key) => key in known)
                .map((key) => ({ key, readonly: false, value: known[key] })),
            unknownKey: asked.filter((key) => !(key in known)),
        };
    },
    ClearCache: () => ({ status: 'Accepted' }),
    TriggerMessage: () => ({ status: 'Accepted' }),
    DataTransfer: (params) => ({ status: 'Accepted', data: params.data ?? '' }),
    UpdateFirmware: () => ({}),
    GetDiagnostics: () => ({ fileName: 'diagnostics.log' }),
    SendLocalList: () => ({ status: 'Accepted' }),
    GetLocalListVersion: () => ({ listVersion: 1 }),
    ReserveNow: () => ({ status: 'Accepted' }),
    CancelReservation: () => ({ status: 'Accepted' }),
    SetChargingProfile: () => ({ status: 'Accepted' }),
    ClearChargingProfile: () => ({ status: 'Accepted' }),
    GetCompositeSchedule: (params) => ({
        status: 'Accepted',
        connectorId: params.connectorId,
        scheduleStart: nowZ(),
        chargingSchedule: {
            duration: params.duration,
            chargingRateUnit: params.chargingRateUnit ?? 'W',
            chargingSchedulePeriod: [{ startPeriod: 0, limit: 7400 }],
        },
    }),
};

let client = null;
const overrides = new Map();
const stats = { callsSent: 0, callsAnswered: 0, callErrors: 0, callsReceived: 0, strictFailures: 0 };

function describeError(err) {
    return {
        name: err?.constructor?.name ?? 'Error',
        message: String(err?.message ?? err),
        rpcErrorCode: err?.rpcErrorCode ?? null,
        details: err?.details ?? null,
        statusCode: typeof err?.code === 'number' ? err.code : null,
    };
}

function attach(cli) {
    cli.on('strictValidationFailure', (ev) => {
        stats.strictFailures += 1;
        out({
            event: 'strictValidationFailure',
            method: ev.method,
            messageId: ev.messageId,
            outbound: ev.outbound,
            isCall: ev.isCall,
            params: ev.params,
            result: ev.result ?? null,
            error: String(ev.error?.message ?? ev.error),
        });
    });
    cli.on('badMessage', (ev) => out({ event: 'badMessage', message: String(ev.buffer), error: String(ev.error?.message ?? ev.error) }));
    cli.on('disconnect', (ev) => out({ event: 'disconnect', code: ev.code, reason: String(ev.reason ?? '') }));
    cli.handle(async ({ method, params, messageId }) => {
        stats.callsReceived += 1;
        const override = overrides.get(method);
        out({ event: 'call', method, params, messageId, at: nowZ() });
        if (override?.error) {
            throw createRPCError(override.error, override.description ?? '', {});
        }
        if (override?.delayMs) {
            await new Promise((r) => setTimeout(r, override.delayMs));
        }
        if (override?.response) {
            return override.response;
        }
        const answer = DEFAULT_ANSWERS[method];
        if (!answer) {
            throw createRPCError('NotImplemented', `no handler for ${method}`, {});
        }
        return answer(params);
    });
}

async function runStep(step) {
    switch (step.op) {
        case 'connect': {
            const base = step.url.endsWith('/') ? step.url : step.url + '/';
            client = new RPCClient({
                endpoint: base.slice(0, -1),
                identity: step.identity,
                password: step.password ?? undefined,
                protocols: step.protocols ?? ['ocpp1.6'],
                strictMode: step.strict ?? true,
                reconnect: step.reconnect ?? false,
                callTimeoutMs: step.callTimeoutMs ?? 20000,
            });
            attach(client);
            try {
                const result = await client.connect();
                return { ok: true, protocol: client.protocol, status: result?.response?.statusCode ?? null };
            } catch (err) {
                return { ok: false, error: describeError(err) };
            }
        }
        case 'call': {
            stats.callsSent += 1;
            try {
                const response = await client.call(step.method, step.params ?? {});
                stats.callsAnswered += 1;
                return { ok: true, response };
            } catch (err) {
                stats.callErrors += 1;
                return { ok: false, error: describeError(err) };
            }
        }
        case 'handle':
            overrides.set(step.method, { response: step.response, error: step.error, description: step.description, delayMs: step.delayMs });
            return { ok: true };
        case 'sleep':
            await new Promise((r) => setTimeout(r, step.ms ?? 0));
            return { ok: true };
        case 'close': {
            if (!client) return { ok: true };
            const closed = await client.close({ code: step.code ?? 1000, reason: step.reason ?? '', awaitPending: true });
            return { ok: true, code: closed?.code ?? null };
        }
        default:
            return { ok: false, error: { message: `unknown op ${step.op}` } };
    }
}

async function main() {
    const lines = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
    for await (const line of lines) {
        if (!line.trim()) continue;
        let step;
        try {
            step = JSON.parse(line);
        } catch (err) {
            out({ id: null, ok: false, error: { message: `not JSON: ${err.message}` } });
            continue;
        }
        const result = await runStep(step);
        out({ id: step.id ?? null, op: step.op, ...result });
    }
    if (client && client.state !== 3) {
        await client.close({ code: 1000, force: false, awaitPending: true }).catch(() => {});
    }
    out({ event: 'summary', ...stats });
}

main().catch((err) => {
    out({ event: 'fatal', error: describeError(err) });
    process.exit(1);
});
