"""What the operations tests (tests/ops/) share: paths, a private nats-server, the real worker
binary run as a child process, Prometheus, and small parsers for the Prometheus text format and
for the metric names a PromQL expression reads.

The worker runs against a nats-server of the test's own (so it creates its default streams and
consumer there, as in production, without touching the shared server) and against the shared
PostgreSQL and Redis named by ATW_TEST_DATABASE_URL and ATW_TEST_REDIS_URL (scripts/test.sh
sets them). A missing variable or program fails the test: these tests never pass by not running.
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path


def _required_env(name):
    value = os.environ.get(name, "")
    if not value:
        raise AssertionError(
            f"{name} is not set: run the tests through scripts/test.sh (ctest in build/), "
            "which starts the servers and sets it")
    return value


SOURCE_DIR = Path(os.environ.get("ATW_SOURCE_DIR", Path(__file__).resolve().parents[2]))
DEPLOY_DIR = SOURCE_DIR / "deploy"


def worker_binary():
    return _required_env("ATW_WORKER_BINARY")


def devtool_binary():
    return _required_env("ATW_DEVTOOL_BINARY")


def program(name):
    path = shutil.which(name)
    if path is None:
        raise AssertionError(f"{name} is not installed (scripts/servers.sh installs it)")
    return path


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def http_get(url, timeout=2.0):
    """(status, body); status 0 when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except (urllib.error.URLError, OSError):
        return 0, ""


def poll(fn, timeout, interval=0.2):
    """Calls fn until it returns something true, or the timeout passes; returns the last value."""
    deadline = time.monotonic() + timeout
    value = fn()
    while not value and time.monotonic() < deadline:
        time.sleep(interval)
        value = fn()
    return value


def base_env():
    """A clean environment for a child: scripts/test.sh exports NATS_URL, DATABASE_URL and
    REDIS_URL, which must not leak into a worker whose settings a test chooses."""
    env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG", "TZ") if k in os.environ}
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    return env


def shared_server_env():
    return {
        "DATABASE_URL": _required_env("ATW_TEST_DATABASE_URL"),
        "REDIS_URL": _required_env("ATW_TEST_REDIS_URL"),
    }


class PrivateNats:
    """nats-server with JetStream on free loopback ports, its store in a temporary folder."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="atw-ops-nats-")
        self.log_path = os.path.join(self.dir, "nats.log")
        # A port found free can be taken before the server binds it (or be handed out twice):
        # another pair of ports, up to three times.
        for _ in range(3):
            self.port = free_port()
            self.monitor_port = free_port()
            if self.monitor_port == self.port:
                continue
            self.proc = subprocess.Popen(
                [program("nats-server"), "-a", "127.0.0.1", "-p", str(self.port), "-m",
                 str(self.monitor_port), "-js", "-sd", os.path.join(self.dir, "js"), "-l",
                 self.log_path],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if wait_port(self.port):
                return
            self.proc.kill()
            self.proc.wait()
        log = open(self.log_path, errors="replace").read()[-2000:] if os.path.exists(
            self.log_path) else "(no log)"
        shutil.rmtree(self.dir, ignore_errors=True)
        raise AssertionError("the private nats-server did not start:\n" + log)

    @property
    def url(self):
        return f"nats://127.0.0.1:{self.port}"

    @property
    def monitor_endpoint(self):
        return f"127.0.0.1:{self.monitor_port}"

    def jsz(self):
        """What KEDA's nats-jetstream scaler reads: /jsz with accounts, streams, consumers."""
        status, body = http_get(f"http://{self.monitor_endpoint}/jsz?accounts=true"
                                "&streams=true&consumers=true&config=true")
        if status != 200:
            raise AssertionError(f"/jsz answered {status}")
        return json.loads(body)

    def publish(self, subject, payloads):
        data = "".join(p + "\n" for p in payloads)
        subprocess.run(
            [devtool_binary(), "--nats-url", self.url, "publish", "--subject", subject,
             "--file", "-"],
            input=data, text=True, check=True, timeout=30, capture_output=True)

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


class Worker:
    """The real asset-worker binary run as an operator runs it: settings from the environment
    only (`env` as given, on a clean base), HTTP on a free loopback port unless `env` sets
    HTTP_ADDR, log in a temporary file."""

    def __init__(self, env, args=("run",)):
        self.env = base_env()
        self.env.update(env)
        if "HTTP_ADDR" not in env:
            self.env["HTTP_ADDR"] = f"127.0.0.1:{free_port()}"
        self.port = int(self.env["HTTP_ADDR"].rsplit(":", 1)[1])
        fd, self.log_path = tempfile.mkstemp(prefix="atw-ops-worker-", suffix=".log")
        with os.fdopen(fd, "w") as log:
            self.proc = subprocess.Popen([worker_binary(), *args], env=self.env,
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=log)

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def get(self, path):
        return http_get(self.url(path))

    def log(self):
        with open(self.log_path) as f:
            return f.read()

    def wait_ready(self, timeout=20.0):
        def ready():
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"the worker exited with {self.proc.returncode}; its log:\n{self.log()}")
            return self.get("/readyz")[0] == 200
        if not poll(ready, timeout, 0.05):
            raise AssertionError(f"the worker did not become ready; its log:\n{self.log()}")

    def metrics(self):
        status, body = self.get("/metrics")
        if status != 200:
            raise AssertionError(f"/metrics answered {status}")
        return body

    def stop(self, sig=signal.SIGTERM, timeout=30.0):
        """Sends the signal and returns the exit code (negative: killed by a signal)."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def close(self):
        self.stop(signal.SIGKILL, 5)
        try:
            os.unlink(self.log_path)
        except OSError:
            pass


def worker_env(nats):
    """Settings for a worker on `nats` and the shared PostgreSQL and Redis, defaults otherwise."""
    env = {"NATS_URL": nats.url, "WORKER_ID": "ops-test", "LOG_LEVEL": "info"}
    env.update(shared_server_env())
    return env


class Prometheus:
    """Debian's prometheus on a free loopback port, its data in a temporary folder."""

    def __init__(self, config_text, files=None):
        self.dir = tempfile.mkdtemp(prefix="atw-ops-prometheus-")
        for name, text in (files or {}).items():
            Path(self.dir, name).write_text(text)
        Path(self.dir, "prometheus.yml").write_text(config_text)
        self.port = free_port()
        self.log_path = os.path.join(self.dir, "prometheus.log")
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen(
                [program("prometheus"), f"--config.file={self.dir}/prometheus.yml",
                 f"--storage.tsdb.path={self.dir}/data",
                 f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
                cwd=self.dir, stdin=subprocess.DEVNULL, stdout=log, stderr=log)

        def ready():
            if self.proc.poll() is not None:
                raise AssertionError(f"prometheus exited; its log:\n{self.log()}")
            return http_get(self.url("/-/ready"))[0] == 200
        if not poll(ready, 30, 0.1):
            raise AssertionError(f"prometheus did not become ready; its log:\n{self.log()}")

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def log(self):
        with open(self.log_path) as f:
            return f.read()

    def api(self, path, **params):
        query = urllib.parse.urlencode(params)
        status, body = http_get(self.url(f"/api/v1/{path}?{query}"), timeout=5)
        if not body:
            raise AssertionError(f"prometheus answered {status} to {path}")
        return status, json.loads(body)

    def query(self, expr):
        """The result vector of an instant query; fails on a query error."""
        status, doc = self.api("query", query=expr)
        if status != 200 or doc.get("status") != "success":
            raise AssertionError(f"query {expr!r} failed: {doc}")
        return doc["data"]["result"]

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


# --- Prometheus text format -------------------------------------------------------------

def exported_families(text):
    """{family name: type} from the `# TYPE` lines, plus untyped sample names. The worker
    writes every family's TYPE line even before it has a sample (a gauge it has not read yet),
    so this is what it exports, not what it happened to have at the moment."""
    families = {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(None, 3)
            families[name] = kind.strip()
        elif line and not line.startswith("#"):
            name = re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line).group(0)
            if not any(name == f or name.startswith(f + "_") for f in families):
                families.setdefault(name, "untyped")
    return families


def series_name_ok(name, families):
    """Whether `name` is a series the families produce: counters and gauges by their name,
    summaries by their name (quantiles), _sum and _count, histograms only by _bucket, _sum and
    _count. Returns (ok, reason)."""
    kind = families.get(name)
    if kind is not None:
        if kind == "histogram":
            return False, f"{name} is a histogram: query {name}_bucket, _sum or _count"
        return True, ""
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix):
            base = name[: -len(suffix)]
            kind = families.get(base)
            if kind == "histogram":
                return True, ""
            if kind == "summary" and suffix != "_bucket":
                return True, ""
            if kind is not None:
                return False, f"{name}: {base} is a {kind}, it has no {suffix} series"
    return False, f"{name} is not exported by the worker"


# --- PromQL ----------------------------------------------------------------------------

_PROMQL_KEYWORDS = {
    "and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right",
    "offset", "bool", "atan2", "inf", "nan", "start", "end",
    # aggregation operators, which may be followed by a grouping clause before their "("
    "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
    "bottomk", "topk", "quantile",
}
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^()]*)\)")


def _strip_strings(expr):
    return re.sub(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`', '""', expr)


def _strip_enclosed(expr, open_ch, close_ch):
    out, depth = [], 0
    for ch in expr:
        if ch == open_ch:
            depth += 1
            if depth == 1:
                out.append(open_ch)
            continue
        if ch == close_ch and depth:
            depth -= 1
            if depth == 0:
                out.append(close_ch)
            continue
        if depth == 0:
            out.append(ch)
    return "".join(out)


def promql_metric_names(expr):
    """The metric names an expression reads: identifiers outside strings, label matchers,
    ranges and grouping clauses that are not functions, aggregations, keywords or template
    variables ($job, $__rate_interval)."""
    s = _strip_strings(expr)
    s = _strip_enclosed(s, "{", "}")
    s = _strip_enclosed(s, "[", "]")
    s = _GROUPING.sub(r"\1 ()", s)
    names = set()
    for m in re.finditer(r"[$]?[a-zA-Z_:][a-zA-Z0-9_:]*", s):
        token = m.group(0)
        if token.startswith("$") or token.lower() in _PROMQL_KEYWORDS:
            continue
        if m.start() > 0 and (s[m.start() - 1].isdigit() or s[m.start() - 1] == "."):
            continue  # a number's exponent or a duration's unit (1e3, 5m)
        if re.match(r"\s*\(", s[m.end():]):
            continue  # a function or an aggregation
        names.add(token)
    return names


def grouping_labels(expr):
    """Every label named in a by/without/on/ignoring clause."""
    labels = set()
    for m in _GROUPING.finditer(_strip_strings(expr)):
        labels.update(x.strip() for x in m.group(2).split(",") if x.strip())
    return labels


def grafana_template(expr, job="asset-worker", instance=".*", rate_interval="1m"):
    """A dashboard expression with Grafana's variables replaced, ready for Prometheus."""
    return (expr.replace("$__rate_interval", rate_interval).replace("${job}", job)
            .replace("$job", job).replace("${instance}", instance).replace("$instance", instance))


def github_anchor(heading):
    """The anchor GitHub gives a Markdown heading."""
    text = heading.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def markdown_anchors(path):
    anchors = set()
    in_code = False
    for line in Path(path).read_text().splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and re.match(r"#{1,6} ", line):
            anchors.add(github_anchor(line.lstrip("#")))
    return anchors


def run_version():
    """The version `asset-worker version` prints."""
    out = subprocess.run([worker_binary(), "version"], env=base_env(), capture_output=True,
                         text=True, timeout=10, check=True).stdout.split()
    if len(out) != 2 or out[0] != "asset-worker":
        raise AssertionError(f"unexpected version output: {out}")
    return out[1]
