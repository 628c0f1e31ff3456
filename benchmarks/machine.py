"""The machine a benchmark ran on, and its processes' peak memory."""

import importlib.metadata
import os
import platform
import resource
import threading


def cpu_model():
    """The CPU's model name from /proc/cpuinfo (else platform's guess)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_flags(wanted=("avx2", "avx512f", "avx512_bf16", "amx_bf16", "fma")):
    """The SIMD flags of `wanted` that /proc/cpuinfo lists."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return [flag for flag in wanted if flag in flags]
    except OSError:
        pass
    return []


def _version(package):
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def describe():
    """{cpu, cores, versions, load} without importing TensorFlow."""
    return {
        "cpu_model": cpu_model(),
        "cpu_flags": cpu_flags(),
        "cpu_count": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)),
        "python": platform.python_version(),
        "tensorflow": _version("tensorflow"),
        "keras": _version("keras"),
        "load_average_1_5_15": [round(x, 2) for x in os.getloadavg()],
    }


def current_rss_mb():
    """This process's resident memory now, in MiB."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def ru_maxrss_mb():
    """getrusage's peak resident memory of this process (kB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class RssSampler:
    """Samples this process's RSS every `interval_s` seconds in a daemon
    thread; `peak_mb()` is the larger of the observed maximum and
    ru_maxrss (which the kernel updates lazily)."""

    def __init__(self, interval_s=0.02):
        self._interval_s = interval_s
        self._observed_mb = current_rss_mb()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.wait(self._interval_s):
            self._observed_mb = max(self._observed_mb, current_rss_mb())

    def stop(self):
        self._stop.set()
        self._thread.join()

    def observed_mb(self):
        return max(self._observed_mb, current_rss_mb())

    def peak_mb(self):
        return max(self.observed_mb(), ru_maxrss_mb())
