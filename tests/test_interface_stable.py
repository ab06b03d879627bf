"""What a user sees must not change under a refactor: every command's flags (with their choices) and
the files a finished run holds, with the keys of its config.yaml and metrics.json. The snapshot in
``tests/snapshots/interface.json`` was taken before the single-source-of-truth refactor; a change
here is a change users see, made on purpose: rewrite it with ``python tests/test_interface_stable.py``
and say why in the commit."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml

SNAPSHOT = Path(__file__).parent / "snapshots" / "interface.json"


def cli_flags() -> dict[str, dict[str, list[str] | None]]:
    """{command: {flag: choices or None}} for ``attnlab`` and each of its commands."""
    import argparse

    from attnlab.cli import build_parser

    def flags(p: argparse.ArgumentParser) -> dict[str, list[str] | None]:
        out = {}
        for a in p._actions:
            if isinstance(a, argparse._SubParsersAction):
                continue
            for s in a.option_strings or [a.dest]:
                out[s] = sorted(map(str, a.choices)) if a.choices else None
        return dict(sorted(out.items()))

    parser = build_parser()
    result = {"attnlab": flags(parser)}
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, p in sub.choices.items():
        result[name] = flags(p)
    return result


def run_shape(run: Path) -> dict[str, list[str]]:
    """The files of a run (relative, sorted) and the keys of its config.yaml and metrics.json."""
    files = sorted(str(p.relative_to(run)) for p in run.rglob("*") if p.is_file())
    config = sorted(yaml.safe_load((run / "config.yaml").read_text()))
    metrics = sorted(json.loads((run / "metrics.json").read_text()))
    return {"files": files, "config_keys": config, "metrics_keys": metrics}


def current(runs: dict[str, Path]) -> dict:
    return {"cli": cli_flags(), "runs": {m: run_shape(p) for m, p in sorted(runs.items())}}


def test_cli_flags_unchanged():
    want = json.loads(SNAPSHOT.read_text())["cli"]
    got = cli_flags()
    assert sorted(got) == sorted(want), "commands added or removed"
    for name in want:
        assert got[name] == want[name], f"`attnlab {name}` flags changed"


def test_run_files_unchanged(tiny_runs):
    want = json.loads(SNAPSHOT.read_text())["runs"]
    for method, run in tiny_runs.items():
        assert run_shape(run) == want[method], f"a {method} run's files or keys changed"


if __name__ == "__main__":  # rewrite the snapshot from this checkout (trains three tiny runs)
    import os
    import tempfile

    sys.path.insert(0, str(Path(__file__).parent))
    from conftest import SST2, TINY

    from attnlab.training import TrainConfig
    from attnlab.training.train import train

    os.environ.setdefault("ATTNLAB_SST2_DIR", str(SST2))
    with tempfile.TemporaryDirectory() as tmp:
        runs = {m: train(TrainConfig.from_sources(data="sst2", data_dir=str(SST2), method=m,
                                                  output_dir=f"{tmp}/{m}", **TINY), progress=False).path
                for m in ("full", "lora", "head")}
        SNAPSHOT.parent.mkdir(exist_ok=True)
        SNAPSHOT.write_text(json.dumps(current(runs), indent=1, sort_keys=True) + "\n")
    print(f"wrote {SNAPSHOT}")
