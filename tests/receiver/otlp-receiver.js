// OTLP/HTTP receiver for the integration tests. Decodes every request with
// the protobufjs decoders that @opentelemetry/otlp-transformer@0.52.1
// generated from the official OTLP protos, so our own proto/ files and our
// encoder are checked against an independent schema.
//
//   node otlp-receiver.js [--port N]      prints "LISTENING <port>"
//
// POST /v1/traces|metrics|logs   protobuf (gzip or not), recorded + decoded
// GET  /spans                    decoded spans, flattened (JSON)
// GET  /requests[?bodies=1]      every request: path, headers, size, status
// POST /reset                    forget everything
// POST /mode {"status":503,"retryAfter":"1","delayMs":0,"body":"why"}   answer like that
//                                (still recorded and decoded in /requests, but
//                                 the spans of a rejected export stay out of
//                                 /spans: only delivered spans count);
//                                 POST /mode {} answers 200 again
// GET  /metrics-data             decoded metrics requests (toObject)
// GET  /health                   200
'use strict';
const http = require('http');
const zlib = require('zlib');
const root = require('@opentelemetry/otlp-transformer/build/src/generated/root');

const collector = root.opentelemetry.proto.collector;
const decoders = {
  '/v1/traces': collector.trace.v1.ExportTraceServiceRequest,
  '/v1/metrics': collector.metrics.v1.ExportMetricsServiceRequest,
  '/v1/logs': collector.logs.v1.ExportLogsServiceRequest,
};

let spans = [];
let requests = [];
let metrics = [];
let mode = {};

const hex = (b) => (b && b.length ? Buffer.from(b).toString('hex') : '');

function longValue(v) {
  if (v === null || v === undefined) return v;
  if (typeof v === 'number') return v;
  const n = Number(v.toString());
  return Number.isSafeInteger(n) ? n : v.toString();
}

function anyValue(v) {
  if (!v) return null;
  if (v.stringValue !== undefined && v.stringValue !== null) return v.stringValue;
  if (v.boolValue !== undefined && v.boolValue !== null) return v.boolValue;
  if (v.intValue !== undefined && v.intValue !== null) return longValue(v.intValue);
  if (v.doubleValue !== undefined && v.doubleValue !== null) return v.doubleValue;
  if (v.arrayValue) return (v.arrayValue.values || []).map(anyValue);
  if (v.kvlistValue) return attributes(v.kvlistValue.values);
  if (v.bytesValue) return hex(v.bytesValue);
  return null;
}

function attributes(kvs) {
  const out = {};
  for (const kv of kvs || []) out[kv.key] = anyValue(kv.value);
  return out;
}

function flattenTraces(req) {
  const out = [];
  for (const rs of req.resourceSpans || []) {
    const resource = attributes(rs.resource && rs.resource.attributes);
    for (const ss of rs.scopeSpans || []) {
      const scope = { name: ss.scope ? ss.scope.name : '', version: ss.scope ? ss.scope.version : '' };
      for (const s of ss.spans || []) {
        out.push({
          traceId: hex(s.traceId),
          spanId: hex(s.spanId),
          parentSpanId: hex(s.parentSpanId),
          name: s.name,
          kind: s.kind || 0,
          startTimeUnixNano: s.startTimeUnixNano ? s.startTimeUnixNano.toString() : '0',
          endTimeUnixNano: s.endTimeUnixNano ? s.endTimeUnixNano.toString() : '0',
          attributes: attributes(s.attributes),
          droppedAttributesCount: s.droppedAttributesCount || 0,
          events: (s.events || []).map((e) => ({
            name: e.name,
            timeUnixNano: e.timeUnixNano ? e.timeUnixNano.toString() : '0',
            attributes: attributes(e.attributes),
          })),
          droppedEventsCount: s.droppedEventsCount || 0,
          links: (s.links || []).map((l) => ({
            traceId: hex(l.traceId), spanId: hex(l.spanId), attributes: attributes(l.attributes),
          })),
          status: { code: (s.status && s.status.code) || 0, message: (s.status && s.status.message) || '' },
          traceState: s.traceState || '',
          flags: s.flags || 0,
          resource,
          scope,
        });
      }
    }
  }
  return out;
}

function send(res, status, body, type) {
  res.writeHead(status, { 'Content-Type': type || 'application/json' });
  res.end(body);
}

function handleExport(req, res, raw, pathname) {
  const decoder = decoders[pathname];
  const record = {
    path: pathname, method: req.method, headers: req.headers, size: raw.length,
    status: 200, decoded: false, error: null, time: Date.now(),
  };
  requests.push(record);
  let body = raw;
  record.body = raw.toString('base64');
  try {
    if ((req.headers['content-encoding'] || '').toLowerCase() === 'gzip') body = zlib.gunzipSync(raw);
    record.body = body.toString('base64');
    const msg = decoder.decode(body);
    record.decoded = true;
    if (pathname === '/v1/traces') {
      const flat = flattenTraces(msg);
      record.spans = flat.length;
      if (!mode.status || mode.status < 300) spans.push(...flat);
    } else if (pathname === '/v1/metrics') {
      metrics.push(decoder.toObject(msg, { longs: String, bytes: String }));
    }
  } catch (e) {
    record.error = String(e && e.message ? e.message : e);
    record.status = 400;
    return send(res, 400, JSON.stringify({ error: record.error }));
  }
  const reply = () => {
    if (mode.status && mode.status !== 200) {
      record.status = mode.status;
      const headers = { 'Content-Type': 'application/x-protobuf' };
      if (mode.retryAfter !== undefined) headers['Retry-After'] = String(mode.retryAfter);
      if (mode.body !== undefined) headers['Content-Type'] = 'text/plain';
      res.writeHead(mode.status, headers);
      return res.end(mode.body);
    }
    res.writeHead(200, { 'Content-Type': 'application/x-protobuf' });
    res.end();
  };
  if (mode.delayMs) setTimeout(reply, mode.delayMs); else reply();
}

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const raw = Buffer.concat(chunks);
    const url = new URL(req.url, 'http://x');
    if (req.method === 'POST' && decoders[url.pathname]) return handleExport(req, res, raw, url.pathname);
    if (req.method === 'GET' && url.pathname === '/spans') return send(res, 200, JSON.stringify(spans));
    if (req.method === 'GET' && url.pathname === '/metrics-data') return send(res, 200, JSON.stringify(metrics));
    if (req.method === 'GET' && url.pathname === '/requests') {
      const withBodies = url.searchParams.get('bodies') === '1';
      return send(res, 200, JSON.stringify(requests.map((r) => {
        if (withBodies) return r;
        const { body, ...rest } = r;
        return rest;
      })));
    }
    if (req.method === 'POST' && url.pathname === '/reset') {
      spans = []; requests = []; metrics = []; mode = {};
      return send(res, 200, '{}');
    }
    if (req.method === 'POST' && url.pathname === '/mode') {
      try { mode = raw.length ? JSON.parse(raw.toString()) : {}; } catch (e) { return send(res, 400, '{}'); }
      return send(res, 200, JSON.stringify(mode));
    }
    if (req.method === 'GET' && url.pathname === '/health') return send(res, 200, '{}');
    send(res, 404, '{}');
  });
});

const portArg = process.argv.indexOf('--port');
const port = portArg > 0 ? Number(process.argv[portArg + 1]) : 0;
server.keepAliveTimeout = 60000;
server.listen(port, '127.0.0.1', () => {
  process.stdout.write('LISTENING ' + server.address().port + '\n');
});
function shutdown() {
  server.close(() => process.exit(0));
  server.closeAllConnections(); // keep-alive clients and delayed answers must not hold us up
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
