#!/usr/bin/env node
// A pacache client with @grpc/grpc-js: Quote, Promise and Reserve, answers printed as JSON.
//
//   node client.js --target HOST:PORT [--token T] [--tls] COMMAND [options]
//   quote   --account A [--region R | --location L ...] [--explain] --line [ID=]SKU:QTY[:UOM] ...
//   promise --account A [--region R | --location L ...] [--ship-complete] [--need-by YYYY-MM-DD]
//           --line [ID=]SKU:QTY[:UOM] ...
//   reserve --account A --hold-key K [--ttl-ms N] --line SKU:QTY[:UOM]@LOCATION ...
'use strict';

const path = require('node:path');
const { parseArgs } = require('node:util');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const PROTO_ROOT = path.join(__dirname, '..', '..', 'proto');

// The .proto is loaded at run time, so there is nothing to generate.
// keepCase: fields keep their .proto names (line_id, unit_price_micros). Without it,
//   proto-loader expects lowerCamelCase and silently drops snake_case keys it does not know.
// longs: String: int64/uint64 arrive as decimal strings. Money is int64 micros, and a JS
//   number is exact only up to 2^53, so it must never pass through Number.
// enums: String: LINE_STATUS_OK rather than 1. defaults: true: zero values are present
//   (status LINE_STATUS_UNSPECIFIED, quantity "0") instead of missing keys.
// oneofs: true: a set proto3 `optional` field also names itself in a virtual field.
const definition = protoLoader.loadSync('pacache/v1/pacache.proto', {
  includeDirs: [PROTO_ROOT],
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
});
const { PriceAvailabilityService } = grpc.loadPackageDefinition(definition).pacache.v1;

function usage(message) {
  console.error(`client.js: ${message}\n` +
    'usage: node client.js --target HOST:PORT [--token T] quote|promise|reserve --account A --line ...');
  process.exit(2);
}

const OPTIONS = {
  target: { type: 'string', default: process.env.PACACHE_TARGET || '127.0.0.1:50051' },
  token: { type: 'string', default: process.env.PACACHE_TOKEN },
  tls: { type: 'boolean', default: false },
  'timeout-ms': { type: 'string', default: '10000' },
  account: { type: 'string' },
  region: { type: 'string', default: '' },
  location: { type: 'string', multiple: true, default: [] },
  line: { type: 'string', multiple: true, default: [] },
  explain: { type: 'boolean', default: false },
  'ship-complete': { type: 'boolean', default: false },
  'need-by': { type: 'string', default: '' },
  'hold-key': { type: 'string' },
  'ttl-ms': { type: 'string', default: '900000' },
};
let opts;
let positionals;
try {
  ({ values: opts, positionals } = parseArgs({ options: OPTIONS, allowPositionals: true }));
} catch (error) {
  usage(error.message);
}

// "[ID=]SKU:QTY[:UOM]" -> QuoteLine. Quantities stay strings: int64 in, int64 out.
function quoteLine(text, index) {
  const match = /^(?:([^=]*)=)?([^:]+):(-?\d+)(?::(.*))?$/.exec(text);
  if (!match) usage(`--line ${text}: expected [ID=]SKU:QTY[:UOM]`);
  const [, lineId = String(index + 1), sku, quantity, uom = ''] = match;
  return { line_id: lineId, sku, quantity, uom };
}

// "SKU:QTY[:UOM]@LOCATION" -> ReserveLine.
function reserveLine(text) {
  const match = /^([^:@]+):(-?\d+)(?::([^@]*))?@(.+)$/.exec(text);
  if (!match) usage(`--line ${text}: expected SKU:QTY[:UOM]@LOCATION`);
  const [, sku, quantity, uom = '', location] = match;
  return { sku, location, quantity, uom };
}

const [command] = positionals;
if (!opts.account) usage('--account is required');
if (opts.line.length === 0) usage('at least one --line is required');

const requests = {
  quote: () => ['Quote', {
    account: opts.account,
    region: opts.region,
    locations: opts.location,
    lines: opts.line.map(quoteLine),
    explain: opts.explain,
  }],
  promise: () => ['Promise', {
    account: opts.account,
    region: opts.region,
    locations: opts.location,
    lines: opts.line.map(quoteLine),
    ship_complete: opts['ship-complete'],
    need_by: opts['need-by'],
  }],
  reserve: () => {
    if (!opts['hold-key']) usage('reserve needs --hold-key (your idempotency key for the hold)');
    return ['Reserve', {
      account: opts.account,
      hold_key: opts['hold-key'],
      lines: opts.line.map(reserveLine),
      ttl_ms: opts['ttl-ms'],
    }];
  },
};
if (!(command in requests)) usage(`unknown command ${JSON.stringify(command)}`);
const [method, request] = requests[command]();

const credentials = opts.tls ? grpc.credentials.createSsl() : grpc.credentials.createInsecure();
const client = new PriceAvailabilityService(opts.target, credentials);
const metadata = new grpc.Metadata();
if (opts.token) metadata.set('authorization', `Bearer ${opts.token}`);
const deadline = new Date(Date.now() + Number(opts['timeout-ms']));

client[method](request, metadata, { deadline }, (error, response) => {
  client.close();
  if (error) {
    // One line on stderr: the status name and the server's message (e.g. NOT_FOUND: …).
    const name = Object.keys(grpc.status).find((key) => grpc.status[key] === error.code);
    console.error(`${name || error.code}: ${error.details}`);
    process.exitCode = 1;
    return;
  }
  process.stdout.write(`${JSON.stringify(response, null, 2)}\n`);
});
