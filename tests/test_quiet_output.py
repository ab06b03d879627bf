"""What a user sees on stderr: nothing from the libraries underneath on plain commands, and no
4-bit or adapter library imported where the run needs none (each costs seconds at start-up)."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest

ATTNLAB = Path(sys.executable).with_name("attnlab")


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, timeout=300, check=False)


@pytest.mark.parametrize("method", ["full", "lora"])
def test_predict_prints_nothing_on_stderr(tiny_runs, method):
    proc = _run(str(ATTNLAB), "predict", str(tiny_runs[method]), "a fine film")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert '"label"' in proc.stdout


def test_python_load_is_quiet_and_imports_peft_only_for_adapters(tiny_runs):
    code = (
        "import sys, attnlab\n"
        f"attnlab.load({str(tiny_runs['full'])!r}).predict(['a fine film'])\n"
        "assert 'peft' not in sys.modules and 'bitsandbytes' not in sys.modules, 'imported for a full run'\n"
        f"attnlab.load({str(tiny_runs['lora'])!r}).predict(['a fine film'])\n"
        "assert 'peft' in sys.modules\n"
    )
    proc = _run(sys.executable, "-c", code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""


def test_missing_data_is_one_line(tmp_path):
    proc = _run(str(ATTNLAB), "train", "--data", str(tmp_path / "missing.csv"), "-o", str(tmp_path / "run"))
    assert proc.returncode == 2
    assert len(proc.stderr.splitlines()) == 1 and proc.stderr.startswith("error: "), proc.stderr
    assert not (tmp_path / "run").exists()


def test_bitsandbytes_kernel_warning_is_a_debug_line(caplog):
    import attnlab  # noqa: F401  (installs the demotion)

    logger = logging.getLogger("bitsandbytes.backends.cpu.ops")
    with caplog.at_level(logging.DEBUG, logger="bitsandbytes.backends.cpu.ops"):
        logger.warning("Failed to load CPU gemm_4bit_forward from kernels-community: No module named 'kernels'")
        logger.warning("something else")
    levels = [(r.levelname, r.getMessage()[:9]) for r in caplog.records]
    assert levels == [("DEBUG", "Failed to"), ("WARNING", "something")]
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="bitsandbytes.backends.cpu.ops"):
        logger.warning("Failed to load CPU gemm_4bit_forward from kernels-community: No module named 'kernels'")
    assert caplog.records == []  # not enabled for debug: dropped
