"""A run directory whose config asks for custom code (``auto_map``) never runs it: every load path
passes ``trust_remote_code=False``, so there is no prompt, with or without a terminal, and the
command ends in one line with exit code 2."""

from __future__ import annotations

import json
import os
import pty
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ATTNLAB = Path(sys.executable).with_name("attnlab")


@pytest.fixture
def planted(tiny_bert_runs, tmp_path) -> tuple[Path, Path]:
    run = tmp_path / "run"
    shutil.copytree(tiny_bert_runs["full"], run)
    marker = tmp_path / "code-ran"
    (run / "model" / "evil.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n"
                                           "from transformers import BertConfig as EvilConfig\n")
    for name in ("config.json", "tokenizer_config.json"):
        path = run / "model" / name
        cfg = json.loads(path.read_text())
        cfg["auto_map"] = {"AutoConfig": "evil.EvilConfig", "AutoModelForSequenceClassification": "evil.EvilConfig",
                           "AutoTokenizer": ["evil.EvilConfig", None]}
        if name == "config.json":
            cfg["model_type"] = "evil-bert"  # unknown to transformers: only the planted code could build it
        path.write_text(json.dumps(cfg))
    return run, marker


def test_no_terminal_no_code(planted):
    run, marker = planted
    proc = subprocess.run([str(ATTNLAB), "predict", str(run), "a fine film"], stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 2, proc.stderr
    assert len(proc.stderr.splitlines()) == 1 and proc.stderr.startswith("error: "), proc.stderr
    assert "custom code" in proc.stderr
    assert not marker.exists()


def test_terminal_answering_yes_still_runs_no_code(planted):
    """In a terminal transformers would ask "Do you wish to run the custom code? [y/N]"; attnlab
    never lets it ask, and a 'y' typed anyway changes nothing."""
    run, marker = planted
    pid, fd = pty.fork()
    if pid == 0:  # the child: attnlab on a terminal
        os.execv(str(ATTNLAB), [str(ATTNLAB), "predict", str(run), "a fine film"])
    out, deadline = b"", time.monotonic() + 300
    os.write(fd, b"y\ny\n")
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 1.0)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            out += chunk
    _, status = os.waitpid(pid, 0)
    text = out.decode(errors="replace")
    assert os.waitstatus_to_exitcode(status) == 2, text
    assert "[y/N]" not in text and "Do you wish" not in text  # never asked
    assert "error: " in text and "custom code" in text
    assert not marker.exists()
