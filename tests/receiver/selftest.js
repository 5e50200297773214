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
  child.kill('SIGTERM');
  console.log(passed + ' passed, ' + failed + ' failed');
  process.exit(failed ? 1 : 0);
}

main().catch((e) => { console.error(e); console.log('0 passed, 1 failed'); process.exit(1); });
