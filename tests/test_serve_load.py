"""The load benchmark's pure parts (latency summary, memory-flat rule, response check; no server)
and the docs section generated from its result file."""

from __future__ import annotations

import json
import platform
import sys
from pathlib import Path

import pytest
from scripts import load_script

REPO = Path(__file__).resolve().parents[1]
MIB = 2**20


@pytest.fixture(scope="module")
def sl():
    return load_script(REPO / "benchmarks" / "serve_load.py", "bench_serve_load")


def test_latency_summary(sl):
    out = sl.latency_summary([i / 1000 for i in range(1, 101)])  # 1..100 ms
    assert out["p50_ms"] == pytest.approx(50.5) and out["p99_ms"] == pytest.approx(99.01)
    assert out["max_ms"] == pytest.approx(100) and out["mean_ms"] == pytest.approx(50.5)
    assert set(sl.latency_summary([]).values()) == {None}


def test_memory_flat_and_growing(sl):
    flat = [(t / 2, (500 + (t % 3)) * MIB) for t in range(41)]  # 0..20 s, jitter of 2 MiB
    m = sl.memory_summary(flat, start=0.0, end=20.0, limit_mib=32)
    assert m["memory_flat"] and abs(m["rss_growth_mib"]) <= 2 and m["rss_mib_start"] == 500
    assert m["rss_mib_max"] == 502 and m["rss_samples"] == 41
    leak = [(t / 2, (500 + 4 * t) * MIB) for t in range(41)]  # +160 MiB over the load
    m = sl.memory_summary(leak, start=0.0, end=20.0, limit_mib=32)
    assert not m["memory_flat"] and m["rss_growth_mib"] == pytest.approx(80, abs=4)
    assert m["rss_end_minus_start_mib"] == 160 and "second half" in m["memory_rule"]
    # samples before the load (idle, model loading) do not count; the last one before it is the start
    before = [(-5.0, 100 * MIB), (-0.2, 480 * MIB), *flat[1:]]
    m = sl.memory_summary(before, start=0.0, end=20.0, limit_mib=32)
    assert m["rss_mib_start"] == 480 and m["memory_flat"]
    assert not sl.memory_summary([], 0.0, 1.0, 32)["memory_flat"]


def test_check_response(sl):
    good = json.dumps({"run": "r", "results": [{"label": "positive", "score": 0.9, "probabilities": {}}]}).encode()
    labels = ["negative", "positive"]
    assert sl.check_response(200, good, labels) is None
    assert sl.check_response(503, good, labels) == "HTTP 503"
    assert sl.check_response(200, b"<html>", labels) == "body is not JSON"
    assert sl.check_response(200, b'{"results": []}', labels) == "not one result"
    assert sl.check_response(200, b'{"results": [{"label": "meh", "score": 0.5}]}', labels).startswith("result")


def test_recorded_command_leaves_the_note_out(sl):
    argv = ["--clients", "20", "--note", "busy machine", "--timeout", "300", "--note=x"]
    assert sl.recorded_command(argv) == "serve_load.py --clients 20 --timeout 300"


def test_reliability_section_reads_the_result_file(tmp_path, monkeypatch):
    gen = load_script(REPO / "docs" / "gen" / "reliability.py", "docs_gen_reliability_serve")
    monkeypatch.setattr(gen, "SERVE_JSON", tmp_path / "none.json")
    assert "Not yet run" in gen._serve_load_md()
    result = {"date": "2026-01-01 00:00 UTC", "command": "serve_load.py", "hardware": {"cpu": "X", "cpu_cores": 2},
              "settings": {"method": "lora", "model": "minilm-l6", "warmup_requests": 40, "timeout_s": 30.0},
              "clients": 20, "requests": 1000, "failed_requests": 0, "failures": {}, "requests_per_second": 55.5,
              "duration_s": 18.0, "p50_ms": 300.0, "p90_ms": 400.0, "p99_ms": 600.0, "max_ms": 700.0,
              "server_p50_ms": 250.0, "server_p99_ms": 500.0, "rss_mib_idle": 300.0, "rss_mib_start": 500.0,
              "rss_mib_end": 501.0, "rss_mib_max": 505.0, "rss_growth_mib": 0.5, "memory_flat": True,
              "memory_rule": "the rule", "rss_mib_by_requests": {"0": 500.0, "500": 500.4, "1000": 501.0},
              "failure_examples": {}}
    (tmp_path / "serve_load.json").write_text(json.dumps(result))
    monkeypatch.setattr(gen, "SERVE_JSON", tmp_path / "serve_load.json")
    md = gen._serve_load_md()
    for needle in ("1,000 from 20 concurrent clients", "**0**", "55.5 requests/s", "300 / 400 / 600 / 700 ms",
                   "+0.5 MiB: flat", "2026-01-01", "`serve_load.py`", "X, 2 cores", "after 0, 500, ..., 1,000 requests",
                   "500 → 500 → 501 MiB"):
        assert needle in md, needle


def test_steady_malloc_fixes_the_threshold_unless_told_otherwise(monkeypatch):
    from attnlab.serve.server import steady_malloc

    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "65536")
    assert steady_malloc() is False  # the user's setting wins
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_")
    if sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc":
        assert steady_malloc() is True
