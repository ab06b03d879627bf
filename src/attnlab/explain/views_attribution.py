"""Views of token attributions: PNG bars (one panel per method), deletion curves, and a self-contained
HTML page with every method on the same token row (a switcher, the methods side by side, and how
much their rankings agree) and the neuron view of ``views_neuron.py``.

Colours: red = the token supports the predicted class, blue = it speaks against it; the strength is
``|score| / max |score|`` over the sentence's non-special tokens, so each method is on its own scale.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import numpy as np

from attnlab.explain.attribution import METHOD_DESCRIPTIONS, SentenceAttribution
from attnlab.explain.extract import QueryKeys
from attnlab.explain.views_neuron import neuron_html
from attnlab.explain.views_png import _new_figure, save_png

POSITIVE, NEGATIVE, SPECIAL = (220, 60, 30), (40, 90, 220), "#eee"
RANDOM = "random"  # the baseline row of a faithfulness report (drawn dashed)


def strengths(sent: SentenceAttribution, method: str) -> np.ndarray:
    """Signed scores scaled to [-1, 1] by the largest |score| among non-special tokens (special ones 0)."""
    s = np.where(np.asarray(sent.special, dtype=bool), 0.0, sent.scores[method])
    top = np.abs(s).max()
    return s / top if top > 0 else s


def token_colours(sent: SentenceAttribution, method: str) -> list[str]:
    """One CSS background per token."""
    out = []
    for special, v in zip(sent.special, strengths(sent, method), strict=True):
        rgb = POSITIVE if v >= 0 else NEGATIVE
        out.append(SPECIAL if special else f"rgba({rgb[0]},{rgb[1]},{rgb[2]},{abs(float(v)):.3f})")
    return out


# ------------------------------------------------------------------------------------------- PNG


def plot_attributions(sent: SentenceAttribution, path: str | Path) -> Path:
    """One bar panel per method over the non-special tokens (signed, scaled per method)."""
    methods = list(sent.scores)
    real = [i for i, s in enumerate(sent.special) if not s]
    labels = [sent.tokens[i] for i in real]
    fig = _new_figure(max(5.0, 0.45 * len(real) + 2), 1.5 * len(methods) + 0.8)
    axes = fig.subplots(len(methods), 1, sharex=True, squeeze=False)[:, 0]
    for ax, method in zip(axes, methods, strict=True):
        v = strengths(sent, method)[real]
        ax.bar(range(len(real)), v, color=[tuple(c / 255 for c in (POSITIVE if x >= 0 else NEGATIVE)) for x in v])
        ax.axhline(0, color="#999", linewidth=0.6)
        ax.set_ylim(-1.05, 1.05)
        ax.set_yticks([])
        ax.set_ylabel(method, rotation=0, ha="right", va="center", fontsize=9)
    axes[-1].set_xticks(range(len(real)), labels, rotation=60, ha="right", fontsize=9)
    fig.suptitle(f"{sent.label} (p = {sent.probability:.3f}); red supports it, blue opposes", fontsize=10)
    return save_png(fig, path)


def plot_deletion_curves(report: dict[str, Any], path: str | Path) -> Path:
    """Mean p(predicted class) as the top-k % of tokens are deleted, one line per method."""
    fig = _new_figure(7, 4.2)
    ax = fig.add_subplot()
    xs = [0.0] + [float(k.rstrip("%")) for k in report["ks"]]
    for name, row in report["methods"].items():
        style = {"color": "#777", "linestyle": "--"} if name == RANDOM else {}
        ax.plot(xs, row["deletion_curve"], marker="o", markersize=3, label=name, **style)
    ax.set_xscale("symlog", linthresh=1)
    ax.set_xticks(xs, [f"{x:g}" for x in xs])
    ax.set_xlabel("top-k % of tokens deleted")
    ax.set_ylabel("mean p(predicted class)")
    ax.set_title(f"Deletion curves, {report['model']} ({report['n_sentences']} sentences): lower = more faithful",
                 fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save_png(fig, path)


# ------------------------------------------------------------------------------------------ HTML

_CSS = """
.attr-view{font:14px/1.6 sans-serif;max-width:1100px}
.attr-token{display:inline-block;padding:1px 4px;margin:1px;border-radius:3px}
.attr-special{color:#888}
.attr-switcher button{margin:2px;padding:3px 10px;border:1px solid #aaa;border-radius:4px;background:#fafafa}
.attr-switcher button[aria-pressed=true]{background:#333;color:#fff}
.attr-view table{border-collapse:collapse;margin-top:8px}
.attr-view td,.attr-view th{padding:2px 6px;font-size:13px;border-bottom:1px solid #eee;text-align:left}
.attr-small{font-size:12px;color:#555}
"""

_JS = """
(function(){
  const root = document.currentScript.closest('.attr-view');
  const data = JSON.parse(root.querySelector('script.attr-data').textContent);
  const row = root.querySelector('.attr-main');
  const tokens = row.querySelectorAll('.attr-token');
  const buttons = root.querySelectorAll('.attr-switcher button');
  function show(method) {
    row.dataset.method = method;
    const m = data.methods[method];
    tokens.forEach((el, i) => { el.style.background = m.colours[i];
      el.title = method + ': ' + m.scores[i].toPrecision(3); });
    buttons.forEach(b => b.setAttribute('aria-pressed', String(b.dataset.method === method)));
    root.querySelector('.attr-seconds').textContent = m.seconds.toFixed(3) + ' s';
  }
  buttons.forEach(b => b.addEventListener('click', () => show(b.dataset.method)));
  show(data.first);
})();
"""


def _row(sent: SentenceAttribution, colours: list[str], cls: str = "") -> str:
    spans = []
    for tok, special, colour in zip(sent.tokens, sent.special, colours, strict=True):
        spans.append(f'<span class="attr-token{" attr-special" if special else ""}" '
                     f'style="background:{colour}">{html.escape(tok)}</span>')
    return f'<div class="{cls}">{"".join(spans)}</div>' if cls else "".join(spans)


def highlight_html(sent: SentenceAttribution, method: str) -> str:
    """One method's highlight of the tokens as an HTML fragment that needs no script or stylesheet
    (inline styles: for hosts such as Gradio's ``gr.HTML``); each token's title holds its score."""
    spans = []
    for tok, special, colour, score in zip(sent.tokens, sent.special, token_colours(sent, method),
                                           sent.scores[method], strict=True):
        spans.append(f'<span class="attr-token{" attr-special" if special else ""}" title="{html.escape(method)}: '
                     f'{float(score):.3g}" style="display:inline-block;padding:1px 4px;margin:1px;border-radius:3px;'
                     f'background:{colour}{";color:#888" if special else ""}">{html.escape(tok)}</span>')
    return (f'<div class="attr-highlight" data-method="{html.escape(method)}" style="font:15px/1.8 sans-serif">'
            f'{"".join(spans)}<div style="font-size:12px;color:#555">{html.escape(method)}: '
            f'{html.escape(METHOD_DESCRIPTIONS[method])}. Red supports <b>{html.escape(sent.label)}</b> '
            f'(p = {sent.probability:.3f}), blue opposes it; {sent.seconds[method]:.3f} s.</div></div>')


def _agreement_table(methods: list[str], agreement: dict[str, dict[str, float | None]]) -> str:
    head = "".join(f"<th>{html.escape(m)}</th>" for m in methods)
    rows = []
    for a in methods:
        cells = "".join(f"<td>{'–' if agreement[a].get(b) is None else f'{agreement[a][b]:+.2f}'}</td>"
                        for b in methods)
        rows.append(f"<tr><th>{html.escape(a)}</th>{cells}</tr>")
    return f'<table class="attr-agreement"><tr><th></th>{head}</tr>{"".join(rows)}</table>'


def attribution_html(sent: SentenceAttribution, agreement: dict[str, dict[str, float | None]], *,
                     model_name: str, notes: list[str] = (), neuron: QueryKeys | None = None) -> str:
    """A full HTML document (no external files) for one sentence and every method it was scored by;
    with ``neuron`` (the text's query and key vectors), the neuron view below them."""
    methods = list(sent.scores)
    colours = {m: token_colours(sent, m) for m in methods}
    data = {"first": methods[0], "methods": {m: {"colours": colours[m], "scores": [float(x) for x in sent.scores[m]],
                                                  "seconds": sent.seconds[m]} for m in methods}}
    payload = json.dumps(data).replace("</", "<\\/")
    buttons = "".join(f'<button type="button" data-method="{html.escape(m)}" aria-pressed="false">'
                      f"{html.escape(m)}</button>" for m in methods)
    side = "".join(f'<tr data-method="{html.escape(m)}"><th>{html.escape(m)}</th><td>{_row(sent, colours[m])}</td>'
                   f"<td class=attr-small>{sent.seconds[m]:.3f} s</td></tr>" for m in methods)
    note = "".join(f'<p class="attr-small">note: {html.escape(n)}</p>' for n in notes)
    body = (f'<div class="attr-view"><h3>Token attributions: {html.escape(model_name)}</h3>'
            f'<p>Predicted <b>{html.escape(sent.label)}</b> with probability {sent.probability:.3f}. '
            'Red tokens support the prediction, blue ones oppose it; each method is scaled to its own maximum.</p>'
            f'{note}<div class="attr-switcher">{buttons} <span class="attr-small attr-seconds"></span></div>'
            f'{_row(sent, colours[methods[0]], "attr-main")}'
            f'<h4>Side by side</h4><table class="attr-side">{side}</table>'
            '<h4>Rank agreement (Spearman, non-special tokens)</h4>'
            f'{_agreement_table(methods, agreement)}{neuron_html(neuron) if neuron is not None else ""}'
            f'<script type="application/json" class="attr-data">{payload}</script><script>{_JS}</script></div>')
    return ('<!DOCTYPE html><html><head><meta charset="utf-8"><title>Attributions: '
            f'{html.escape(model_name)}</title><style>{_CSS}</style></head><body>{body}</body></html>\n')
