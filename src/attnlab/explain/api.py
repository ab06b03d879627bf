"""One call that writes every attention view of a text: :func:`explain`.

```
out_dir/
  head.png        one head (layer 0, head 0 unless chosen)
  layer.png       every head of one layer (the last unless chosen)
  model.png       every layer x head as thumbnails
  attention.html  interactive head view + model view (self-contained, opens from file://)
  rollout.html    the text highlighted by rollout importance; rollout.json the numbers
  stats.json      per-head entropy, attention distance, share on special tokens
  diff.png, diff.json   with ``compare``: which heads changed between the two models
```

:func:`explain_methods` writes token attributions instead (``attribution.py``): attributions.json,
attributions.png and attributions.html; :func:`write_faithfulness` a faithfulness report
(faithfulness.json, deletion_curves.png).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from attnlab.errors import UserError
from attnlab.explain import views_html, views_png
from attnlab.explain.attribution import (
    DEFAULT_STEPS,
    METHOD_DESCRIPTIONS,
    METHODS,
    Classifier,
    attribute,
    load_classifier,
    parse_methods,
)
from attnlab.explain.diff import diff_results
from attnlab.explain.extract import DEFAULT_SOURCE, LoadedModel, QueryKeys, extract_attention, extract_query_keys
from attnlab.explain.faithfulness import rank_agreement
from attnlab.explain.rollout import rollout, rollout_html
from attnlab.explain.stats import head_stats
from attnlab.explain.views_attribution import attribution_html, plot_attributions, plot_deletion_curves
from attnlab.explain.views_neuron import NEURON_MAX_TOKENS
from attnlab.io import write_json_atomic, write_text_atomic

log = logging.getLogger(__name__)

DIFF_FILES = ("diff.png", "diff.json")


def _jsonable(obj: Any) -> Any:
    """What the JSON views hold beyond plain types: numpy arrays and scalars, paths."""
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def explain(text: str, model: str | LoadedModel = DEFAULT_SOURCE, compare: str | LoadedModel | None = None,
            out_dir: str | Path = "explain-out", *, layer: int | None = None, head: int | None = None,
            top_k: int = 10, max_tokens: int | None = None) -> dict[str, Path]:
    """Explain how ``model`` attends to ``text``; with ``compare``, also how ``compare`` differs
    (``model`` is "before", ``compare`` "after"). Returns ``{file name: path}`` of what was written.

    ``layer``/``head`` choose the head of head.png (default layer 0, head 0), the layer of layer.png
    (default the last) and what attention.html opens on. Everything is rendered into a temporary
    folder beside ``out_dir`` and then moved in, so ``out_dir`` never holds half-written files.
    """
    start = time.perf_counter()
    result = extract_attention(text, model, max_tokens=max_tokens)
    head_layer, head_idx = result.check_index(layer, head)
    layer_idx = result.check_index(-1 if layer is None else layer, 0)[0]
    other = extract_attention(text, compare, max_tokens=max_tokens) if compare is not None else None
    diff = diff_results(result, other) if other is not None else None
    log.info("Extracted attention in %.2fs", time.perf_counter() - start)

    out = Path(out_dir).expanduser()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.tmp-"))
    try:
        views_png.plot_head(result, tmp / "head.png", head_layer, head_idx)
        views_png.plot_layer(result, tmp / "layer.png", layer_idx)
        views_png.plot_model(result, tmp / "model.png")
        heads = None if head is None else [head_idx]
        shown, labels = ([result], None) if other is None else (
            [result, other], [f"before: {result.model_name}", f"after: {other.model_name}"])
        views_html.write_html(shown, tmp / "attention.html", layer=head_layer if layer is not None else 0,
                              heads=heads, labels=labels)
        roll = rollout(result)
        write_text_atomic(tmp / "rollout.html", rollout_html(roll, full_document=True))
        write_json_atomic(tmp / "rollout.json", roll.to_dict(), default=_jsonable)
        stats = head_stats(result)
        write_json_atomic(tmp / "stats.json", {**result.summary(), **stats.to_dict(), "rows": stats.to_rows()},
                          default=_jsonable)
        if diff is not None:
            views_png.plot_diff(diff, tmp / "diff.png")
            write_json_atomic(tmp / "diff.json", diff.to_dict(top_k), default=_jsonable)

        out.mkdir(parents=True, exist_ok=True)
        if diff is None:
            for stale in DIFF_FILES:  # a diff of an earlier call would not match this text
                if (out / stale).is_file():
                    log.info("Removing %s from an earlier comparison", out / stale)
                    (out / stale).unlink()
        written = _move_in(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log.info("Wrote %d files to %s in %.2fs", len(written), out, time.perf_counter() - start)
    return written


def _move_in(tmp: Path, out: Path) -> dict[str, Path]:
    """Move every file of ``tmp`` into ``out`` (each move atomic); ``{name: path}``."""
    out.mkdir(parents=True, exist_ok=True)
    written = {}
    for f in sorted(tmp.iterdir()):
        os.replace(f, out / f.name)
        written[f.name] = out / f.name
    return written


def _write_all(out_dir: str | Path, write: Callable[[Path], None]) -> dict[str, Path]:
    """``write(tmp)`` into a temporary folder beside ``out_dir``, then move its files in."""
    out = Path(out_dir).expanduser()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.tmp-"))
    try:
        write(tmp)
        return _move_in(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def explain_methods(text: str, model: str | LoadedModel | Classifier = DEFAULT_SOURCE,
                    out_dir: str | Path = "explain-out", *, methods: str | list[str] = METHODS,
                    n_steps: int = DEFAULT_STEPS) -> dict[str, Path]:
    """Score ``text``'s tokens with each of ``methods`` and write attributions.json (per method: token
    and word scores, seconds; the predicted label and probability; rank agreement), attributions.png
    and attributions.html. Returns ``{file name: path}``."""
    start = time.perf_counter()
    methods = parse_methods(methods)  # before the model loads: a typo costs nothing
    clf = load_classifier(model)
    for note in clf.notes:
        log.warning("%s", note)
    sent = attribute(text, clf, methods=methods, n_steps=n_steps)[0]
    neuron, neuron_note = query_keys_for_view(text, clf.loaded, len(sent.tokens))
    notes = clf.notes + ([neuron_note] if neuron_note else [])
    names = list(sent.scores)
    agreement = rank_agreement([sent], names)
    payload = {"model": clf.loaded.name, "source": clf.loaded.source, "pooling": clf.pooling, "n_steps": n_steps,
               **sent.to_dict(), "rank_agreement": agreement, "notes": notes,
               "method_descriptions": {m: METHOD_DESCRIPTIONS[m] for m in names}}

    def write(tmp: Path) -> None:
        write_json_atomic(tmp / "attributions.json", payload, default=_jsonable)
        plot_attributions(sent, tmp / "attributions.png")
        write_text_atomic(tmp / "attributions.html",
                          attribution_html(sent, agreement, model_name=clf.loaded.name, notes=notes, neuron=neuron))

    written = _write_all(out_dir, write)
    log.info("Wrote %d files to %s in %.2fs", len(written), out_dir, time.perf_counter() - start)
    return written


def query_keys_for_view(text: str, loaded: LoadedModel, n_tokens: int) -> tuple[QueryKeys | None, str | None]:
    """(the neuron view's query and key vectors, None) or (None, a note saying why the page has none)."""
    if n_tokens > NEURON_MAX_TOKENS:
        return None, f"no neuron view: the text has {n_tokens} tokens (it is drawn for up to {NEURON_MAX_TOKENS})"
    try:
        return extract_query_keys(text, loaded), None
    except UserError as exc:
        return None, f"no neuron view: {exc.what}"


def write_faithfulness(report: dict[str, Any], out_dir: str | Path) -> dict[str, Path]:
    """A :func:`~attnlab.explain.faithfulness.faithfulness` report as faithfulness.json and
    deletion_curves.png in ``out_dir``."""

    def write(tmp: Path) -> None:
        write_json_atomic(tmp / "faithfulness.json", report, default=_jsonable)
        plot_deletion_curves(report, tmp / "deletion_curves.png")

    return _write_all(out_dir, write)
