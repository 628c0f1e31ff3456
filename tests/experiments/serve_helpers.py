"""What the serve tests share: CLI runs, exports and a
`python -m experiments.serve` subprocess on a free loopback port."""

import json
import os
import pathlib
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parents[2]
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1"}
# A bounded wait for each command (the machine is shared and slow at times).
TIMEOUT_S = 600
PRETRAINED = ROOT / "pretrained" / "cosal_paper_t4_attn_d4"


def run_cli(args, check=True):
    completed = subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    if check:
        assert completed.returncode == 0, completed.stderr[-3000:]
    return completed


def export(model, export_dir):
    run_cli(
        ["-m", "experiments.export", f"--model={model}", f"--out={export_dir}"]
    )
    return pathlib.Path(export_dir)


class Server:
    """`python -m experiments.serve --port=0` in a subprocess; `url` once
    it answers GET status. stderr goes to a file (`log()` reads it)."""

    def __init__(self, export_dir, log_path, *flags):
        self.log_path = pathlib.Path(log_path)
        self._log = open(self.log_path, "w")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "experiments.serve",
                f"--model={export_dir}",
                "--port=0",
                *flags,
            ],
            cwd=ROOT,
            env=ENV,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
        )
        line = self.process.stdout.readline()
        match = re.search(r"at (http://127\.0\.0\.1:\d+)/", line)
        if not match:
            self.stop()
            raise AssertionError(f"no URL in {line!r}: {self.log()}")
        self.url = match.group(1)
        self.name = line.split()[1]
        deadline = time.monotonic() + TIMEOUT_S
        while time.monotonic() < deadline:
            try:
                status, _, _ = request(
                    "GET", f"{self.url}/v1/models/{self.name}"
                )
            except urllib.error.URLError:
                status = None
            if status == 200:
                return
            time.sleep(0.1)
        raise AssertionError(f"the server never answered: {self.log()}")

    def log(self):
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text()

    def stop(self):
        """SIGTERM, then the exit status."""
        if self.process.poll() is None:
            self.process.terminate()
        try:
            returncode = self.process.wait(timeout=60)
        finally:
            if self.process.poll() is None:
                self.process.kill()
            self.process.stdout.close()
            self._log.close()
        return returncode


def request(method, url, body=None, headers=None, timeout=120):
    """(status, headers, body bytes) of one urllib request; HTTP errors are
    answers too."""
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
    prepared = urllib.request.Request(
        url, data=body, method=method, headers=headers or {}
    )
    try:
        with urllib.request.urlopen(prepared, timeout=timeout) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, dict(error.headers), error.read()


def request_json(method, url, body=None, headers=None):
    status, headers, data = request(method, url, body, headers)
    return status, json.loads(data)
