"""What a server holds: the runs it serves (picked by name), their models (loaded once, on first
use, into the server's own :class:`~attnlab.serve.cache.ModelCache`, freed by ``close()``), the
models it may draw attention for, the chat model, and where the latest comparison is.

Clients name things; they never pass paths. A run is named by its directory's folder name; an
attention model is a served run or an installed registry model; anything else is refused.

A served run is loaded once: its classifier's torch model also draws its attention maps (switched
to eager attention for that forward pass; LoRA is merged into it, as for classifying). Where that
cannot be (a run whose task's model the extractor does not take, such as text2text's seq2seq model:
``RunTask.draws_attention``; a model that cannot switch to eager attention), the attention model is
a second, eager copy, kept in the same cache.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from attnlab.errors import UserError
from attnlab.rundir import Run, open_run
from attnlab.serve.batcher import MicroBatcher
from attnlab.serve.cache import ModelCache, eager_attention
from attnlab.serve.errors import ApiError
from attnlab.serve.limits import Limits

log = logging.getLogger(__name__)

COMPARE_CANDIDATES = ("runs/compare", "runs/quickstart")
FALLBACK_ATTENTION_MODEL = "minilm-l6"
T = TypeVar("T")


def default_explain_models() -> list[str]:
    """Registry models that are installed here (their attention can be drawn)."""
    from attnlab.models import MODELS

    out = []
    for name, src in MODELS.items():
        try:
            if src.probe():
                out.append(name)
        except Exception:  # a broken optional install must not stop the server
            log.debug("probe of %s failed", name, exc_info=True)
    return out


def find_compare_dir(compare_dir: str | Path | None = None) -> Path | None:
    """``compare_dir`` if given; else the newest of runs/compare and runs/quickstart that holds a
    comparison (relative to the working directory); else None."""
    if compare_dir is not None:
        return Path(compare_dir).expanduser()
    found = [Path(c) for c in COMPARE_CANDIDATES if (Path(c) / "comparison.md").is_file()]
    return max(found, key=lambda p: (p / "comparison.md").stat().st_mtime) if found else None


def _is_pathlike(name: str) -> bool:
    return any(c in name for c in "/\\:") or name.startswith((".", "~")) or name in ("", "..")


class ServeState:
    """Everything the API and the UI share. Thread-safe."""

    def __init__(self, runs: Sequence[str | Path] = (), *, explain_models: Sequence[str] | None = None,
                 chat: bool = True, chat_model: str | None = None, compare_dir: str | Path | None = None,
                 limits: Limits | None = None, engine: str = "torch", long_text: str = "truncate",
                 long_text_aggregate: str = "mean", long_text_stride: int | None = None):
        from attnlab.chat import DEFAULT_CHAT_MODEL
        from attnlab.inference.long_text import LongText
        from attnlab.inference.predictor import check_engine
        from attnlab.inference.tasks import run_task

        # what classifies: torch or ONNX Runtime (attention maps always come from torch)
        self.engine = check_engine(engine)
        # how texts longer than a run's max_length are read, unless a request says otherwise
        self.long_text = LongText(long_text, long_text_aggregate, long_text_stride).check()
        self.limits = limits or Limits()
        self.runs: dict[str, Run] = {}
        for r in runs:
            run = open_run(r)
            run_task(run)  # a run of a task this attnlab cannot load is refused now, not on first use
            if run.name in self.runs:
                raise UserError(f"two runs are named '{run.name}'", where=str(r),
                                fix="serve runs whose folder names differ: the API picks runs by folder name")
            self.runs[run.name] = run
        self.explain_models = list(default_explain_models() if explain_models is None else explain_models)
        self.chat_enabled = chat
        self.chat_model_name = chat_model or DEFAULT_CHAT_MODEL
        self.compare_dir = find_compare_dir(compare_dir)
        self.models = ModelCache()  # every model this server loads; freed by close()
        self._batchers: dict[tuple[str, Any], MicroBatcher] = {}  # per (run, LongText setting)
        self._guard = threading.Lock()  # protects _batchers and _no_sharing
        self._no_sharing: set[str] = set()  # runs whose classifier cannot draw attention (a second copy does)

    # ----------------------------------------------------------------------------------------- runs

    @property
    def default_run(self) -> str | None:
        return next(iter(self.runs), None)

    def run(self, name: str | None) -> Run:
        """The served run called ``name`` (default: the first); ApiError otherwise."""
        if not self.runs:
            raise ApiError(404, "this server serves no runs: start it with `attnlab serve --run RUN_DIR`")
        if name is None:
            return self.runs[self.default_run]
        if _is_pathlike(name):
            raise ApiError(400, f"run must be the name of a served run, not a path: {name!r} "
                                f"(served runs: {', '.join(self.runs)})")
        if name not in self.runs:
            raise ApiError(404, f"unknown run {name!r}; this server serves: {', '.join(self.runs)}")
        return self.runs[name]

    def batches_run(self, run_name: str) -> int:
        """How many model batches the classify batchers of ``run_name`` have run (every long-text setting)."""
        with self._guard:
            return sum(b.batches for (name, _), b in self._batchers.items() if name == run_name)

    def _batcher(self, run: Run, setting: Any) -> MicroBatcher:
        """The batcher of ``run``'s requests that read long texts by ``setting`` (a LongText)."""
        with self._guard:
            b = self._batchers.get((run.name, setting))
            if b is None:
                b = self._batchers[run.name, setting] = MicroBatcher(
                    self._predict_fn(run, setting), max_batch=self.limits.max_texts,
                    wait_ms=self.limits.batch_wait_ms, name=f"classify-{run.name}-{setting.mode}")
            return b

    def predictor(self, run: Run):
        """The run's :class:`~attnlab.inference.Predictor` (loaded on first use, then kept)."""
        from attnlab.inference import Predictor
        from attnlab.inference.tasks import run_task

        def load() -> Predictor:
            log.info("Loading run %s for classification", run.name)
            engine = self.engine if self.engine in run_task(run).engines else "torch"  # text2text: torch only
            return Predictor.from_run(run, batch_size=self.limits.max_texts, engine=engine)

        return self.models.get(("run", run.name), load)

    def _predict_fn(self, run: Run, setting: Any):
        def predict(texts: list[str]) -> list[dict[str, Any]]:
            predictor = self.predictor(run)  # the first batch loads it, in the batcher's worker thread
            with self.models.lock(("run", run.name)):  # attention maps may use the same model
                rows = predictor.predict(texts, long_text=setting.mode, aggregate=setting.aggregate,
                                         stride=setting.stride)
                return [{k: v for k, v in row.items() if k != "text"} for row in rows]  # less the echo of each text

        return predict

    def check_texts(self, texts: Sequence[str], field: str = "texts") -> list[str]:
        """The texts as a list, checked once here at the edge (count, the rule of
        ``attnlab.data.text.text_problem``, length): a bad one is a 422, never a batch failure."""
        from attnlab.data.text import text_problem

        if len(texts) == 0:
            raise ApiError(422, f"{field} is empty: send at least one text")
        if len(texts) > self.limits.max_texts:
            raise ApiError(422, f"too many texts: {len(texts)} (at most {self.limits.max_texts} per request)")
        for i, t in enumerate(texts):
            name = field if field == "text" else f"{field}[{i}]"
            if (problem := text_problem(t)) is not None:
                raise ApiError(422, f"{name} {problem}")
            if len(t) > self.limits.max_chars:
                raise ApiError(422, f"{name} is {len(t)} characters long (at most {self.limits.max_chars})")
        return list(texts)

    async def classify(self, texts: Sequence[str], run_name: str | None = None, long_text: str | None = None,
                       aggregate: str | None = None) -> tuple[Run, list[dict[str, Any]]]:
        """Per text: label, score and every class probability, from the run named ``run_name``;
        ``long_text``/``aggregate``: how texts longer than its max_length are read (default: the server's)."""
        run = self.run(run_name)
        texts = self.check_texts(texts)
        batcher = self._batcher(run, self.long_text.merged(long_text, aggregate))
        return run, list(await asyncio.wrap_future(batcher.submit(texts)))

    def classify_sync(self, texts: Sequence[str], run_name: str | None = None) -> tuple[Run, list[dict[str, Any]]]:
        run = self.run(run_name)
        return run, list(self._batcher(run, self.long_text).submit(self.check_texts(texts)).result())

    # ------------------------------------------------------------------------------------ attention

    @property
    def attention_choices(self) -> list[str]:
        """Names /v1/attention accepts: served runs first, then installed registry models."""
        return list(self.runs) + [m for m in self.explain_models if m not in self.runs]

    def attention_source(self, model: str | None = None, run: str | None = None) -> tuple[str, str]:
        """(display name, source for attnlab.explain) for a client's ``model``/``run`` choice."""
        if model is not None and run is not None:
            raise ApiError(422, "pass either model or run, not both")
        if run is not None:
            r = self.run(run)
            return r.name, str(r.path)
        if model is None:
            if self.runs:
                r = self.run(None)
                return r.name, str(r.path)
            model = FALLBACK_ATTENTION_MODEL
        if model in self.runs:
            return model, str(self.runs[model].path)
        if model in self.explain_models:
            return model, model
        if _is_pathlike(model):
            raise ApiError(400, f"model must be a name, not a path: {model!r} (choose one of: "
                                f"{', '.join(self.attention_choices)})")
        raise ApiError(404, f"unknown model {model!r}; choose one of: {', '.join(self.attention_choices)}")

    def _attention_model(self, name: str, source: str) -> tuple[Any, threading.Lock]:
        """(LoadedModel, the lock its forward passes take) for an :meth:`attention_source` result."""
        from attnlab.explain import LoadedModel, load_for_attention
        from attnlab.inference.tasks import run_task

        run = self.runs.get(name)
        with self._guard:
            shared = run is not None and source == str(run.path) and run.name not in self._no_sharing
        if shared and run_task(run).draws_attention:  # the extractor takes encoders and decoders, not seq2seq
            predictor = self.predictor(run)
            return (LoadedModel(predictor.model, predictor.tokenizer, run.name, source, "run"),
                    self.models.lock(("run", run.name)))
        key = ("attention", source)
        return self.models.get(key, lambda: load_for_attention(source, cache=False)), self.models.lock(key)

    def extract(self, text: str, model: str | None = None, run: str | None = None):
        """The AttentionResult of ``text`` (truncated to ``limits.max_attention_tokens`` tokens)."""
        from attnlab.explain import extract_attention

        self.check_texts([text], field="text")
        return self.with_eager_model(lambda loaded: extract_attention(
            text, loaded, max_tokens=self.limits.max_attention_tokens), model, run)

    def with_eager_model(self, fn: Callable[[Any], T], model: str | None = None, run: str | None = None) -> T:
        """``fn(LoadedModel)`` on the attention model of a client's ``model``/``run`` choice, holding
        the model's lock (the classify batcher may share it), with eager attention switched on."""
        name, source = self.attention_source(model, run)
        loaded, lock = self._attention_model(name, source)
        with lock, eager_attention(loaded.model) as eager:
            if eager:
                return fn(loaded)
        log.info("Run %s cannot switch to eager attention: loading an eager copy for attention maps", name)
        with self._guard:
            self._no_sharing.add(name)
        return self.with_eager_model(fn, model, run)

    # ----------------------------------------------------------------------------------------- chat

    def chat_model(self):
        from attnlab.chat import chat_model_available, load_chat_model
        from attnlab.models import MODELS

        if not self.chat_enabled:
            raise ApiError(503, "chat is disabled on this server (it was started with --no-chat)")
        if not chat_model_available(self.chat_model_name):
            src = MODELS.get(self.chat_model_name)
            raise ApiError(503, f"chat model {self.chat_model_name!r} is not installed"
                                + (f": {src.install}" if src else ""))
        return self.models.get(("chat", self.chat_model_name),
                               lambda: load_chat_model(self.chat_model_name, cache=False))

    def chat_status(self) -> dict[str, Any]:
        from attnlab.chat import chat_model_available

        available = self.chat_enabled and chat_model_available(self.chat_model_name)
        return {"model": self.chat_model_name, "enabled": self.chat_enabled, "available": available,
                "loaded": self.models.loaded(("chat", self.chat_model_name))}

    # --------------------------------------------------------------------------------------- models

    def models_info(self) -> dict[str, Any]:
        runs = [self._run_info(run, default=i == 0) for i, run in enumerate(self.runs.values())]
        return {"runs": runs, "attention_models": self.attention_choices, "chat": self.chat_status()}

    @staticmethod
    def _run_info(run: Run, default: bool) -> dict[str, Any]:
        """What /v1/models says of a served run: its task and what its predictions are made of (the
        target's name for regression; the labels and the thresholds they apply from for multi-label),
        and the validation and test numbers its task leads with (classification: accuracy, macro-F1)."""
        from attnlab.data.labels import MULTI, SCORE
        from attnlab.inference.scored import DEFAULT_THRESHOLD
        from attnlab.inference.tasks import run_task
        from attnlab.training.tasks import get_task

        task = run_task(run)
        first, *_ = headline = get_task(task.name).headline
        m = run.metrics
        info: dict[str, Any] = {
            "name": run.name, "default": default, "task": task.name, "method": run.config.get("method"),
            "base_model": run.config.get("model"), "labels": run.labels,
            "metrics": {f"validation_{first}": (m.get("validation") or {}).get(first),
                        **{f"test_{k}": (m.get("test") or {}).get(k) for k in headline}},
        }
        if task.label_kind == SCORE:
            info["target"] = run.labels[0]
        elif task.label_kind == MULTI:
            info["thresholds"] = {n: run.thresholds.get(n, DEFAULT_THRESHOLD) for n in run.labels}
        return info

    # -------------------------------------------------------------------------------------- compare

    def comparison(self) -> tuple[str, list[Path]]:
        """(markdown of the latest comparison, its PNG plots), or a message saying there is none."""
        d = self.compare_dir
        if d is None or not (d / "comparison.md").is_file():
            where = f"in {d}" if d is not None else f"in {' or '.join(COMPARE_CANDIDATES)}"
            return (f"No comparison found {where}. Run `attnlab quickstart` or `attnlab compare -o runs/compare`, "
                    "or start the server with `--compare-dir DIR`."), []
        text = (d / "comparison.md").read_text(encoding="utf-8")
        text = "\n".join(ln for ln in text.splitlines() if not ln.lstrip().startswith("!["))  # plots shown below
        return text, sorted(p.resolve() for p in d.glob("*.png"))

    def close(self) -> None:
        """Stop the batchers and free every model this server loaded."""
        with self._guard:
            batchers, self._batchers = list(self._batchers.values()), {}
        for b in batchers:
            b.close()
        self.models.close()

