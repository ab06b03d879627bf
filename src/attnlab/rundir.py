"""The run directory: the contract between training and everything after it.

```
runs/<name>/
  config.yaml  labels.json  model/  metrics.json  history.jsonl  *.png  README.md
```

``metrics.json`` is written last: a directory without it is not a finished run, and every reader
goes through :func:`open_run`, which checks that.

This module is the one home of the layout: training writes it, inference, explain, experiments and
serve read it, so it sits below all of them and imports nothing of attnlab but :mod:`attnlab.errors`.
Files in it are written with :mod:`attnlab.io`.

It is also the one home of what a run *records* for the code that loads it: ``config.yaml`` holds,
beside the settings, the facts of :func:`recorded_facts` (whether ``model/`` is a PEFT adapter, the
folder the base weights came from), and :class:`Run` reads every fact inference needs (task,
adapter or whole model, base model, pooling, quantization) from there. A run written before a fact
was recorded falls back to what its files show. Inference cannot ask the training registries (they
are a sibling layer, and import torch and PEFT); it asks the run.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from attnlab.errors import UserError

CONFIG, LABELS, METRICS, HISTORY, MODEL_DIR, CARD = (
    "config.yaml", "labels.json", "metrics.json", "history.jsonl", "model", "README.md")
CHECKPOINTS = "checkpoints"
ADAPTER_CONFIG = "adapter_config.json"  # what PEFT writes into model/ for an adapter

# config.yaml keys that record facts, not settings (a recipe never re-applies them); methods may add
# their own (qlora's ``quantization``: ``Method.records``)
MODEL_PATH, ADAPTER = "model_path", "adapter"
RECORDED = (MODEL_PATH, ADAPTER)


def recorded_facts(*, model_path: str, adapter: bool) -> dict[str, Any]:
    """The config.yaml entries training records beside the settings, for the code that loads the run:
    the folder the base weights were read from, and whether ``model/`` is a PEFT adapter on that base
    (``Method.is_adapter``) or a whole model."""
    return {MODEL_PATH: model_path, ADAPTER: adapter}


def dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


@dataclass(frozen=True)
class Run:
    """A finished run directory, read back."""

    path: Path
    config: dict[str, Any]
    labels: list[str]
    metrics: dict[str, Any]
    thresholds: dict[str, float] = field(default_factory=dict)  # multi-label: per label, from labels.json

    @property
    def model_dir(self) -> Path:
        return self.path / MODEL_DIR

    @property
    def name(self) -> str:
        return self.path.name

    # -- what the run recorded, for the code that loads it -------------------------------------
    @property
    def task(self) -> str:
        """The task it was trained for (runs from before tasks: classification)."""
        return self.config.get("task") or "classification"

    @property
    def is_adapter(self) -> bool:
        """Whether ``model/`` is a PEFT adapter on :attr:`base_model` (else a whole model): as recorded,
        or, for a run from before that was recorded, whether PEFT's adapter config is there."""
        recorded = self.config.get(ADAPTER)
        return recorded if isinstance(recorded, bool) else (self.model_dir / ADAPTER_CONFIG).is_file()

    @property
    def base_model(self) -> str | None:
        """The model it was trained from, as the user named it (a registry name, folder or hub id)."""
        return self.config.get("model") or self.metrics.get("model")

    @property
    def base_model_path(self) -> str | None:
        """The folder the base weights were read from when it trained: as recorded, else what PEFT
        recorded in the adapter (None for a whole model that recorded nothing)."""
        path = self.config.get(MODEL_PATH) or self.metrics.get(MODEL_PATH)
        if path or not (self.model_dir / ADAPTER_CONFIG).is_file():
            return path
        try:
            return json.loads((self.model_dir / ADAPTER_CONFIG).read_text()).get("base_model_name_or_path")
        except (OSError, ValueError, AttributeError):
            return None

    @property
    def pooling(self) -> str:
        """How its classifier pools (runs from before pooling was a setting: the architecture's pooler)."""
        return self.config.get("pooling") or "pooler"

    @property
    def quantization(self) -> dict[str, Any] | None:
        """How its base was quantized in training (qlora records it), so loading can redo it."""
        return self.config.get("quantization") or None


def checkpoints(path: Path) -> list[Path]:
    """The complete Trainer checkpoints of a run directory, oldest first. Trainer writes
    ``trainer_state.json`` last, so a checkpoint cut short by a crash (none, or unreadable) is left out."""
    found = []
    for p in (path / CHECKPOINTS).glob("checkpoint-*"):
        step = p.name.removeprefix("checkpoint-")
        if p.is_dir() and step.isdigit():
            try:
                json.loads((p / "trainer_state.json").read_text())
            except (OSError, ValueError):
                continue
            found.append((int(step), p))
    return [p for _, p in sorted(found)]


def last_checkpoint(path: Path) -> Path | None:
    """The newest complete checkpoint, the one ``--resume`` continues from."""
    found = checkpoints(path)
    return found[-1] if found else None


def is_finished_run(path: Path) -> bool:
    return (path / METRICS).is_file() and (path / MODEL_DIR).is_dir() and (path / LABELS).is_file()


def is_run_dir(path: Path) -> bool:
    """Whether ``path`` holds an attnlab run, finished or cut short (what ``--overwrite`` may delete):
    training writes ``history.jsonl`` and ``checkpoints/`` first and ``metrics.json`` last."""
    return is_finished_run(path) or (path / CHECKPOINTS).is_dir() or (path / HISTORY).is_file()


@contextlib.contextmanager
def writer_lock(path: Path) -> Iterator[None]:
    """Hold the one-writer lock of run directory ``path`` for the duration; a second process that
    asks for it while it is held fails at once with a one-line error. The lock (``flock``) lives in
    the temp folder, keyed by the directory's absolute path, so nothing is added to the user's
    folders, and it is released by the kernel if the process dies."""
    import fcntl
    import hashlib

    folder = Path(tempfile.gettempdir()) / "attnlab-locks"
    folder.mkdir(exist_ok=True)
    key = hashlib.sha256(str(path.expanduser().resolve()).encode()).hexdigest()[:24]
    with open(folder / f"{key}.lock", "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UserError("another attnlab process is writing this output directory", where=str(path),
                            fix="wait for it to finish, or choose another --output-dir") from None
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def hardware() -> dict[str, Any]:
    import psutil
    import torch

    info: dict[str, Any] = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu": _cpu_name(),
        "cpu_cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
        info["gpu_count"] = torch.cuda.device_count()
    return info


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("attnlab", "torch", "transformers", "peft", "datasets", "accelerate", "bitsandbytes", "scikit-learn"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            continue
    return out


def open_run(path: str | Path) -> Run:
    """Read a finished run; anything else is a one-line UserError."""
    p = Path(path).expanduser()
    if not p.is_dir():
        raise UserError("run directory not found", where=str(p),
                        fix="pass the --output-dir of a finished `attnlab train`")
    if not is_finished_run(p):
        hint = "it has checkpoints but never finished: continue it with `attnlab train ... --resume`" if (
            p / CHECKPOINTS).is_dir() else "pass the --output-dir of a finished `attnlab train`"
        raise UserError("not a finished attnlab run (no metrics.json, labels.json or model/)", where=str(p), fix=hint)
    try:
        labels_doc = json.loads((p / LABELS).read_text())
        metrics = json.loads((p / METRICS).read_text())
        config = yaml.safe_load((p / CONFIG).read_text()) if (p / CONFIG).is_file() else {}
    except (json.JSONDecodeError, yaml.YAMLError, UnicodeDecodeError) as exc:
        raise UserError(f"run directory is corrupted: {type(exc).__name__}", where=str(p),
                        fix="re-run training into a fresh --output-dir") from None

    def corrupted(name: str, what: str) -> UserError:
        return UserError(f"run directory is corrupted: {name} {what}", where=str(p / name),
                         fix="re-run training into a fresh --output-dir")

    labels = labels_doc.get("labels") if isinstance(labels_doc, dict) else None
    at_least = 1 if isinstance(config, dict) and config.get("task") == "regression" else 2  # one output: the target
    if not isinstance(labels, list) or len(labels) < at_least:
        raise corrupted(LABELS, f'is malformed: it must be an object whose "labels" is a list of at least {at_least} '
                                f'name{"s" if at_least > 1 else ""}')
    for x in labels:
        if not isinstance(x, str) or not x.strip():
            raise corrupted(LABELS, f"is malformed: label {json.dumps(x)} is not a non-empty string")
    if len(set(labels)) != len(labels):
        twice = next(x for x in labels if labels.count(x) > 1)
        raise corrupted(LABELS, f"is malformed: label {json.dumps(twice)} appears more than once")
    if not isinstance(metrics, dict):
        raise corrupted(METRICS, f"is malformed: a {type(metrics).__name__}, not an object")
    config = {} if config is None else config
    if not isinstance(config, dict):
        raise corrupted(CONFIG, f"is malformed: a {type(config).__name__}, not a mapping of settings")
    max_length = config.get("max_length", 1)
    if type(max_length) is not int or max_length <= 0:  # bool is no int here
        raise corrupted(CONFIG, f"is malformed: max_length is {max_length!r}, not a positive integer")
    if config.get(ADAPTER) is not None and not isinstance(config[ADAPTER], bool):  # absent: an older run
        raise corrupted(CONFIG, f"is malformed: {ADAPTER} is {config[ADAPTER]!r}, not true or false")
    if not isinstance(config.get("task") or "", str):
        raise corrupted(CONFIG, f"is malformed: task is {config['task']!r}, not a task name")
    thresholds = labels_doc.get("thresholds") or {}
    if thresholds and not (isinstance(thresholds, dict)
                           and all(isinstance(thresholds.get(x), int | float) for x in labels)):
        raise corrupted(LABELS, "is malformed: thresholds must give every label a number")
    return Run(p, config, list(labels), metrics, {x: float(thresholds[x]) for x in labels} if thresholds else {})
