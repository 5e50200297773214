"""The test receiver's gRPC side, checked with an independent client
(@grpc/grpc-js's own, encoding with the official OTLP schema): what the
agent's gRPC tests rely on is the receiver, not our exporter, being right."""
import json
import os
import subprocess

from grpc_receiver import RESOURCE_EXHAUSTED, UNAVAILABLE, GrpcReceiver
from otlp import RECEIVER

CLIENT = r"""
const grpc = require('@grpc/grpc-js');
const root = require('@opentelemetry/otlp-transformer/build/src/generated/root');
const c = root.opentelemetry.proto.collector.trace.v1;
const [target, compression] = process.argv.slice(1);
const Client = grpc.makeGenericClientConstructor({
  Export: { path: '/opentelemetry.proto.collector.trace.v1.TraceService/Export', requestStream: false,
            responseStream: false, requestSerialize: (b) => b, requestDeserialize: (b) => b,
            responseSerialize: (b) => b, responseDeserialize: (b) => b } });
const options = compression === 'gzip' ? { 'grpc.default_compression_algorithm': 2 } : {};
const client = new Client(target, grpc.credentials.createInsecure(), options);
const req = c.ExportTraceServiceRequest.encode({ resourceSpans: [{
  resource: { attributes: [{ key: 'service.name', value: { stringValue: 'indep' } }] },
  scopeSpans: [{ scope: { name: 's' }, spans: [{
    traceId: Buffer.alloc(16, 0xab), spanId: Buffer.alloc(8, 0xcd), name: 'independent', kind: 2,
    startTimeUnixNano: 1, endTimeUnixNano: 2,
    attributes: [{ key: 'k', value: { intValue: 7 } }] }] }] }] }).finish();
client.Export(Buffer.from(req), (err, res) => {
  const out = { code: err ? err.code : 0, details: err ? err.details : '' };
  if (err && err.metadata) {
    const bin = err.metadata.get('grpc-status-details-bin')[0];
    if (bin) out.detailsBin = Buffer.from(bin).toString('hex');
  }
  if (res) out.response = c.ExportTraceServiceResponse.toObject(c.ExportTraceServiceResponse.decode(res),
                                                               { longs: Number });
  process.stdout.write(JSON.stringify(out));
  client.close();
});
"""


def call(receiver, compression=""):
    r = subprocess.run(["node", "-e", CLIENT, "127.0.0.1:%d" % receiver.grpc_port, compression],
                       cwd=os.path.dirname(RECEIVER), capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_a_grpc_export_lands_in_spans_plain_and_gzip():
    with GrpcReceiver() as receiver:
        for compression in ("", "gzip"):
            assert call(receiver, compression) == {"code": 0, "details": "", "response": {}}
        spans = receiver.wait_for_spans(count=2)
        assert [s["name"] for s in spans] == ["independent"] * 2
        s = spans[0]
        assert s["traceId"] == "ab" * 16 and s["spanId"] == "cd" * 8 and s["kind"] == 2
        assert s["attributes"] == {"k": 7} and s["resource"]["service.name"] == "indep"
        reqs = receiver.grpc_requests()
        assert [r["decoded"] for r in reqs] == [True, True]
        assert receiver.bodies(path=reqs[0]["path"])[0] == receiver.bodies(path=reqs[0]["path"])[1]


def test_chosen_status_fail_count_retry_info_and_partial_success():
    with GrpcReceiver() as receiver:
        receiver.set_grpc_mode(status=UNAVAILABLE, message="later", fail_count=1)
        assert call(receiver) == {"code": UNAVAILABLE, "details": "later"}
        assert call(receiver)["code"] == 0, "fail_count=1: the next call succeeds"
        assert len(receiver.spans()) == 1, "a refused export's spans stay out of /spans"
        receiver.set_grpc_mode(status=RESOURCE_EXHAUSTED, message="slow down", retry_info_ms=1500)
        out = call(receiver)
        assert out["code"] == RESOURCE_EXHAUSTED
        # google.rpc.Status{code 8, message, details[Any{RetryInfo{Duration{1 s, 500000000 ns}}}]}
        status = bytes.fromhex(out["detailsBin"])
        assert b"type.googleapis.com/google.rpc.RetryInfo" in status
        assert bytes.fromhex("0a0808011080cab5ee01") in status
        receiver.set_grpc_mode(partial_rejected=2, partial_message="too big")
        assert call(receiver)["response"] == {"partialSuccess": {"rejectedSpans": 2, "errorMessage": "too big"}}
        receiver.set_grpc_mode()
        assert call(receiver)["response"] == {}
