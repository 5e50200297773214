"""Peer benchmarks: bare Flask, TigerOps, OpenTelemetry Python, Sentry's SDK
and ddtrace on one interpreter and one Flask stack (venvs.sh), the same
workloads, each agent in turn within every round (rotated each round), all
exporters sending to a local sink on 127.0.0.1.

    bash bench/peers/venvs.sh                        # once: build/peers/{bare,otel,sentry,ddtrace}
    /usr/bin/python3 bench/peers/run.py [--quick] [--prefix build/dev/install] [--only a,b,...]

Workloads: (a) in-process hello loop, (b) in-process realistic request
(3 ORM queries on SQLite, a Jinja2 render, a Redis GET), both as CPU
us/request (all threads, after the agent's own flush) and as callgrind
instructions/request; (c) gunicorn 1 sync worker + wrk --latency at 100%
sampling, (d) the same at 10% (each agent's own sampling setting); (e) the
worker's RSS after N requests; (f) start-up (`import app`) under each agent's
zero-code launcher. Writes bench/peers/results.md and prints it. Not a
timed test: the figures belong to the machine; on a shared one, trust the
callgrind columns and read the timing spreads."""
import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
from servers import RedisServer  # noqa: E402
from util import free_port  # noqa: E402

AGENTS = ["bare", "tigerops", "otel", "sentry", "ddtrace"]
TITLES = {"bare": "bare", "tigerops": "TigerOps", "otel": "OpenTelemetry", "sentry": "Sentry",
          "ddtrace": "ddtrace"}
VENV = {"bare": "bare", "tigerops": "bare", "otel": "otel", "sentry": "sentry", "ddtrace": "ddtrace"}
CG_WARMUP = 50
SINK_KEY = {"tigerops": "otlp", "otel": "otlp", "sentry": "sentry", "ddtrace": "ddtrace"}

# Sized for a 2-core machine shared with other work: quick checks the harness;
# full is what the README's figures come from.
QUICK = dict(rounds=2, hello=300, hello_warmup=100, real=60, real_warmup=20, wrk_seconds=2, wrk_rounds=1,
             rss_requests=1000, startup_rounds=2, cg_hello=20, cg_real=5, cg_startup=False)
FULL = dict(rounds=4, hello=800, hello_warmup=200, real=150, real_warmup=50, wrk_seconds=5, wrk_rounds=3,
            rss_requests=30000, startup_rounds=5, cg_hello=100, cg_real=20, cg_startup=False)


class Bench:
    def __init__(self, args, cfg):
        self.args, self.cfg = args, cfg
        self.venvs = os.path.abspath(args.venvs)
        self.prefix = os.path.abspath(args.prefix)
        self.lib = os.path.join(self.prefix, "lib", "libtigerops.so")
        for path in [self.lib] + [os.path.join(self.venvs, v, "bin", "python") for v in set(VENV.values())]:
            if not os.path.exists(path):
                sys.exit("missing %s: build TigerOps into the prefix and run bench/peers/venvs.sh" % path)
        self.tmp = tempfile.mkdtemp(prefix="tigerops-peers-")
        self.db = os.path.join(self.tmp, "app.db")
        self.redis = RedisServer()
        self.sink = subprocess.Popen(["/usr/bin/python3", os.path.join(HERE, "sink.py"), "0"],
                                     stdout=subprocess.PIPE, text=True)
        self.sink_port = int(self.sink.stdout.readline().split()[1])
        self.base = {k: v for k, v in os.environ.items()
                     if not k.startswith(("TIGEROPS_", "OTEL_", "DD_", "SENTRY_", "PEERS_"))
                     and k not in ("LD_PRELOAD", "PYTHONPATH", "PYTHONHOME")}
        self.base.update(PEERS_DB=self.db, PEERS_REDIS=self.redis.url, PYTHONHASHSEED="0", PYTHONPATH=HERE)
        subprocess.run([self.python("bare"), os.path.join(HERE, "app.py"), "init", self.db], check=True,
                       env=self.base)
        subprocess.run(["redis-cli", "-u", self.redis.url, "set", "greeting", "hello from redis"],
                       check=True, capture_output=True)
        self.launcher_paths = {a: self._launcher_pythonpath(a) for a in ("otel", "ddtrace")}

    def close(self):
        self.sink.terminate()
        self.redis.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def python(self, agent):
        return os.path.join(self.venvs, VENV[agent], "bin", "python")

    def launcher(self, agent):
        """The agent's zero-code launcher (Sentry has none: it starts in app.py's code)."""
        bin_ = os.path.join(self.venvs, VENV[agent], "bin")
        return {"tigerops": [os.path.join(self.prefix, "bin", "tigerops-run")],
                "otel": [os.path.join(bin_, "opentelemetry-instrument")],
                "ddtrace": [os.path.join(bin_, "ddtrace-run")]}.get(agent, [])

    def _launcher_pythonpath(self, agent):
        """What opentelemetry-instrument / ddtrace-run hand the program: both only
        prepend their sitecustomize folder to PYTHONPATH and exec. Taking that once
        lets every workload (and valgrind) run the venv's python directly."""
        env = self.settings(agent, 1.0, launcher=True)
        out = subprocess.run(self.launcher(agent) + [self.python(agent), "-c",
                             "import os; print(os.environ['PYTHONPATH'])"],
                             env=env, check=True, capture_output=True, text=True, cwd=self.tmp)
        return out.stdout.strip().splitlines()[-1]

    def settings(self, agent, rate, launcher=False):
        """The agent's environment at sampling rate `rate`: export on, to the sink."""
        env = dict(self.base)
        sink = "http://127.0.0.1:%d" % self.sink_port
        if agent == "tigerops":
            env.update(TIGEROPS_ENDPOINT=sink, TIGEROPS_SAMPLE_RATE=str(rate), TIGEROPS_SERVICE_NAME="peers")
            if not launcher:
                env["LD_PRELOAD"] = self.lib
        elif agent == "otel":
            env.update(OTEL_SERVICE_NAME="peers", OTEL_TRACES_EXPORTER="otlp", OTEL_METRICS_EXPORTER="none",
                       OTEL_LOGS_EXPORTER="none", OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
                       OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=sink + "/v1/traces",
                       OTEL_TRACES_SAMPLER="parentbased_traceidratio", OTEL_TRACES_SAMPLER_ARG=str(rate),
                       # The default queue (2,048) drops spans under a tight loop; the
                       # comparison is with everything exported.
                       OTEL_BSP_MAX_QUEUE_SIZE="65536")
        elif agent == "sentry":
            env.update(PEERS_SENTRY_DSN="http://public@127.0.0.1:%d/1" % self.sink_port,
                       PEERS_SAMPLE_RATE=str(rate))
        elif agent == "ddtrace":
            env.update(DD_TRACE_AGENT_URL=sink, DD_SERVICE="peers", DD_REMOTE_CONFIGURATION_ENABLED="false",
                       DD_CRASHTRACKING_ENABLED="false")
            if rate < 1.0:
                # A sampling rule, and no cap on kept traces/s (the rule's default
                # limiter is 100/s, which would sample below the rate asked for).
                env.update(DD_TRACE_SAMPLING_RULES=json.dumps([{"sample_rate": rate}]),
                           DD_TRACE_RATE_LIMIT="1000000")
        if agent in ("otel", "ddtrace") and not launcher:
            env["PYTHONPATH"] = self.launcher_paths[agent]
        return env

    def sink_stats(self):
        return json.loads(urllib.request.urlopen("http://127.0.0.1:%d/stats" % self.sink_port).read())

    def check_exported(self, agent, before):
        if agent == "bare":
            return
        key = SINK_KEY[agent]
        if self.sink_stats().get(key, [0])[0] <= before.get(key, [0])[0]:
            sys.exit("%s sent nothing to the sink" % agent)

    # (a), (b): in-process loops
    def inproc(self, agent, route, n, warmup):
        env = self.settings(agent, 1.0)
        out = subprocess.run([self.python(agent), os.path.join(HERE, "loop.py"), route, str(n), str(warmup)],
                             env=env, capture_output=True, text=True, cwd=self.tmp)
        m = re.search(r"^RESULT (\S+) (\S+)$", out.stdout, re.M)
        if out.returncode or not m:
            sys.exit("%s %s loop failed:\n%s%s" % (agent, route, out.stdout, out.stderr[-3000:]))
        expected = "none" if agent == "bare" else agent
        if m.group(2) != expected:
            sys.exit("%s: expected the agent active as %r, got %r" % (agent, expected, m.group(2)))
        return float(m.group(1))

    def callgrind(self, agent, argv, env):
        out = subprocess.run(["valgrind", "--tool=callgrind", "--fair-sched=yes", "--trace-children=yes",
                              "--callgrind-out-file=/dev/null"] + argv,
                             env=env, capture_output=True, text=True, cwd=self.tmp)
        counts = [int(c) for c in re.findall(r"Collected : (\d+)", out.stderr)]
        if out.returncode or not counts:
            raise RuntimeError("%s under callgrind failed: %s" % (agent, out.stderr[-2000:]))
        return sum(counts)

    def instructions(self, agent, route, n):
        """Instructions/request, all threads: a 3n-request run less an n-request one."""
        env = self.settings(agent, 1.0)
        loop = [self.python(agent), os.path.join(HERE, "loop.py"), route]
        small = self.callgrind(agent, loop + [str(n), str(CG_WARMUP)], env)
        large = self.callgrind(agent, loop + [str(3 * n), str(CG_WARMUP)], env)
        return (large - small) / (2 * n)

    # (c), (d), (e): gunicorn
    def gunicorn(self, agent, rate):
        port = free_port()
        proc = subprocess.Popen([self.python(agent), "-m", "gunicorn", "-w", "1", "-b", "127.0.0.1:%d" % port,
                                 "app:app"], env=self.settings(agent, rate), cwd=self.tmp,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        url = "http://127.0.0.1:%d/hello/bench" % port
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(url, timeout=2).read()
                return proc, url
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    proc.kill()
                    raise RuntimeError("%s: gunicorn did not come up" % agent)
                time.sleep(0.05)

    @staticmethod
    def stop(proc):
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    @staticmethod
    def _ms(value, unit):
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    def wrk(self, agent, rate, seconds):
        before = self.sink_stats()
        proc, url = self.gunicorn(agent, rate)
        try:
            subprocess.run(["wrk", "-t1", "-c4", "-d1s", url], capture_output=True, check=True)
            out = subprocess.run(["wrk", "-t1", "-c4", "-d%ds" % seconds, "--latency", url],
                                 capture_output=True, text=True, check=True).stdout
        finally:
            self.stop(proc)
        if "Non-2xx" in out:
            sys.exit("%s: errors under wrk:\n%s" % (agent, out))
        self.check_exported(agent, before)
        rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
        p50 = self._ms(*re.search(r"\s50%\s+([\d.]+)(us|ms|s)", out).groups())
        p99 = self._ms(*re.search(r"\s99%\s+([\d.]+)(us|ms|s)", out).groups())
        return rps, p50, p99

    def rss(self, agent, requests):
        """The sync worker's RSS once it has served at least `requests` requests:
        wrk in 5-second runs until their counts add up (the figure says how many)."""
        proc, url = self.gunicorn(agent, 1.0)
        try:
            done = 0
            while done < requests:
                out = subprocess.run(["wrk", "-t1", "-c4", "-d5s", url], capture_output=True, text=True,
                                     check=True).stdout
                if "Non-2xx" in out:
                    sys.exit("%s: errors under wrk:\n%s" % (agent, out))
                done += int(re.search(r"(\d+) requests in", out).group(1))
            with open("/proc/%d/task/%d/children" % (proc.pid, proc.pid)) as f:
                worker = int(f.read().split()[0])
            with open("/proc/%d/status" % worker) as f:
                return int(re.search(r"VmRSS:\s+(\d+) kB", f.read()).group(1)) / 1024.0, done
        finally:
            self.stop(proc)

    # (f): start-up under the launcher
    def startup_argv(self, agent):
        return self.launcher(agent) + [self.python(agent), "-c", "import app"]

    def startup(self, agent):
        env = self.settings(agent, 1.0, launcher=True)
        t0 = time.perf_counter()
        proc = subprocess.Popen(self.startup_argv(agent), env=env, cwd=self.tmp)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = status
        if status:
            sys.exit("%s: start-up failed (%d)" % (agent, status))
        return wall * 1000, (usage.ru_utime + usage.ru_stime) * 1000, usage.ru_maxrss / 1024.0

    def startup_instructions(self, agent):
        return self.callgrind(agent, self.startup_argv(agent), self.settings(agent, 1.0, launcher=True))


def spread(values, fmt):
    return (fmt % statistics.median(values)) + " (" + (fmt % min(values)) + "–" + (fmt % max(values)) + ")"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="few rounds and requests: checks the harness in minutes")
    ap.add_argument("--prefix", default=os.environ.get("TIGEROPS_PREFIX", os.path.join(ROOT, "build", "dev", "install")))
    ap.add_argument("--venvs", default=os.environ.get("TIGEROPS_PEERS_DIR", os.path.join(ROOT, "build", "peers")))
    ap.add_argument("--agents", default=",".join(AGENTS))
    ap.add_argument("--only", default="a,b,c,d,e,f", help="workloads to run (letters)")
    ap.add_argument("--no-callgrind", action="store_true")
    ap.add_argument("--jobs", type=int, default=2, help="callgrind runs at once, beside the timed workloads")
    ap.add_argument("--output", default=os.path.join(HERE, "results.md"))
    args = ap.parse_args()
    cfg = QUICK if args.quick else FULL
    agents = args.agents.split(",")
    only = set(args.only.split(","))
    started = time.monotonic()
    bench = Bench(args, cfg)
    res = {}  # (row, agent) -> list of values

    def add(row, agent, value):
        res.setdefault((row, agent), []).append(value)

    def log(msg):
        print("[%5.0fs] %s" % (time.monotonic() - started, msg), file=sys.stderr, flush=True)
        # What is measured so far, so that a stopped or slow run keeps it.
        with open(args.output, "w") as f:
            f.write(report(res, agents, cfg, args, bench.sink_stats(), time.monotonic() - started))

    # Callgrind counts do not depend on load, so they run beside the timed
    # workloads (--jobs at a time) rather than after them: the whole run
    # stays within minutes. The timed figures pay for that in noise, which
    # their spreads show.
    from concurrent.futures import ThreadPoolExecutor
    pool = ThreadPoolExecutor(max(1, args.jobs))
    futures = []
    if not args.no_callgrind:
        for agent in agents:
            if "a" in only:
                futures.append(("a_instr", agent, pool.submit(bench.instructions, agent, "hello", cfg["cg_hello"])))
            if "b" in only:
                futures.append(("b_instr", agent, pool.submit(bench.instructions, agent, "realistic", cfg["cg_real"])))
            if "f" in only and cfg["cg_startup"]:
                futures.append(("f_instr", agent, pool.submit(bench.startup_instructions, agent)))
    try:
        for r in range(cfg["rounds"]):
            order = agents[r % len(agents):] + agents[:r % len(agents)]
            for agent in order:
                if "a" in only:
                    add("a_cpu", agent, bench.inproc(agent, "hello", cfg["hello"], cfg["hello_warmup"]))
                if "b" in only:
                    add("b_cpu", agent, bench.inproc(agent, "realistic", cfg["real"], cfg["real_warmup"]))
            log("in-process round %d/%d" % (r + 1, cfg["rounds"]))
        for r in range(cfg["wrk_rounds"] if only & {"c", "d"} else 0):
            order = agents[r % len(agents):] + agents[:r % len(agents)]
            for agent in order:
                for key, rate in (("c", 1.0), ("d", 0.1)):
                    if key in only:
                        rps, p50, p99 = bench.wrk(agent, rate, cfg["wrk_seconds"])
                        add(key + "_rps", agent, rps)
                        add(key + "_p50", agent, p50)
                        add(key + "_p99", agent, p99)
            log("wrk round %d/%d" % (r + 1, cfg["wrk_rounds"]))
        if "e" in only:
            for agent in agents:
                mb, done = bench.rss(agent, cfg["rss_requests"])
                add("e_rss", agent, mb)
                add("e_done", agent, done)
            log("rss done")
        if "f" in only:
            for r in range(cfg["startup_rounds"]):
                for agent in agents[r % len(agents):] + agents[:r % len(agents)]:
                    wall, cpu, peak = bench.startup(agent)
                    add("f_wall", agent, wall)
                    add("f_cpu", agent, cpu)
                    add("f_peak", agent, peak)
            log("start-up done")
        for row, agent, fut in futures:
            try:
                add(row, agent, fut.result())
            except RuntimeError as e:
                log(str(e))
        pool.shutdown()
        if futures:
            log("callgrind done")
        sink = bench.sink_stats()
    finally:
        pool.shutdown(cancel_futures=True)
        bench.close()
    elapsed = time.monotonic() - started
    text = report(res, agents, cfg, args, sink, elapsed)
    with open(args.output, "w") as f:
        f.write(text)
    print(text)


ROWS = [
    ("a_cpu", "(a) hello loop, CPU µs/request", "%.1f", "us"),
    ("a_instr", "(a) hello loop, instructions/request (callgrind)", "%.0f", "instr"),
    ("b_cpu", "(b) realistic request, CPU µs/request", "%.0f", "us"),
    ("b_instr", "(b) realistic request, instructions/request (callgrind)", "%.0f", "instr"),
    ("c_rps", "(c) gunicorn + wrk, 100%: requests/s", "%.0f", "rps"),
    ("c_p50", "(c) p50 latency, ms", "%.2f", "ms"),
    ("c_p99", "(c) p99 latency, ms", "%.2f", "ms"),
    ("d_rps", "(d) gunicorn + wrk, 10%: requests/s", "%.0f", "rps"),
    ("d_p50", "(d) p50 latency, ms", "%.2f", "ms"),
    ("d_p99", "(d) p99 latency, ms", "%.2f", "ms"),
    ("e_rss", "(e) worker RSS after ≥ {rss} requests, MB", "%.1f", "mb"),
    ("e_done", "(e) requests served by then", "%.0f", "count"),
    ("f_wall", "(f) start-up (`import app`) under the launcher, wall ms", "%.0f", "ms"),
    ("f_cpu", "(f) start-up, CPU ms", "%.0f", "ms"),
    ("f_peak", "(f) start-up, peak RSS MB", "%.1f", "mb"),
    ("f_instr", "(f) start-up, instructions (callgrind, millions)", "%.0f", "minstr"),
]


def version_line(args):
    lines = []
    for venv, pkgs in (("bare", ["flask", "werkzeug", "jinja2", "sqlalchemy", "redis", "gunicorn"]),
                       ("otel", ["opentelemetry-sdk", "opentelemetry-instrumentation-flask",
                                 "opentelemetry-exporter-otlp-proto-http"]),
                       ("sentry", ["sentry-sdk"]), ("ddtrace", ["ddtrace"])):
        code = ("import importlib.metadata as m, sys; print(sys.version.split()[0], "
                "*[p + ' ' + m.version(p) for p in sys.argv[1:]], sep=' · ')")
        out = subprocess.run([os.path.join(args.venvs, venv, "bin", "python"), "-c", code] + pkgs,
                             capture_output=True, text=True).stdout.strip()
        lines.append(out if venv == "bare" else out.split(" · ", 1)[1])
    return "CPython " + " · ".join(lines)


def report(res, agents, cfg, args, sink, elapsed):
    out = ["## Peer benchmarks (%s mode)" % ("quick" if args.quick else "full"), ""]
    out.append("Each cell: median (min–max) over interleaved rounds, then the ratio of medians to bare; "
               "callgrind rows are one deterministic count (difference of two run lengths). "
               "Export on to a local sink, 100% sampling unless the row says 10%.")
    out.append("")
    out.append("| workload | " + " | ".join(TITLES[a] for a in agents) + " |")
    out.append("|---|" + "---:|" * len(agents))
    for key, title, fmt, kind in ROWS:
        if not any((key, a) in res for a in agents):
            continue
        cells = []
        bare = res.get((key, "bare"))
        for agent in agents:
            values = res.get((key, agent))
            if not values:
                cells.append("n/a")
                continue
            if kind == "minstr":
                values = [v / 1e6 for v in values]
            cell = spread(values, fmt) if len(values) > 1 else fmt % values[0]
            if bare and agent != "bare":
                b = statistics.median(bare) / (1e6 if kind == "minstr" else 1)
                m = statistics.median(values)
                if kind == "instr":
                    cell += " (+%s, ×%.2f)" % (format(round(m - b), ","), m / b)
                elif kind == "count":
                    pass
                elif kind == "mb":
                    cell += " (%+.1f)" % (m - b)
                else:
                    cell += " ×%.2f" % (m / b)
            cells.append(cell)
        out.append("| " + title.format(rss=format(cfg["rss_requests"], ",")) + " | " + " | ".join(cells) + " |")
    out.append("")
    out.append("Rounds: %d in-process (%s hello and %s realistic requests each), %d wrk rounds of %d s "
               "(-t1 -c4), %d start-ups; callgrind: %d/%d requests (hello/realistic), %d warm-up. "
               "Run time %.0f s." % (cfg["rounds"], format(cfg["hello"], ","), format(cfg["real"], ","),
                                     cfg["wrk_rounds"], cfg["wrk_seconds"], cfg["startup_rounds"],
                                     cfg["cg_hello"], cfg["cg_real"], CG_WARMUP, elapsed))
    out.append("")
    out.append(version_line(args) + ".")
    out.append("")
    out.append("Sink received (requests, bytes): " + ", ".join("%s %d / %s" % (k, v[0], format(v[1], ","))
                                                            for k, v in sorted(sink.items())) + ".")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    main()
