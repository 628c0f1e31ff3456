r"""Load-tests `python -m experiments.serve`: latency percentiles and
requests per second of predict calls from concurrent clients.

  python -m experiments.export --model=pretrained/cosal_paper_t4_attn_d4 \
      --out=/tmp/cosal_export
  python -m benchmarks.serve_load --model=/tmp/cosal_export \
      --requests=3000 --clients=4 --sweep_clients=1,2,8 \
      --serve_flag=--intra_op_threads=1 --serve_flag=--inter_op_threads=1 \
      --out=results/serve_load.json

--model starts the server on a free loopback port in a subprocess (its
start-up is not timed) and stops it at the end; --url=http://HOST:PORT
loads a server that is already running instead. Every request is the
server's first example (GET /examples: image and text) in the row format
on the default signature, sent by --clients threads, each over its own
keep-alive HTTP/1.1 connection (--keep_alive=false: a new connection per
request, as urllib makes). Every answer must be a 200 whose png_bytes is a
PNG equal to the first answer's; any other answer counts as an error. After
--warmup untimed requests, --requests requests are timed.

Writes (and prints) one JSON object: p50/p95/p99/mean/max latency in ms,
requests per second over the timed run, the CPU time per request of the
server (with --model) and of the clients, the machine's load average
before and after (other processes share the CPU), the error count and the
command; with --sweep_clients, the same figures for each of those client
counts under `sweep` (latency at low concurrency against requests a second
at high concurrency). --serve_flag passes flags to the server it starts,
e.g. --serve_flag=--intra_op_threads=1.
"""

import base64
import http.client
import json
import os
import re
import shlex
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request

from absl import app, flags

_MODEL = flags.DEFINE_string(
    "model", None, "An export directory to serve (starts a server)."
)
_URL = flags.DEFINE_string(
    "url", None, "A running server, http://HOST:PORT (instead of --model)."
)
_REQUESTS = flags.DEFINE_integer("requests", 2000, "Timed requests in all.")
_CLIENTS = flags.DEFINE_integer("clients", 4, "Concurrent client threads.")
_SWEEP_CLIENTS = flags.DEFINE_list(
    "sweep_clients",
    [],
    "Client counts to measure too, after the main run (e.g. 1,2,8): each "
    "sends --requests timed requests; results under `sweep`.",
)
_WARMUP = flags.DEFINE_integer("warmup", 50, "Untimed requests first.")
_KEEP_ALIVE = flags.DEFINE_boolean(
    "keep_alive", True, "One connection per client (else one per request)."
)
_SERVE_FLAGS = flags.DEFINE_multi_string(
    "serve_flag",
    [],
    "A flag for the server that --model starts, e.g. "
    "--serve_flag=--intra_op_threads=1 (repeat for several).",
)
_OUT = flags.DEFINE_string("out", None, "Also write the JSON object here.")
_NOTE = flags.DEFINE_string(
    "note", None, "Stored in the JSON: what else the machine was doing."
)
_PNG = b"\x89PNG\r\n\x1a\n"


def start_server(export_dir, serve_flags=()):
    """Starts `python -m experiments.serve` on a free loopback port with
    `serve_flags`; returns (process, base URL) once it answers."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "experiments.serve",
            f"--model={export_dir}",
            "--port=0",
            "--quiet",
            *serve_flags,
        ],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # The server prints its URL once it serves (or exits: an empty line).
    line = process.stdout.readline()
    match = re.search(r"at (http://[^/ ]+)/", line)
    if not match:
        process.kill()
        raise SystemExit(
            f"the server did not start: {line!r} {process.stderr.read()}"
        )
    return process, match.group(1)


def _example_body(url):
    with urllib.request.urlopen(f"{url}/examples", timeout=60) as response:
        info = json.loads(response.read())
    if not info["examples"]:
        raise SystemExit(f"{url}/examples lists no example to send")
    example = info["examples"][0]
    with urllib.request.urlopen(url + example["image"], timeout=60) as image:
        data = image.read()
    body = {
        "instances": [
            {
                "image_bytes": {"b64": base64.b64encode(data).decode()},
                "text": example["text"],
            }
        ]
    }
    return info, json.dumps(body).encode()


class _Client:
    """One client thread's connection and its measurements."""

    def __init__(self, url, path, body, keep_alive):
        parts = urllib.parse.urlsplit(url)
        self.host, self.port = parts.hostname, parts.port
        self.path, self.body = path, body
        self.keep_alive = keep_alive
        self.connection = None
        self.latencies = []
        self.errors = []
        self.checked = {}

    def request(self):
        if self.connection is None:
            self.connection = http.client.HTTPConnection(
                self.host, self.port, timeout=60
            )
        headers = {"Content-Type": "application/json"}
        if not self.keep_alive:
            headers["Connection"] = "close"
        started = time.perf_counter()
        try:
            self.connection.request("POST", self.path, self.body, headers)
            response = self.connection.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException) as error:
            self.connection.close()
            self.connection = None
            return None, f"connection: {error}"
        elapsed = time.perf_counter() - started
        if not self.keep_alive or response.will_close:
            self.connection.close()
            self.connection = None
        if response.status != 200:
            return elapsed, f"HTTP {response.status}: {data[:200]!r}"
        # An answer already checked is not parsed again, so that the
        # client's own CPU time does not crowd the server (answers differ
        # only when a merged batch rounds floats differently).
        if data in self.checked:
            return elapsed, self.checked[data]
        try:
            png = base64.b64decode(
                json.loads(data)["predictions"][0]["png_bytes"]["b64"]
            )
        except (ValueError, KeyError, IndexError, TypeError) as error:
            return elapsed, f"bad answer: {error}"
        if len(self.checked) < 64:
            self.checked[data] = png
        return elapsed, png


def _cpu_seconds(pid):
    """User + system CPU seconds of process `pid` so far (Linux), or None."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as file:
            fields = file.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_load(
    url, model_name, body, requests, clients, warmup, keep_alive, pid=None
):
    """Sends `warmup`, then `requests` timed requests from `clients`
    threads; returns the measurements as a dict (with the CPU time per
    request of the server process `pid` and of this one, when known)."""
    path = f"/v1/models/{urllib.parse.quote(model_name)}:predict"
    reference = _Client(url, path, body, keep_alive)
    _, expected = reference.request()
    if not isinstance(expected, bytes) or not expected.startswith(_PNG):
        raise SystemExit(f"the first request failed: {expected}")
    workers = [_Client(url, path, body, keep_alive) for _ in range(clients)]
    for index in range(warmup):
        workers[index % clients].request()
    counter = iter(range(requests))
    lock = threading.Lock()

    def work(client):
        while True:
            with lock:
                if next(counter, None) is None:
                    return
            elapsed, answer = client.request()
            if elapsed is not None:
                client.latencies.append(elapsed)
            if answer != expected:
                client.errors.append(
                    answer if isinstance(answer, str) else "another PNG"
                )

    threads = [threading.Thread(target=work, args=(c,)) for c in workers]
    load_before = os.getloadavg()[0]
    server_cpu = None if pid is None else _cpu_seconds(pid)
    client_cpu = time.process_time()
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    client_cpu = time.process_time() - client_cpu
    if server_cpu is not None:
        server_cpu = _cpu_seconds(pid) - server_cpu
    latencies = sorted(x for c in workers for x in c.latencies)
    failures = [e for c in workers for e in c.errors]

    def percentile(q):
        index = min(len(latencies) - 1, max(0, round(q * len(latencies)) - 1))
        return round(latencies[index] * 1000, 3)

    return {
        "requests": requests,
        "clients": clients,
        "keep_alive": keep_alive,
        "wall_s": round(wall, 3),
        "requests_per_second": round(requests / wall, 1),
        "latency_ms": {
            "p50": percentile(0.50),
            "p95": percentile(0.95),
            "p99": percentile(0.99),
            "mean": round(sum(latencies) / len(latencies) * 1000, 3),
            "max": round(latencies[-1] * 1000, 3),
        },
        "cpu_ms_per_request": {
            "server": None
            if server_cpu is None
            else round(server_cpu / requests * 1000, 3),
            "client": round(client_cpu / requests * 1000, 3),
        },
        # Other processes on the machine: the 1-minute load average.
        "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "errors": len(failures),
        "first_errors": failures[:5],
        "request_bytes": len(body),
    }


def main(argv):
    del argv
    if (_MODEL.value is None) == (_URL.value is None):
        raise SystemExit("pass exactly one of --model or --url")
    try:
        sweep_clients = [int(value) for value in _SWEEP_CLIENTS.value]
    except ValueError:
        raise SystemExit(
            f"--sweep_clients must be whole numbers; received "
            f"{','.join(_SWEEP_CLIENTS.value)}"
        ) from None
    if any(value < 1 for value in [_CLIENTS.value, *sweep_clients]):
        raise SystemExit("--clients and --sweep_clients must be 1 or more")
    process = None
    url = _URL.value
    if _MODEL.value is not None:
        process, url = start_server(_MODEL.value, _SERVE_FLAGS.value)
    try:
        info, body = _example_body(url)
        runs = [
            run_load(
                url,
                info["model"],
                body,
                _REQUESTS.value,
                clients,
                _WARMUP.value,
                _KEEP_ALIVE.value,
                pid=None if process is None else process.pid,
            )
            for clients in [_CLIENTS.value, *sweep_clients]
        ]
        result = runs[0]
        sweep = [
            {
                key: one[key]
                for key in (
                    "clients",
                    "requests_per_second",
                    "latency_ms",
                    "cpu_ms_per_request",
                    "load_average",
                    "errors",
                )
            }
            for one in runs[1:]
        ]
    finally:
        if process is not None:
            process.terminate()
            process.wait(timeout=60)
    result = {
        "command": "python -m benchmarks.serve_load "
        + " ".join(shlex.quote(a) for a in sys.argv[1:]),
        "model": _MODEL.value or url,
        "task": info["task"],
        "signature_name": info["signature_name"],
        "cpus": os.cpu_count(),
        "note": _NOTE.value,
        "targets": {"p50_ms": 10, "requests_per_second": 300},
        **result,
    }
    if sweep:
        result["sweep"] = sweep
    text = json.dumps(result, indent=2, sort_keys=True)
    print(text)
    if _OUT.value:
        from lbie_tf.core import artifacts

        artifacts.write_text(_OUT.value, text + "\n")
    failed = result["errors"] + sum(one["errors"] for one in sweep)
    if failed:
        raise SystemExit(f"{failed} requests failed")


if __name__ == "__main__":
    app.run(main)
