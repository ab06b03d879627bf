"""Serving under load: ``attnlab serve`` on 127.0.0.1 against concurrent clients.

Starts ``python -m attnlab.cli serve --run RUN --no-ui --no-chat`` on a free port of 127.0.0.1 and
waits for ``/healthz``. A warm-up (the first request loads the model; then a few concurrent rounds)
is not counted. Then ``--clients`` threads, each with one keep-alive HTTP connection, send
``--requests`` ``POST /v1/classify`` requests in total, each with one SST-2 validation sentence
(shuffled, so short and long sentences mix). A request **fails** on a status other than 200, a
timeout (``--timeout`` per request), a connection error, a body that is not JSON, or a body without
exactly one result carrying a label of the run; requests not sent before the overall deadline
(``--deadline``) fail too. The server process's resident memory (RSS) is sampled every
``--rss-interval`` seconds: memory is **flat** when the median RSS of the second half of the load
is at most ``--max-rss-growth-mib`` above the median of the first half (the two medians are about
half the requests apart: a leak of 100 KiB per request, ~49 MiB over 500 requests, breaks the
default 32 MiB). RSS is also recorded after every tenth of the requests.

Prints a table, writes ``benchmarks/results/serve_load.json`` and exits 1 if any request failed or
memory was not flat.

    python benchmarks/serve_load.py                    # trains a quick LoRA run first (~1 min on 2 cores)
    python benchmarks/serve_load.py --run runs/my-run --clients 20 --requests 1000
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import os
import random
import shlex
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from _common import add_quick_run_args, open_quick_run, write_results

from attnlab.evaluation.tables import markdown_table

MIB = 2**20
STARTUP_TIMEOUT_S = 300.0  # server start, and the first request (it loads the model)


# -- pure parts (tested in tests/test_serve_load.py) -------------------------------------------------

def latency_summary(seconds: Sequence[float]) -> dict[str, float | None]:
    """p50/p90/p99/max/mean in milliseconds (None when there are no latencies)."""
    if not seconds:
        return {"p50_ms": None, "p90_ms": None, "p99_ms": None, "max_ms": None, "mean_ms": None}
    ms = np.asarray(seconds, dtype=float) * 1000
    return {"p50_ms": float(np.percentile(ms, 50)), "p90_ms": float(np.percentile(ms, 90)),
            "p99_ms": float(np.percentile(ms, 99)), "max_ms": float(ms.max()), "mean_ms": float(ms.mean())}


def memory_rule(limit_mib: float) -> str:
    return (f"median RSS of the second half of the load at most {limit_mib:g} MiB above the median of the first "
            "half")


def memory_summary(samples: Sequence[tuple[float, int]], start: float, end: float, limit_mib: float
                   ) -> dict[str, Any]:
    """RSS over the load window [start, end] from ``(time, rss bytes)`` samples: at its start (the last
    sample at or before ``start``), at its end, the maximum, and the growth of the second half's median
    over the first half's; ``memory_flat`` applies the rule of :func:`memory_rule`."""
    samples = sorted(samples)
    if not samples:
        return {"rss_mib_start": None, "rss_mib_end": None, "rss_mib_max": None, "rss_growth_mib": None,
                "rss_end_minus_start_mib": None, "rss_samples": 0, "memory_flat": False,
                "memory_rule": memory_rule(limit_mib)}
    before = [r for t, r in samples if t <= start]
    inside = [(t, r) for t, r in samples if start < t <= end]
    after = [r for t, r in samples if t > end]
    first_rss = before[-1] if before else (inside[0][1] if inside else after[0])
    last_rss = inside[-1][1] if inside else first_rss
    window = [first_rss] + [r for _, r in inside]
    mid = start + (end - start) / 2
    first_half = [first_rss] + [r for t, r in inside if t < mid]
    second_half = [r for t, r in inside if t >= mid] or [last_rss]
    growth = (statistics.median(second_half) - statistics.median(first_half)) / MIB
    return {"rss_mib_start": first_rss / MIB, "rss_mib_end": last_rss / MIB, "rss_mib_max": max(window) / MIB,
            "rss_growth_mib": growth, "rss_end_minus_start_mib": (last_rss - first_rss) / MIB,
            "rss_samples": len(window), "memory_flat": bool(growth <= limit_mib), "memory_rule": memory_rule(limit_mib)}


def check_response(status: int, content: bytes, labels: Sequence[str]) -> str | None:
    """Why a /v1/classify response for one text is a failure, or None when it is a good answer."""
    if status != 200:
        return f"HTTP {status}"
    try:
        body = json.loads(content)
    except (ValueError, UnicodeDecodeError):
        return "body is not JSON"
    results = body.get("results") if isinstance(body, dict) else None
    if not isinstance(results, list) or len(results) != 1 or not isinstance(results[0], dict):
        return "not one result"
    if results[0].get("label") not in labels or not isinstance(results[0].get("score"), float):
        return "result without a known label and a score"
    return None


@dataclass
class LoadResult:
    """What one load phase measured."""

    requests: int
    latencies: list[float] = field(default_factory=list)  # seconds, successful requests only
    server_ms: list[float] = field(default_factory=list)  # the server's own elapsed_ms, successful requests
    failures: Counter = field(default_factory=Counter)  # reason -> count
    examples: dict[str, str] = field(default_factory=dict)  # reason -> what the first such failure said
    start: float = 0.0  # time.monotonic()
    end: float = 0.0

    @property
    def failed(self) -> int:
        return sum(self.failures.values())

    @property
    def duration_s(self) -> float:
        return self.end - self.start


# -- the server -----------------------------------------------------------------------------------

def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def rss_bytes(pid: int) -> int | None:
    """Resident memory of process ``pid`` (psutil, else /proc), None once it is gone."""
    try:
        import psutil

        try:
            return int(psutil.Process(pid).memory_info().rss)
        except psutil.Error:
            return None
    except ImportError:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        except OSError:
            return None
    return None


class RssSampler(threading.Thread):
    """Samples a process's RSS every ``interval`` seconds into ``samples`` as (monotonic time, bytes)."""

    def __init__(self, pid: int, interval: float):
        super().__init__(name="rss-sampler", daemon=True)
        self.pid, self.interval = pid, interval
        self.samples: list[tuple[float, int]] = []
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            rss = rss_bytes(self.pid)
            if rss is not None:
                self.samples.append((time.monotonic(), rss))
            self._stop_event.wait(self.interval)

    def sample_now(self) -> int | None:
        rss = rss_bytes(self.pid)
        if rss is not None:
            self.samples.append((time.monotonic(), rss))
        return rss

    def stop(self) -> None:
        self._stop_event.set()
        self.join(5)


class Server:
    """``attnlab serve`` in a subprocess; its output goes to ``log_path``. Use as a context manager:
    it is always stopped (SIGTERM, then SIGKILL after ``grace`` seconds)."""

    def __init__(self, run: Path, log_path: Path, num_threads: int | None = None, grace: float = 15.0):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.cmd = [sys.executable, "-m", "attnlab.cli", "serve", "--run", str(run), "--host", "127.0.0.1",
                    "--port", str(self.port), "--no-ui", "--no-chat",
                    *(["--num-threads", str(num_threads)] if num_threads else [])]
        self.log_path, self.grace = log_path, grace
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> Server:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "wb")  # closed in __exit__
        self.proc = subprocess.Popen(self.cmd, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        return self

    def __exit__(self, *exc: Any) -> None:
        try:
            if self.proc is not None and self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(self.grace)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(10)
        finally:
            self._log.close()

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def wait_healthy(self, timeout: float = STARTUP_TIMEOUT_S) -> float:
        """Seconds until /healthz answered 200; SystemExit if the server died or never answered."""
        import httpx

        start = time.monotonic()
        while time.monotonic() - start < timeout:
            if self.proc.poll() is not None:
                raise SystemExit(f"the server exited with code {self.proc.returncode} before it answered "
                                 f"/healthz; its log ({self.log_path}):\n{self.log_tail()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=5).status_code == 200:
                    return time.monotonic() - start
            except httpx.TransportError:
                pass
            time.sleep(0.25)
        raise SystemExit(f"the server did not answer /healthz within {timeout:.0f} s; log:\n{self.log_tail()}")


# -- the clients ----------------------------------------------------------------------------------

def drive(url: str, texts: Sequence[str], requests: int, clients: int, labels: Sequence[str], timeout: float,
          deadline: float, offset: int = 0, progress_every: int = 0,
          on_progress: Callable[[int, LoadResult], None] | None = None) -> LoadResult:
    """``requests`` POST /v1/classify from ``clients`` threads (one connection each); request i sends
    ``texts[(offset + i) % len(texts)]``. Requests not started before ``deadline`` (monotonic) fail.
    ``on_progress(finished, result)`` is called every ``progress_every`` finished requests."""
    import httpx

    res = LoadResult(requests)
    counter, lock = itertools.count(), threading.Lock()

    def record(reason: str | None, latency: float, server_ms: float | None = None, detail: str = "") -> None:
        with lock:
            if reason is None:
                res.latencies.append(latency)
                if server_ms is not None:
                    res.server_ms.append(server_ms)
            else:
                res.failures[reason] += 1
                res.examples.setdefault(reason, detail[:300])
            done = len(res.latencies) + res.failed
            if progress_every and on_progress and done % progress_every == 0:
                on_progress(done, res)

    def client() -> None:
        with httpx.Client(timeout=timeout) as http:
            while True:
                with lock:
                    i = next(counter)
                if i >= requests:
                    return
                if time.monotonic() > deadline:
                    record("not sent before the deadline", 0.0)
                    continue
                t0 = time.perf_counter()
                try:
                    r = http.post(f"{url}/v1/classify", json={"texts": [texts[(offset + i) % len(texts)]]})
                    latency = time.perf_counter() - t0
                    reason = check_response(r.status_code, r.content, labels)
                    server_ms = r.json().get("elapsed_ms") if reason is None else None
                    detail = "" if reason is None else r.content.decode("utf-8", "replace")
                except httpx.TimeoutException as exc:
                    reason, latency, server_ms, detail = "timeout", 0.0, None, repr(exc)
                except httpx.TransportError as exc:
                    reason, latency, server_ms = f"connection error ({type(exc).__name__})", 0.0, None
                    detail = repr(exc)
                record(reason, latency, server_ms, detail)

    threads = [threading.Thread(target=client, name=f"client-{k}", daemon=True) for k in range(clients)]
    res.start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    res.end = time.monotonic()
    return res


# -- what the clients send ---------------------------------------------------------------------------

def sentences(data_dir: str, seed: int) -> list[str]:
    from attnlab.data import load_data

    texts = list(load_data("sst2", data_dir=data_dir).splits["validation"]["text"])
    random.Random(seed).shuffle(texts)
    return texts


# -- main -------------------------------------------------------------------------------------------

def recorded_command(argv: Sequence[str]) -> str:
    """The command line as it is stored with the result: without ``--note`` (the note is stored apart)."""
    out, skip = [], False
    for x in argv:
        if skip or x == "--note":
            skip = not skip
            continue
        if not x.startswith("--note="):
            out.append(x)
    return shlex.join(["serve_load.py", *out])


def _fmt(v: Any, spec: str = ".1f") -> str:
    return "n/a" if v is None else format(v, spec)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_quick_run_args(p, runs_dir="runs/bench-serve", runs_dir_help="where the quick run and the server log go",
                       train_rows=500, run_help="a finished run directory to serve")
    p.add_argument("--clients", type=int, default=20, help="concurrent clients (default: 20)")
    p.add_argument("--requests", type=int, default=1000, help="requests in total, one sentence each (default: 1000)")
    p.add_argument("--warmup", type=int, default=40, help="warm-up requests, not counted (default: 40)")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds per request (default: 30)")
    p.add_argument("--deadline", type=float, default=600.0,
                   help="seconds for the whole load; requests not sent by then fail (default: 600)")
    p.add_argument("--rss-interval", type=float, default=0.5, help="seconds between RSS samples (default: 0.5)")
    p.add_argument("--max-rss-growth-mib", type=float, default=32.0,
                   help="memory is flat if the second half's median RSS is at most this above the first half's")
    p.add_argument("--num-threads", type=int, help="torch threads of the server (default: all cores)")
    p.add_argument("--seed", type=int, default=0, help="shuffles the sentences")
    p.add_argument("--note", help="a note stored with the result (e.g. what else ran on the machine)")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if a.clients < 1 or a.requests < 1 or a.warmup < 0:
        p.error("--clients and --requests must be positive, --warmup not negative")


    run = open_quick_run(a)
    texts = sentences(a.data_dir, a.seed)
    lengths = sorted(len(t) for t in texts)
    server = Server(run.path, Path(a.runs_dir) / "serve_load-server.log", num_threads=a.num_threads)
    print(f"serving {run.path} on {server.url}; {a.clients} clients x {a.requests} requests "
          f"({len(texts)} SST-2 validation sentences, {lengths[0]}-{lengths[-1]} characters)", flush=True)

    with server:
        startup_s = server.wait_healthy()
        sampler = RssSampler(server.proc.pid, a.rss_interval)
        sampler.start()
        try:
            rss_idle = sampler.sample_now()
            # warm-up: the first request loads the model, then a few concurrent rounds (not counted)
            t0 = time.monotonic()
            first = drive(server.url, texts, 1, 1, run.labels, STARTUP_TIMEOUT_S, t0 + STARTUP_TIMEOUT_S,
                          offset=len(texts) - 1)
            if first.failed:
                raise SystemExit(f"the first request failed ({dict(first.failures)}); server log "
                                 f"({server.log_path}):\n{server.log_tail()}")
            warm = drive(server.url, texts, a.warmup, a.clients, run.labels, a.timeout, time.monotonic() + a.deadline,
                         offset=len(texts) // 2)
            print(f"server up in {startup_s:.1f} s; first request (loads the model) {first.latencies[0]:.1f} s; "
                  f"{a.warmup} warm-up requests in {warm.duration_s:.1f} s", flush=True)
            sampler.sample_now()
            load_avg = os.getloadavg()[0]
            rss_by_requests = {"0": sampler.sample_now()}

            def progress(done: int, res: LoadResult) -> None:
                rss_by_requests[str(done)] = sampler.sample_now()
                print(f"  {done}/{a.requests} requests, {res.failed} failed, {time.monotonic() - res.start:.0f} s, "
                      f"server RSS {_fmt(rss_by_requests[str(done)] and rss_by_requests[str(done)] / MIB, '.0f')} MiB",
                      flush=True)

            load = drive(server.url, texts, a.requests, a.clients, run.labels, a.timeout,
                         time.monotonic() + a.deadline, progress_every=max(1, a.requests // 10), on_progress=progress)
            load_avg = max(load_avg, os.getloadavg()[0])
            sampler.sample_now()
        finally:
            sampler.stop()
        server_alive = server.proc.poll() is None

    lat = latency_summary(load.latencies)
    mem = memory_summary(sampler.samples, load.start, load.end, a.max_rss_growth_mib)
    server_lat = latency_summary([ms / 1000 for ms in load.server_ms])
    payload: dict[str, Any] = {
        "command": recorded_command(sys.argv[1:] if argv is None else argv),
        "settings": {"run": str(run.path), "method": run.config.get("method"), "model": run.config.get("model"),
                     "endpoint": "POST /v1/classify", "texts_per_request": 1, "sentences": len(texts),
                     "sentence_chars_min": lengths[0], "sentence_chars_median": lengths[len(lengths) // 2],
                     "sentence_chars_max": lengths[-1],
                     "warmup_requests": a.warmup, "timeout_s": a.timeout, "deadline_s": a.deadline,
                     "rss_interval_s": a.rss_interval, "server_threads": a.num_threads or "all cores",
                     "server_command": "attnlab serve --run RUN --host 127.0.0.1 --port PORT --no-ui --no-chat",
                     "load_average_1m": round(load_avg, 2)},
        "clients": a.clients, "requests": a.requests, "completed_requests": len(load.latencies),
        "failed_requests": load.failed, "failures": dict(load.failures), "failure_examples": load.examples,
        "warmup_failed_requests": warm.failed,
        "duration_s": load.duration_s, "requests_per_second": len(load.latencies) / load.duration_s,
        **lat,
        "server_p50_ms": server_lat["p50_ms"], "server_p99_ms": server_lat["p99_ms"],
        "startup_s": startup_s, "first_request_s": first.latencies[0],
        "rss_mib_idle": rss_idle / MIB if rss_idle else None,
        **mem,
        "rss_mib_by_requests": {k: round(v / MIB, 1) for k, v in rss_by_requests.items() if v is not None},
        "server_alive_after_load": server_alive,
    }
    payload = {k: round(v, 2) if isinstance(v, float) else v for k, v in payload.items()}
    if a.note:
        payload["note"] = a.note
    path = write_results("serve_load", payload)

    rows = [("clients x requests", f"{a.clients} x {a.requests}"),
            ("failed requests", f"{load.failed}" + (f" {dict(load.failures)}" if load.failed else "")),
            ("duration", f"{load.duration_s:.1f} s"),
            ("throughput", f"{payload['requests_per_second']:.1f} requests/s"),
            ("latency p50 / p90 / p99 / max", " / ".join(_fmt(lat[k]) for k in ("p50_ms", "p90_ms", "p99_ms", "max_ms"))
             + " ms"),
            ("server time p50 / p99", f"{_fmt(server_lat['p50_ms'])} / {_fmt(server_lat['p99_ms'])} ms"),
            ("server RSS idle / start / end / max", " / ".join(_fmt(v, ".0f") for v in (
                payload["rss_mib_idle"], mem["rss_mib_start"], mem["rss_mib_end"], mem["rss_mib_max"])) + " MiB"),
            ("RSS growth, 2nd half vs 1st", f"{_fmt(mem['rss_growth_mib'])} MiB "
                                            f"({'flat' if mem['memory_flat'] else 'NOT flat'})")]
    print(markdown_table(["measure", "value"], rows))
    print(f"wrote {path}")
    problems = ([f"{load.failed} of {a.requests} requests failed"] if load.failed else []) + (
        [f"{warm.failed} warm-up requests failed"] if warm.failed else []) + (
        [] if mem["memory_flat"] else [f"memory grew: {mem['memory_rule']} does not hold"])
    if problems:
        print("FAILED: " + "; ".join(problems), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sys.exit(main())
