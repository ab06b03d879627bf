"""The same `attnlab train` under torchrun: 2 CPU processes (gloo), one run directory from rank 0."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import free_port


def test_torchrun_two_cpu_processes(sst2_dir, tmp_path):
    torchrun = Path(sys.executable).with_name("torchrun")
    cmd = [str(torchrun) if torchrun.exists() else shutil.which("torchrun"), "--nproc_per_node", "2",
           "--master_port", str(free_port()), "-m", "attnlab.cli", "train", "--data", "sst2",
           "--data-dir", str(sst2_dir),
           "--method", "lora", "--max-train-samples", "32", "--max-eval-samples", "16", "--epochs", "1",
           "--batch-size", "8", "-o", str(tmp_path / "run"), "--no-progress"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("run: ") == 1  # rank 0 alone reports
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["training"]["world_size"] == 2
    # 32 rows, batch 8 per process, 2 processes -> 2 optimiser steps per epoch
    assert metrics["training"]["steps"] == 2
    assert metrics["validation"]["examples"] == 16
