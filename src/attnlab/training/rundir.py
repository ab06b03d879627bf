"""Re-exports of :mod:`attnlab.rundir` (the run directory: layout, ``open_run``, checkpoints, the
writer lock) and of :mod:`attnlab.io`'s atomic writers, for code that imports them from here.
New code imports :mod:`attnlab.rundir` and :mod:`attnlab.io` directly."""

from attnlab.io import write_json_atomic, write_text_atomic
from attnlab.rundir import (
    CARD,
    CHECKPOINTS,
    CONFIG,
    HISTORY,
    LABELS,
    METRICS,
    MODEL_DIR,
    Run,
    checkpoints,
    dir_bytes,
    hardware,
    is_finished_run,
    is_run_dir,
    last_checkpoint,
    library_versions,
    open_run,
    writer_lock,
)

__all__ = ["CARD", "CHECKPOINTS", "CONFIG", "HISTORY", "LABELS", "METRICS", "MODEL_DIR", "Run", "checkpoints",
           "dir_bytes", "hardware", "is_finished_run", "is_run_dir", "last_checkpoint", "library_versions", "open_run",
           "write_json_atomic", "write_text_atomic", "writer_lock"]
