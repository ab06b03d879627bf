"""What reaches a user's stderr: attnlab's own log lines, never other libraries' noise.

Libraries attnlab builds on log warnings a user can do nothing about: bitsandbytes (imported by
PEFT whenever it is installed) warns on every import that an optional kernel package is missing;
transformers reports the classifier head a PEFT base is built with as "newly initialized" although
the adapter replaces it a moment later. ``--verbose`` shows all of it again.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import warnings
from collections.abc import Iterator

# (logger, start of the message) of warnings that say nothing about the user's run: kept as DEBUG
DEMOTED = (
    ("bitsandbytes.backends.cpu.ops", "Failed to load CPU gemm_4bit_forward from kernels-community"),
)


class _Demote(logging.Filter):
    """Turns a logger's records that start with ``prefix`` into DEBUG records, kept only where that
    logger is enabled for debug lines (``attnlab --verbose``, or a user's own logging setup)."""

    def __init__(self, prefix: str):
        super().__init__()
        self.prefix = prefix

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno <= logging.DEBUG or not str(record.msg).startswith(self.prefix):
            return True
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)


def demote_library_noise() -> None:
    """Install the demotions of :data:`DEMOTED`. Cheap (imports nothing): the loggers are created
    here first, so the filters are in place before the libraries are imported."""
    for name, prefix in DEMOTED:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _Demote) and f.prefix == prefix for f in logger.filters):
            logger.addFilter(_Demote(prefix))


class _OursOrErrors(logging.Filter):
    """attnlab's own records from INFO up; other libraries' only from ERROR up."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == "attnlab" or record.name.startswith("attnlab."):
            return record.levelno >= logging.INFO
        return record.levelno >= logging.ERROR


class _Stderr(logging.StreamHandler):
    """A handler on whatever ``sys.stderr`` is when a record comes (a test's capture, a redirect)."""

    @property  # type: ignore[override]
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


def configure_cli_logging(verbose: bool) -> None:
    """The CLI's stderr: attnlab's INFO lines and errors only; with ``verbose`` every library's
    records down to DEBUG (the demoted ones included)."""
    handler = _Stderr()
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    if not verbose:
        handler.addFilter(_OursOrErrors())
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_attnlab", False)]:
        root.removeHandler(old)
    handler._attnlab = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    # per-request and per-file chatter stays out even with --verbose (as before this module)
    for noisy in ("httpx", "urllib3", "filelock", "datasets", "matplotlib", "PIL", "fsspec", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if not verbose:
        warnings.filterwarnings("ignore")
    with contextlib.suppress(ImportError):  # transformers has a handler of its own
        import transformers

        transformers.logging.set_verbosity_debug() if verbose else transformers.logging.set_verbosity_error()


@contextlib.contextmanager
def quiet_model_loading() -> Iterator[None]:
    """transformers' load report, its "Loading weights" bar and the warnings of ``from_pretrained``
    silenced for the duration: for loads whose missing keys are expected (a PEFT base whose head the
    adapter replaces) or checked by attnlab itself. Keeps a user's own stricter settings."""
    from transformers.utils import logging as hf_logging

    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    try:
        if verbosity < logging.ERROR:
            hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()
