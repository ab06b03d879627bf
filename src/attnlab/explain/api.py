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
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from attnlab.explain import views_html, views_png
from attnlab.explain.diff import diff_results
from attnlab.explain.extract import DEFAULT_SOURCE, LoadedModel, extract_attention
from attnlab.explain.rollout import rollout, rollout_html
from attnlab.explain.stats import head_stats
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
        written = {}
        for f in sorted(tmp.iterdir()):
            os.replace(f, out / f.name)
            written[f.name] = out / f.name
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log.info("Wrote %d files to %s in %.2fs", len(written), out, time.perf_counter() - start)
    return written
