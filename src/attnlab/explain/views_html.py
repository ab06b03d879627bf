"""Interactive attention views as self-contained HTML (inline JS/CSS, data embedded, no network).

* head view (in the style of bertviz): the tokens in two columns (queries left, keys right), a line
  per weight whose opacity is the weight; hovering a token shows only its lines; a layer select and
  head checkboxes, several heads overlaid in distinct colours.
* model view: a thumbnail of every layer x head; clicking one selects it in the head view and
  shows it enlarged.

:func:`to_notebook_html` returns a fragment (unique element ids, so several can share a page; in
Jupyter the inline script runs), :func:`to_html` a full document that works from ``file://``, and
:func:`to_iframe_html` an ``<iframe srcdoc>`` for hosts that do not run scripts in HTML (Gradio).
"""

from __future__ import annotations

import base64
import html
import json
import uuid
from collections.abc import Sequence
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from attnlab.explain.extract import AttentionResult
from attnlab.io import write_text_atomic

MAX_16BIT_WEIGHTS = 1_000_000  # above this many weights the page stores 8 bits per weight


@cache
def _asset(name: str) -> str:
    return (resources.files("attnlab.explain") / "assets" / name).read_text(encoding="utf-8")


def _script_json(data: Any) -> str:
    """JSON that is safe inside a <script> element (no '</script>', no '<!--')."""
    return (json.dumps(data, separators=(",", ":"), ensure_ascii=False)
            .replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def viewer_data(result: AttentionResult, layer: int = 0, heads: Sequence[int] | None = None) -> dict[str, Any]:
    """What the viewer script needs: tokens and the weights as base64 little-endian uint16 (uint8
    for long texts, to keep the page small; lines under 0.01 are not drawn anyway)."""
    layer, _ = result.check_index(layer, 0)
    heads = list(range(result.num_heads)) if heads is None else [result.check_index(layer, h)[1] for h in heads]
    bits = 16 if result.attentions.size <= MAX_16BIT_WEIGHTS else 8
    scale, dtype = (65535, "<u2") if bits == 16 else (255, "u1")
    q = np.rint(np.clip(result.attentions, 0.0, 1.0) * scale).astype(dtype)
    return {
        "model": result.model_name,
        "tokens": result.display_tokens,
        "special": [bool(s) for s in result.special_mask],
        "layers": result.num_layers,
        "heads": result.num_heads,
        "causal": result.is_causal,
        "layer": layer,
        "selected": heads,
        "bits": bits,
        "attn": base64.b64encode(q.tobytes()).decode("ascii"),
    }


def to_notebook_html(result: AttentionResult, layer: int = 0, heads: Sequence[int] | None = None, *,
                     element_id: str | None = None, label: str | None = None) -> str:
    """The viewer as an HTML fragment (a <div> with its own <style> and <script>).

    Ids are unique per call (or ``element_id``), so any number of fragments can share a page.
    ``label`` replaces the model name in the viewer's title (e.g. "before: minilm-l6").
    """
    vid = element_id or f"attnlab-{uuid.uuid4().hex[:12]}"
    e = html.escape
    kind = "causal (each token sees only earlier ones)" if result.is_causal else "bidirectional"
    notes = "".join(f' · <span class="attnlab-note">{e(n)}</span>' for n in result.notes)
    sub = f"{result.seq_len} tokens · {result.num_layers} layers × {result.num_heads} heads · {kind}{notes}"
    return f"""<div class="attnlab-viewer" id="{vid}" data-model="{e(result.model_name)}">
<style>{_asset("viewer.css")}</style>
<div class="attnlab-title">Attention: {e(label or result.model_name)}</div>
<div class="attnlab-sub">{sub}<br>
Left: the token attending (query); right: the token attended to (key). Line opacity = weight.
Hover a token to see only its lines; click a thumbnail to show that head.</div>
<div class="attnlab-controls">
<label>Layer <select id="{vid}-layer" class="attn-layer-select"></select></label>
<span>Heads <span id="{vid}-heads" class="attnlab-heads"></span></span>
<button type="button" data-act="all">all</button><button type="button" data-act="none">none</button>
</div>
<div class="attnlab-panels">
<div class="attnlab-headview"><svg id="{vid}-svg" class="attn-head-svg" xmlns="http://www.w3.org/2000/svg"
 data-render-count="0" data-hover=""></svg></div>
<div class="attnlab-side">
<div class="attnlab-caption">Model view: every layer × head (click one)</div>
<div id="{vid}-model" class="attnlab-modelview"></div>
<div class="attnlab-caption" id="{vid}-detail-title"></div>
<canvas id="{vid}-detail" class="attn-detail" width="1" height="1"></canvas>
</div>
</div>
<script>
{_asset("viewer.js")}
window.attnlabViewer("{vid}", {_script_json(viewer_data(result, layer, heads))});
</script>
</div>"""


def to_html(results: AttentionResult | Sequence[AttentionResult], layer: int = 0,
            heads: Sequence[int] | None = None, *, title: str | None = None,
            labels: Sequence[str] | None = None) -> str:
    """A complete HTML document with one viewer per result (e.g. a base model and its fine-tune);
    ``labels`` name the viewers (default: the model names)."""
    items = [results] if isinstance(results, AttentionResult) else list(results)
    if not items:
        raise ValueError("to_html needs at least one AttentionResult")
    names = list(labels) if labels is not None else [r.model_name for r in items]
    if len(names) != len(items):
        raise ValueError(f"{len(items)} results but {len(names)} labels")
    title = title or "Attention: " + " vs ".join(names)
    text = items[0].text
    body = "\n".join(to_notebook_html(r, layer, heads, label=n) for r, n in zip(items, names, strict=True))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<link rel="icon" href="data:,">
</head>
<body style="margin:16px;font-family:system-ui,sans-serif;background:#fafafa">
<h2 style="margin:0 0 4px;font-weight:600">{html.escape(title)}</h2>
<div style="color:#555;margin-bottom:8px">Text: “{html.escape(text)}”</div>
{body}
</body></html>
"""


def to_iframe_html(results: AttentionResult | Sequence[AttentionResult], height: int = 760, **kwargs: Any) -> str:
    """The full document inside an ``<iframe srcdoc>``: for hosts whose HTML component does not run
    scripts (Gradio's ``gr.HTML``)."""
    doc = html.escape(to_html(results, **kwargs), quote=True)
    return (f'<iframe srcdoc="{doc}" style="width:100%;height:{int(height)}px;border:0" '
            'sandbox="allow-scripts"></iframe>')


def write_html(results: AttentionResult | Sequence[AttentionResult], path: str | Path, **kwargs: Any) -> Path:
    """Write :func:`to_html` to ``path`` atomically."""
    return write_text_atomic(path, to_html(results, **kwargs))
