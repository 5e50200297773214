// OTLP/HTTP receiver for the integration tests. Decodes every request with
// the protobufjs decoders that @opentelemetry/otlp-transformer@0.52.1
// generated from the official OTLP protos, so our own proto/ files and our
// encoder are checked against an independent schema.
//
//   node otlp-receiver.js [--port N]      prints "LISTENING <port>"
//   ... --grpc-port N                      also OTLP/gRPC (TraceService/Export) on port N (0: any):
//                                          prints "LISTENING <port> GRPC <grpc port>"
//   ... --tls-cert F --tls-key F [--tls-ca F] [--require-client-cert]
//                                          gRPC over TLS (h2, ALPN), plus an HTTPS twin of the
//                                          HTTP receiver: "... HTTPS <https port>"; with
//                                          --require-client-cert both refuse clients without a
//                                          certificate signed by --tls-ca
//
// POST /v1/traces|metrics|logs   protobuf (gzip or not), recorded + decoded;
//                                Content-Type application/json: OTLP/JSON,
//                                checked strictly and decoded with the same
//                                generated types (decodeJson below)
// GET  /spans                    decoded spans, flattened (JSON)
// GET  /requests[?bodies=1]      every request: path, headers, size, status
// POST /reset                    forget everything
// POST /mode {"status":503,"retryAfter":"1","delayMs":0,"body":"why"}   answer like that
//                                (still recorded and decoded in /requests, but
//                                 the spans of a rejected export stay out of
//                                 /spans: only delivered spans count);
//                                 POST /mode {} answers 200 again
//      gRPC: {"grpcStatus":14,"grpcMessage":"why","retryInfoMs":250,"failCount":2,
//             "partialRejected":3,"partialMessage":"why"}: the next failCount calls (all
//             when absent) end with grpcStatus, with a google.rpc.RetryInfo detail when
//             retryInfoMs is given; partial* answer OK with partial_success
// GET  /metrics-data             decoded metrics requests (toObject)
// GET  /metric-points            every delivered metric data point, flattened (flattenMetrics)
// GET  /logs                     decoded log records, flattened (JSON; see flattenLogs)
//      gRPC: LogsService/Export is served next to TraceService/Export
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
let metricPoints = [];
let logs = [];
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
            traceId: hex(l.traceId),
            spanId: hex(l.spanId),
            traceState: l.traceState || '',
            attributes: attributes(l.attributes),
            droppedAttributesCount: l.droppedAttributesCount || 0,
          })),
          droppedLinksCount: s.droppedLinksCount || 0,
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

// One entry per data point: {name, unit, description, type (sum|gauge|histogram),
// temporality (1 delta, 2 cumulative), isMonotonic, attributes, startTimeUnixNano,
// timeUnixNano, value (sum/gauge), count, sum, min, max, bucketCounts, explicitBounds,
// exemplars [{traceId, spanId, value, timeUnixNano}], resource, scope}.
function flattenMetrics(req) {
  const out = [];
  const num = (p) => (p.asDouble !== undefined && p.asDouble !== null && p.value === 'asDouble' ? p.asDouble
    : p.asInt !== undefined && p.asInt !== null && p.value === 'asInt' ? longValue(p.asInt) : (p.asDouble || 0));
  const exemplar = (e) => ({
    traceId: hex(e.traceId), spanId: hex(e.spanId), value: num(e),
    timeUnixNano: e.timeUnixNano ? e.timeUnixNano.toString() : '0', attributes: attributes(e.filteredAttributes),
  });
  for (const rm of req.resourceMetrics || []) {
    const resource = attributes(rm.resource && rm.resource.attributes);
    for (const sm of rm.scopeMetrics || []) {
      const scope = { name: sm.scope ? sm.scope.name : '', version: sm.scope ? sm.scope.version : '' };
      for (const m of sm.metrics || []) {
        const base = { name: m.name, unit: m.unit || '', description: m.description || '', resource, scope };
        const data = m.sum || m.gauge || m.histogram;
        const type = m.sum ? 'sum' : m.gauge ? 'gauge' : m.histogram ? 'histogram' : 'other';
        for (const p of (data && data.dataPoints) || []) {
          const pt = {
            ...base, type, temporality: data.aggregationTemporality || 0, isMonotonic: !!data.isMonotonic,
            attributes: attributes(p.attributes),
            startTimeUnixNano: p.startTimeUnixNano ? p.startTimeUnixNano.toString() : '0',
            timeUnixNano: p.timeUnixNano ? p.timeUnixNano.toString() : '0',
            exemplars: (p.exemplars || []).map(exemplar),
          };
          if (type === 'histogram') {
            pt.count = longValue(p.count) || 0;
            pt.sum = p.sum;
            pt.min = p.min;
            pt.max = p.max;
            pt.bucketCounts = (p.bucketCounts || []).map(longValue);
            pt.explicitBounds = p.explicitBounds || [];
          } else {
            pt.value = num(p);
          }
          out.push(pt);
        }
      }
    }
  }
  return out;
}

// One entry per LogRecord, with its resource and scope (the logger name).
function flattenLogs(req) {
  const out = [];
  for (const rl of req.resourceLogs || []) {
    const resource = attributes(rl.resource && rl.resource.attributes);
    for (const sl of rl.scopeLogs || []) {
      const scope = { name: sl.scope ? sl.scope.name : '', version: sl.scope ? sl.scope.version : '' };
      for (const r of sl.logRecords || []) {
        out.push({
          timeUnixNano: r.timeUnixNano ? r.timeUnixNano.toString() : '0',
          observedTimeUnixNano: r.observedTimeUnixNano ? r.observedTimeUnixNano.toString() : '0',
          severityNumber: r.severityNumber || 0,
          severityText: r.severityText || '',
          body: anyValue(r.body),
          attributes: attributes(r.attributes),
          droppedAttributesCount: r.droppedAttributesCount || 0,
          flags: r.flags || 0,
          traceId: hex(r.traceId),
          spanId: hex(r.spanId),
          resource,
          scope,
        });
      }
    }
  }
  return out;
}

// ---- OTLP/JSON -----------------------------------------------------------
// otlp-transformer ships JSON serializers for exporters but no decoder, so
// requests are decoded the way its own JSON path builds them, backwards:
// JSON.parse, the OTLP-specific step (trace and span ids are hex, not the
// base64 that proto3 JSON uses for bytes), then fromObject of the same
// generated protobufjs types the protobuf path decodes with. fromObject
// forgives a lot (unknown names are skipped, any string is "base64"), so
// first every member name is checked against the generated type and every
// value against the OTLP JSON rules: a misspelt or snake_case name, base64
// ids, enum names, 64-bit integers as numbers fail the request with 400
// (stricter than a collector, which ignores unknown names: this receiver
// exists to catch our encoder's mistakes).
const P = root.opentelemetry.proto;
const jsonTypes = {
  ExportTraceServiceRequest: [collector.trace.v1.ExportTraceServiceRequest, { resourceSpans: 'ResourceSpans' }],
  ResourceSpans: [P.trace.v1.ResourceSpans, { resource: 'Resource', scopeSpans: 'ScopeSpans' }],
  Resource: [P.resource.v1.Resource, { attributes: 'KeyValue' }],
  ScopeSpans: [P.trace.v1.ScopeSpans, { scope: 'InstrumentationScope', spans: 'Span' }],
  InstrumentationScope: [P.common.v1.InstrumentationScope, { attributes: 'KeyValue' }],
  Span: [P.trace.v1.Span, { attributes: 'KeyValue', events: 'Event', links: 'Link', status: 'Status' }],
  Event: [P.trace.v1.Span.Event, { attributes: 'KeyValue' }],
  Link: [P.trace.v1.Span.Link, { attributes: 'KeyValue' }],
  Status: [P.trace.v1.Status, {}],
  KeyValue: [P.common.v1.KeyValue, { value: 'AnyValue' }],
  AnyValue: [P.common.v1.AnyValue, { arrayValue: 'ArrayValue', kvlistValue: 'KeyValueList' }],
  ArrayValue: [P.common.v1.ArrayValue, { values: 'AnyValue' }],
  KeyValueList: [P.common.v1.KeyValueList, { values: 'KeyValue' }],
};
const hexIdLength = { traceId: 32, spanId: 16, parentSpanId: 16 };
const int64Fields = new Set(['intValue', 'startTimeUnixNano', 'endTimeUnixNano', 'timeUnixNano']);
const enumFields = new Set(['kind', 'code']);
const uint32Fields = new Set(['flags', 'droppedAttributesCount', 'droppedEventsCount', 'droppedLinksCount']);

// Fields of the current OTLP protos that these generated types (OTLP proto
// 1.0) predate: Span.flags and Link.flags (field 16, proto 1.1). The
// protobuf decoder skips them as unknown fields; so does fromObject.
const newerFields = { Span: ['flags'], Link: ['flags'] };

// A field of the generated type (a plain prototype value), not a method or
// a oneof's virtual name.
function isField(Ctor, name) {
  const d = Object.getOwnPropertyDescriptor(Ctor.prototype, name);
  return !!d && 'value' in d && typeof d.value !== 'function';
}

function checkJsonValue(name, v, where) {
  const fail = (why) => { throw new Error(`OTLP/JSON: ${where}.${name}: ${why}: ${JSON.stringify(v)}`); };
  if (hexIdLength[name] !== undefined) {
    if (typeof v !== 'string' || !(v === '' ? name === 'parentSpanId' : new RegExp(`^[0-9a-f]{${hexIdLength[name]}}$`).test(v)))
      fail(`not ${hexIdLength[name]} lowercase hex digits`);
  } else if (int64Fields.has(name)) {
    if (typeof v !== 'string' || !/^-?[0-9]+$/.test(v)) fail('a 64-bit integer must be a decimal string');
  } else if (enumFields.has(name) || uint32Fields.has(name)) {
    if (!Number.isInteger(v) || v < 0) fail('must be an integer number');
  } else if (name === 'doubleValue') {
    if (typeof v !== 'number' && !['NaN', 'Infinity', '-Infinity'].includes(v)) fail('not a number');
  } else if (name === 'boolValue') {
    if (typeof v !== 'boolean') fail('not a boolean');
  } else if (name === 'bytesValue') {
    if (typeof v !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(v)) fail('not base64');
  } else if (typeof v !== 'string') {
    fail('not a string');
  }
}

// Walks obj as a message of jsonTypes[type]; converts hex ids to bytes in place.
function checkJson(obj, type, where) {
  const [Ctor, children] = jsonTypes[type];
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) throw new Error(`OTLP/JSON: ${where}: not an object`);
  for (const name of Object.keys(obj)) {
    if (!isField(Ctor, name) && !(newerFields[type] || []).includes(name)) throw new Error(`OTLP/JSON: ${where}: no field "${name}" in ${type}`);
    const v = obj[name];
    const child = children[name];
    if (child) {
      const repeated = Array.isArray(Ctor.prototype[name]);
      if (repeated !== Array.isArray(v)) throw new Error(`OTLP/JSON: ${where}.${name}: ${repeated ? 'not an array' : 'an array'}`);
      if (repeated) v.forEach((x, i) => checkJson(x, child, `${where}.${name}[${i}]`));
      else checkJson(v, child, `${where}.${name}`);
    } else {
      checkJsonValue(name, v, where);
      if (hexIdLength[name] !== undefined) obj[name] = Buffer.from(v, 'hex');
    }
  }
}

// Metrics and logs: only the OTLP-specific id conversion, no strict check.
function hexIdsToBytes(x) {
  if (Array.isArray(x)) return x.forEach(hexIdsToBytes);
  if (x === null || typeof x !== 'object') return;
  for (const k of Object.keys(x)) {
    if (hexIdLength[k] !== undefined && typeof x[k] === 'string') x[k] = Buffer.from(x[k], 'hex');
    else hexIdsToBytes(x[k]);
  }
}

function isJson(req) {
  return (req.headers['content-type'] || '').split(';')[0].trim().toLowerCase() === 'application/json';
}

function decodeJson(pathname, body) {
  const decoder = decoders[pathname];
  const obj = JSON.parse(body.toString('utf8'));
  if (pathname === '/v1/traces') checkJson(obj, 'ExportTraceServiceRequest', 'request');
  else hexIdsToBytes(obj);
  const msg = decoder.fromObject(obj);
  const problem = decoder.verify(msg);
  if (problem) throw new Error('OTLP/JSON: ' + problem);
  return msg;
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
    record.encoding = isJson(req) ? 'json' : 'protobuf';
    const msg = record.encoding === 'json' ? decodeJson(pathname, body) : decoder.decode(body);
    record.decoded = true;
    if (pathname === '/v1/traces') {
      const flat = flattenTraces(msg);
      record.spans = flat.length;
      if (!mode.status || mode.status < 300) spans.push(...flat);
    } else if (pathname === '/v1/metrics') {
      metrics.push(decoder.toObject(msg, { longs: String, bytes: String }));
      if (!mode.status || mode.status < 300) metricPoints.push(...flattenMetrics(msg));
    } else if (pathname === '/v1/logs') {
      const flat = flattenLogs(msg);
      record.logs = flat.length;
      if (!mode.status || mode.status < 300) logs.push(...flat);
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
    if (record.encoding === 'json') { // the answer speaks the request's encoding
      res.writeHead(200, { 'Content-Type': 'application/json' });
      return res.end('{}');
    }
    res.writeHead(200, { 'Content-Type': 'application/x-protobuf' });
    res.end();
  };
  if (mode.delayMs) setTimeout(reply, mode.delayMs); else reply();
}

function onRequest(req, res) {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const raw = Buffer.concat(chunks);
    const url = new URL(req.url, 'http://x');
    if (req.method === 'POST' && decoders[url.pathname]) return handleExport(req, res, raw, url.pathname);
    if (req.method === 'GET' && url.pathname === '/spans') return send(res, 200, JSON.stringify(spans));
    if (req.method === 'GET' && url.pathname === '/metrics-data') return send(res, 200, JSON.stringify(metrics));
    if (req.method === 'GET' && url.pathname === '/metric-points') return send(res, 200, JSON.stringify(metricPoints));
    if (req.method === 'GET' && url.pathname === '/logs') return send(res, 200, JSON.stringify(logs));
    if (req.method === 'GET' && url.pathname === '/requests') {
      const withBodies = url.searchParams.get('bodies') === '1';
      return send(res, 200, JSON.stringify(requests.map((r) => {
        if (withBodies) return r;
        const { body, ...rest } = r;
        return rest;
      })));
    }
    if (req.method === 'POST' && url.pathname === '/reset') {
      spans = []; requests = []; metrics = []; metricPoints = []; logs = []; mode = {};
      return send(res, 200, '{}');
    }
    if (req.method === 'POST' && url.pathname === '/mode') {
      try { mode = raw.length ? JSON.parse(raw.toString()) : {}; } catch (e) { return send(res, 400, '{}'); }
      return send(res, 200, JSON.stringify(mode));
    }
    if (req.method === 'GET' && url.pathname === '/health') return send(res, 200, '{}');
    send(res, 404, '{}');
  });
}
const server = http.createServer(onRequest);

// ---- OTLP/gRPC: kept apart from the HTTP receiver above ----

// A protobuf varint / length-delimited field, enough for google.rpc.Status.
function pbVarint(n) {
  const out = [];
  while (n > 127) { out.push((n & 127) | 128); n = Math.floor(n / 128); }
  out.push(n);
  return Buffer.from(out);
}
function pbField(num, wire, payload) {
  if (wire === 0) return Buffer.concat([pbVarint(num * 8), pbVarint(payload)]);
  return Buffer.concat([pbVarint(num * 8 + 2), pbVarint(payload.length), payload]);
}
// google.rpc.Status{code, message, details: [Any{RetryInfo{retry_delay: Duration}}]}
function statusDetails(code, message, retryInfoMs) {
  const duration = Buffer.concat([pbField(1, 0, Math.floor(retryInfoMs / 1000)),
    pbField(2, 0, (retryInfoMs % 1000) * 1000000)]);
  const retryInfo = pbField(1, 2, duration);
  const any = Buffer.concat([pbField(1, 2, Buffer.from('type.googleapis.com/google.rpc.RetryInfo')),
    pbField(2, 2, retryInfo)]);
  return Buffer.concat([pbField(1, 0, code), pbField(2, 2, Buffer.from(message || '')), pbField(3, 2, any)]);
}

const grpcServices = {
  traces: {
    path: '/opentelemetry.proto.collector.trace.v1.TraceService/Export',
    decode: (raw) => flattenTraces(collector.trace.v1.ExportTraceServiceRequest.decode(raw)),
    store: (flat) => spans.push(...flat), counted: 'spans',
    respond: (r) => collector.trace.v1.ExportTraceServiceResponse.encode(r).finish(), rejected: 'rejectedSpans',
  },
  logs: {
    path: '/opentelemetry.proto.collector.logs.v1.LogsService/Export',
    decode: (raw) => flattenLogs(collector.logs.v1.ExportLogsServiceRequest.decode(raw)),
    store: (flat) => logs.push(...flat), counted: 'logs',
    respond: (r) => collector.logs.v1.ExportLogsServiceResponse.encode(r).finish(), rejected: 'rejectedLogRecords',
  },
};

function grpcExport(grpc, call, callback, service = grpcServices.traces) {
  const raw = call.request; // already gunzipped by grpc-js when grpc-encoding says so
  const headers = {};
  for (const [k, v] of Object.entries(call.metadata.getMap())) headers[k] = Buffer.isBuffer(v) ? v.toString('base64') : v;
  const record = {
    path: service.path, method: 'POST', transport: 'grpc',
    headers, size: raw.length, status: 0, grpcStatus: 0, decoded: false, error: null, time: Date.now(),
    body: raw.toString('base64'),
  };
  requests.push(record);
  let flat;
  try {
    flat = service.decode(raw);
    record.decoded = true;
    record[service.counted] = flat.length;
  } catch (e) {
    record.error = String(e && e.message ? e.message : e);
    record.grpcStatus = record.status = grpc.status.INVALID_ARGUMENT;
    return callback({ code: grpc.status.INVALID_ARGUMENT, details: record.error });
  }
  const failing = mode.grpcStatus && (mode.failCount === undefined || mode.failCount > 0);
  const reply = () => {
    if (failing) {
      if (mode.failCount !== undefined) mode.failCount--;
      record.grpcStatus = record.status = mode.grpcStatus;
      const md = new grpc.Metadata();
      if (mode.retryInfoMs !== undefined) {
        md.set('grpc-status-details-bin', statusDetails(mode.grpcStatus, mode.grpcMessage, mode.retryInfoMs));
      }
      return callback({ code: mode.grpcStatus, details: mode.grpcMessage || '', metadata: md });
    }
    service.store(flat);
    const response = {};
    if (mode.partialRejected !== undefined || mode.partialMessage !== undefined) {
      response.partialSuccess = { [service.rejected]: mode.partialRejected || 0, errorMessage: mode.partialMessage || '' };
    }
    callback(null, service.respond(response));
  };
  if (mode.delayMs) setTimeout(reply, mode.delayMs); else reply();
}

function grpcMetricsExport(grpc, call, callback) {
  const raw = call.request;
  const record = {
    path: '/opentelemetry.proto.collector.metrics.v1.MetricsService/Export', method: 'POST', transport: 'grpc',
    headers: {}, size: raw.length, status: 0, grpcStatus: 0, decoded: false, error: null, time: Date.now(),
    body: raw.toString('base64'),
  };
  requests.push(record);
  try {
    const msg = collector.metrics.v1.ExportMetricsServiceRequest.decode(raw);
    record.decoded = true;
    metrics.push(collector.metrics.v1.ExportMetricsServiceRequest.toObject(msg, { longs: String, bytes: String }));
    metricPoints.push(...flattenMetrics(msg));
  } catch (e) {
    record.error = String(e && e.message ? e.message : e);
    record.grpcStatus = record.status = grpc.status.INVALID_ARGUMENT;
    return callback({ code: grpc.status.INVALID_ARGUMENT, details: record.error });
  }
  callback(null, collector.metrics.v1.ExportMetricsServiceResponse.encode({}).finish());
}

function startGrpc(port, tls, done) {
  const grpc = require('@grpc/grpc-js');
  const server = new grpc.Server();
  const raw = (b) => b;
  server.addService({
    Export: {
      path: '/opentelemetry.proto.collector.trace.v1.TraceService/Export', requestStream: false,
      responseStream: false, requestSerialize: raw, requestDeserialize: raw,
      responseSerialize: raw, responseDeserialize: raw,
    },
  }, { Export: (call, callback) => grpcExport(grpc, call, callback) });
  // MetricsService/Export: decoded like /v1/metrics, recorded in /requests.
  server.addService({
    Export: {
      path: '/opentelemetry.proto.collector.metrics.v1.MetricsService/Export', requestStream: false,
      responseStream: false, requestSerialize: raw, requestDeserialize: raw,
      responseSerialize: raw, responseDeserialize: raw,
    },
  }, { Export: (call, callback) => grpcMetricsExport(grpc, call, callback) });
  server.addService({
    Export: {
      path: grpcServices.logs.path, requestStream: false,
      responseStream: false, requestSerialize: raw, requestDeserialize: raw,
      responseSerialize: raw, responseDeserialize: raw,
    },
  }, { Export: (call, callback) => grpcExport(grpc, call, callback, grpcServices.logs) });
  const creds = tls
    ? grpc.ServerCredentials.createSsl(tls.ca || null, [{ cert_chain: tls.cert, private_key: tls.key }],
      !!tls.requireClientCert)
    : grpc.ServerCredentials.createInsecure();
  server.bindAsync('127.0.0.1:' + port, creds, (err, bound) => {
    if (err) { process.stderr.write('gRPC bind failed: ' + err.message + '\n'); process.exit(1); }
    done(server, bound);
  });
}

function argValue(name) {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
}

const port = Number(argValue('--port') || 0);
const grpcPort = argValue('--grpc-port');
const fs = require('fs');
const tls = argValue('--tls-cert') ? {
  cert: fs.readFileSync(argValue('--tls-cert')), key: fs.readFileSync(argValue('--tls-key')),
  ca: argValue('--tls-ca') ? fs.readFileSync(argValue('--tls-ca')) : undefined,
  requireClientCert: process.argv.includes('--require-client-cert'),
} : null;
let grpcServer = null;
let httpsServer = null;
server.keepAliveTimeout = 60000;
server.listen(port, '127.0.0.1', () => {
  let line = 'LISTENING ' + server.address().port;
  const startHttps = () => {
    if (!tls) return process.stdout.write(line + '\n');
    httpsServer = require('https').createServer({
      cert: tls.cert, key: tls.key, ca: tls.ca, requestCert: tls.requireClientCert,
      rejectUnauthorized: tls.requireClientCert,
    }, onRequest);
    httpsServer.listen(0, '127.0.0.1', () => {
      line += ' HTTPS ' + httpsServer.address().port;
      process.stdout.write(line + '\n');
    });
  };
  if (grpcPort === undefined) return startHttps();
  startGrpc(Number(grpcPort), tls, (g, bound) => {
    grpcServer = g;
    line += ' GRPC ' + bound;
    startHttps();
  });
});
function shutdown() {
  if (grpcServer) grpcServer.forceShutdown();
  if (httpsServer) { httpsServer.close(); httpsServer.closeAllConnections(); }
  server.close(() => process.exit(0));
  server.closeAllConnections(); // keep-alive clients and delayed answers must not hold us up
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
