// Self-test of the receiver: encode a request with the official schema,
// post it plain and gzipped, and read it back flattened.
'use strict';
const { spawn } = require('child_process');
const http = require('http');
const path = require('path');
const zlib = require('zlib');
const root = require('@opentelemetry/otlp-transformer/build/src/generated/root');

let passed = 0;
let failed = 0;
function check(name, cond) {
  if (cond) passed++; else { failed++; console.error('FAIL: ' + name); }
}

function request(port, method, p, body, headers) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path: p, headers }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    if (body) req.write(body);
    req.end();
  });
}

// OTLP/JSON: a request in the encoding the agent writes decodes to the same
// flattened spans; each way of breaking the OTLP JSON rules is refused.
function jsonRequest(span) {
  return {
    resourceSpans: [{
      resource: { attributes: [{ key: 'service.name', value: { stringValue: 'json' } },
        { key: 'process.pid', value: { intValue: '42' } }] },
      scopeSpans: [{ scope: { name: 's', version: '1' }, spans: [span] }],
    }],
  };
}
function jsonSpan() {
  return {
    traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7', parentSpanId: 'b7ad6b7169203331',
    traceState: 'a=b', name: 'GET /j', kind: 2,
    startTimeUnixNano: '1700000000123456789', endTimeUnixNano: '1700000000987654321',
    attributes: [
      { key: 's', value: { stringValue: 'v\n"' } },
      { key: 'i', value: { intValue: '-9223372036854775808' } },
      { key: 'd', value: { doubleValue: 0.1 } },
      { key: 'nan', value: { doubleValue: 'NaN' } },
      { key: 'b', value: { boolValue: false } },
      { key: 'empty', value: { arrayValue: {} } },
      { key: 'a', value: { arrayValue: { values: [{ intValue: '1' }, { stringValue: 'x' }] } } },
      { key: 'kv', value: { kvlistValue: { values: [{ key: 'k', value: { stringValue: 'v' } }] } } },
      { key: 'bytes', value: { bytesValue: Buffer.from([1, 2, 255]).toString('base64') } },
    ],
    droppedAttributesCount: 3,
    events: [{ timeUnixNano: '5', name: 'exception', attributes: [{ key: 'exception.type', value: { stringValue: 'E' } }] }, {}],
    droppedEventsCount: 1,
    links: [{ traceId: '0af7651916cd43dd8448eb211c80319c', spanId: '00f067aa0ba902b7' },
      { traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: 'b7ad6b7169203331', traceState: 'k=v',
        attributes: [{ key: 'why', value: { stringValue: 'batch' } }], droppedAttributesCount: 2, flags: 769 }],
    droppedLinksCount: 4,
    status: { message: 'bad', code: 2 },
    flags: 769,
  };
}

async function jsonChecks(port) {
  await request(port, 'POST', '/reset');
  const body = Buffer.from(JSON.stringify(jsonRequest(jsonSpan())));
  const headers = { 'Content-Type': 'application/json' };
  const plain = await request(port, 'POST', '/v1/traces', body, headers);
  check('json accepted: ' + plain.body, plain.status === 200);
  check('json answered in json', plain.body.toString() === '{}');
  const gz = await request(port, 'POST', '/v1/traces', zlib.gzipSync(body),
    { 'Content-Type': 'application/json; charset=utf-8', 'Content-Encoding': 'gzip' });
  check('gzipped json accepted: ' + gz.body, gz.status === 200);
  const spans = JSON.parse((await request(port, 'GET', '/spans')).body.toString());
  check('two json spans', spans.length === 2);
  const s = spans[0] || { attributes: {}, resource: {}, status: {}, events: [], links: [] };
  check('json ids', s.traceId === '4bf92f3577b34da6a3ce929d0e0e4736' && s.spanId === '00f067aa0ba902b7' &&
    s.parentSpanId === 'b7ad6b7169203331');
  check('json times exact past 2^53', s.startTimeUnixNano === '1700000000123456789' &&
    s.endTimeUnixNano === '1700000000987654321');
  const a = s.attributes;
  check('json attrs ' + JSON.stringify(a), a.s === 'v\n"' && a.i === '-9223372036854775808' && a.d === 0.1 &&
    a.nan === null && a.b === false && JSON.stringify(a.empty) === '[]' && JSON.stringify(a.a) === '[1,"x"]' &&
    a.kv.k === 'v' && a.bytes === '0102ff');
  check('json resource int', s.resource['process.pid'] === 42 && s.resource['service.name'] === 'json');
  check('json counts, events, links, status, flags', s.droppedAttributesCount === 3 && s.droppedEventsCount === 1 &&
    s.events.length === 2 && s.events[0].attributes['exception.type'] === 'E' && s.events[0].timeUnixNano === '5' &&
    s.links[0].traceId === '0af7651916cd43dd8448eb211c80319c' && s.status.code === 2 && s.status.message === 'bad' &&
    s.kind === 2 && s.traceState === 'a=b');
  check('json links flattened ' + JSON.stringify(s.links) + ' ' + s.droppedLinksCount,
    JSON.stringify(s.links) === JSON.stringify([
      { traceId: '0af7651916cd43dd8448eb211c80319c', spanId: '00f067aa0ba902b7', traceState: '', attributes: {},
        droppedAttributesCount: 0 },
      { traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: 'b7ad6b7169203331', traceState: 'k=v',
        attributes: { why: 'batch' }, droppedAttributesCount: 2 }]) && s.droppedLinksCount === 4);
  const broken = {
    'base64 trace id': (sp) => { sp.traceId = Buffer.from(sp.traceId, 'hex').toString('base64'); },
    'uppercase hex': (sp) => { sp.spanId = sp.spanId.toUpperCase(); },
    'snake_case name': (sp) => { sp.start_time_unix_nano = sp.startTimeUnixNano; delete sp.startTimeUnixNano; },
    'enum by name': (sp) => { sp.kind = 'SPAN_KIND_SERVER'; },
    'int64 as a number': (sp) => { sp.attributes[1].value.intValue = 5; },
    'time as a number': (sp) => { sp.endTimeUnixNano = 5; },
    'unknown attribute value kind': (sp) => { sp.attributes[0].value = { textValue: 'x' }; },
    'double as a word': (sp) => { sp.attributes[2].value.doubleValue = 'zero'; },
    'flags as a string': (sp) => { sp.flags = '769'; },
    'base64 link span id': (sp) => { sp.links[1].spanId = Buffer.from(sp.links[1].spanId, 'hex').toString('base64'); },
    'link dropped count as a string': (sp) => { sp.droppedLinksCount = '4'; },
  };
  for (const [why, breakIt] of Object.entries(broken)) {
    const sp = jsonSpan();
    breakIt(sp);
    const r = await request(port, 'POST', '/v1/traces', Buffer.from(JSON.stringify(jsonRequest(sp))), headers);
    check('refused: ' + why + ' (' + r.status + ')', r.status === 400);
  }
  const notJson = await request(port, 'POST', '/v1/traces', Buffer.from('{"resourceSpans":['), headers);
  check('truncated json refused', notJson.status === 400);
  const after = JSON.parse((await request(port, 'GET', '/spans')).body.toString());
  check('refused requests add no spans', after.length === 2);
}

async function main() {
  const child = spawn(process.execPath, [path.join(__dirname, 'otlp-receiver.js')], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise((resolve) => {
    child.stdout.on('data', (d) => {
      const m = /LISTENING (\d+)/.exec(d.toString());
      if (m) resolve(Number(m[1]));
    });
  });
  const T = root.opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest;
  const msg = T.create({
    resourceSpans: [{
      resource: { attributes: [{ key: 'service.name', value: { stringValue: 'selftest' } }] },
      scopeSpans: [{
        scope: { name: 's', version: '1' },
        spans: [{
          traceId: Buffer.from('4bf92f3577b34da6a3ce929d0e0e4736', 'hex'),
          spanId: Buffer.from('00f067aa0ba902b7', 'hex'),
          name: 'GET /x', kind: 2, startTimeUnixNano: 1, endTimeUnixNano: 2,
          attributes: [
            { key: 's', value: { stringValue: 'v' } },
            { key: 'i', value: { intValue: 42 } },
            { key: 'd', value: { doubleValue: 1.5 } },
            { key: 'b', value: { boolValue: true } },
            { key: 'a', value: { arrayValue: { values: [{ intValue: 1 }, { intValue: 2 }] } } },
          ],
          status: { code: 2, message: 'bad' },
        }],
      }],
    }],
  });
  const bytes = T.encode(msg).finish();
  const plain = await request(port, 'POST', '/v1/traces', bytes, { 'Content-Type': 'application/x-protobuf' });
  check('plain accepted', plain.status === 200);
  const gz = await request(port, 'POST', '/v1/traces', zlib.gzipSync(bytes),
    { 'Content-Type': 'application/x-protobuf', 'Content-Encoding': 'gzip' });
  check('gzip accepted', gz.status === 200);
  const bad = await request(port, 'POST', '/v1/traces', Buffer.from([0xff, 0xff, 0xff]), {});
  check('garbage rejected', bad.status === 400);
  const spans = JSON.parse((await request(port, 'GET', '/spans')).body.toString());
  check('two spans', spans.length === 2);
  const s = spans[0] || { attributes: {}, resource: {}, status: {} };
  check('trace id hex', s.traceId === '4bf92f3577b34da6a3ce929d0e0e4736');
  check('span id hex', s.spanId === '00f067aa0ba902b7');
  check('no parent', s.parentSpanId === '');
  check('kind', s.kind === 2);
  check('attrs', s.attributes.s === 'v' && s.attributes.i === 42 && s.attributes.d === 1.5 &&
    s.attributes.b === true && JSON.stringify(s.attributes.a) === '[1,2]');
  check('resource', s.resource['service.name'] === 'selftest');
  check('status', s.status.code === 2 && s.status.message === 'bad');
  await jsonChecks(port);
  child.kill('SIGTERM');
  console.log(passed + ' passed, ' + failed + ' failed');
  process.exit(failed ? 1 : 0);
}

main().catch((e) => { console.error(e); console.log('0 passed, 1 failed'); process.exit(1); });
