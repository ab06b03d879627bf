"""POST /v1/explain: which tokens a served run's prediction rests on, by each attribution method
(attention, rollout, gradient-weighted rollout, Integrated Gradients, gradient x input, occlusion:
:func:`attnlab.explain.attribute`). The answer has the shape of ``attnlab explain --methods``'
attributions.json. The text obeys /v1/attention's limits (characters, and truncation to
``Limits.max_attention_tokens`` tokens); the model is the run's own, used under its lock."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter

from attnlab.serve.errors import ApiError
from attnlab.serve.routes import State
from attnlab.serve.schemas import ExplainRequest
from attnlab.serve.state import ServeState

router = APIRouter()

EXPLAINED_TASKS = ("classification",)  # softmax classifiers: the methods explain p(predicted class)


def check_methods(names: list[str] | None) -> list[str]:
    """The methods a request asked for (None: all), validated: a 422 names the valid ones."""
    from attnlab.explain.attribution import METHODS, parse_methods

    if names is None or names == ["all"]:
        return list(METHODS)
    if not names:
        raise ApiError(422, f"methods is empty: pass one or more of {', '.join(METHODS)} (or leave it out for all)")
    bad = [m for m in names if m not in METHODS]
    if bad:
        raise ApiError(422, f"unknown method{'s' if len(bad) > 1 else ''} {', '.join(map(repr, bad))}; "
                            f"valid methods: {', '.join(METHODS)}")
    return parse_methods(names)


@dataclass
class Explained:
    """A text explained through a served run: the attributions and what the response adds to them."""

    run: str
    sentence: Any  # attnlab.explain.SentenceAttribution
    truncated: bool
    notes: list[str]


def explain_text(state: ServeState, text: str, run_name: str | None = None,
                 methods: list[str] | None = None) -> Explained:
    """``text``'s attributions by ``methods`` (None: all) through the served run ``run_name`` (default:
    the first), checked as /v1/explain checks them (ApiError otherwise). The web UI calls this too."""
    from attnlab.explain.attribution import attribute, load_classifier
    from attnlab.inference.tasks import run_task

    methods = check_methods(methods)
    text = state.check_texts([text], field="text")[0]
    run = state.run(run_name)
    task = run_task(run).name
    if task not in EXPLAINED_TASKS:
        raise ApiError(422, f"run {run.name!r} is a {task} run; /v1/explain explains classification runs")
    max_tokens = state.limits.max_attention_tokens

    def explain_with(loaded: Any) -> tuple[Any, list[str], int]:
        clf = load_classifier(loaded)
        sent = attribute(text, clf, methods=methods, max_tokens=max_tokens)[0]
        n_input = len(loaded.tokenizer(text, verbose=False)["input_ids"])
        return sent, clf.notes, n_input

    sent, notes, n_input = state.with_eager_model(explain_with, run=run.name)
    truncated = n_input > len(sent.tokens)
    if truncated:
        notes = [*notes, f"text truncated from {n_input} to {len(sent.tokens)} tokens"]
    return Explained(run.name, sent, truncated, notes)


@router.post("/v1/explain", tags=["explain"])
def explain(req: ExplainRequest, state: State) -> dict[str, Any]:
    """Token attributions of ``text`` through a served run, one entry per method.

    ``tokens`` (with ``special``) and ``words`` are shared by every method; ``methods[m]`` holds
    ``scores`` (one per token; higher = more support for the predicted class), ``word_scores`` (a
    word's pieces summed, special tokens left out) and ``seconds``. ``label`` and ``probability``
    are the run's prediction, which every method explains.
    """
    start = time.perf_counter()
    done = explain_text(state, req.text, req.run, req.methods)
    return {"run": done.run, **done.sentence.to_dict(), "truncated": done.truncated, "notes": done.notes,
            "elapsed_ms": round(1000 * (time.perf_counter() - start), 1)}
