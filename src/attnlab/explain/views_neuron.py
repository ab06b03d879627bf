"""The neuron view (as in bertviz): for a chosen layer, head, query token and key token, the query
vector, the key vector and their elementwise product, whose sum times 1/sqrt(d_head) is the
pre-softmax score; beside it every key's score and weight for that query (softmax over the row),
and the weight the model itself computed. It shows *why* an attention weight is what it is.

The numbers are the model's (:func:`attnlab.explain.extract.extract_query_keys` hooks its query and
key projections); the page holds them as float32 and computes products, sums and the softmax in the
browser. A self-contained fragment (inline style and script) for ``attributions.html``.
"""

from __future__ import annotations

import base64
import html
import json

import numpy as np

from attnlab.explain.extract import QueryKeys

NEURON_MAX_TOKENS = 64  # longer texts get no neuron view (the page would hold L x H x T x (2 d + T) floats)

_CSS = """
.nv-view{font:13px/1.5 sans-serif;margin-top:12px}
.nv-view select{margin:0 8px 0 2px}
.nv-vec{display:flex;align-items:center;margin:2px 0}
.nv-vec .nv-name{width:150px;flex:none;text-align:right;padding-right:8px;white-space:nowrap;overflow:hidden}
.nv-cell{width:14px;height:16px;margin-right:1px;flex:none}
.nv-key{display:inline-block;padding:1px 4px;margin:1px;border-radius:3px;cursor:pointer;border:2px solid transparent}
.nv-key[aria-selected=true]{border-color:#333}
.nv-sum{margin:6px 0 6px 158px}
"""

_JS = """
(function(){
  const root = document.currentScript.closest('.nv-view');
  const D = JSON.parse(root.querySelector('script.nv-data').textContent);
  function floats(b64) {
    const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
    const view = new DataView(bytes.buffer), out = new Float64Array(bytes.length / 4);
    for (let i = 0; i < out.length; i++) out[i] = view.getFloat32(4 * i, true);
    return out;
  }
  const Q = floats(D.q), K = floats(D.k), A = floats(D.attn), T = D.tokens.length, d = D.d;
  const sel = name => root.querySelector('select.nv-sel-' + name);
  function fill(name, labels, value) {
    const s = sel(name);
    labels.forEach((label, i) => { const o = document.createElement('option'); o.value = i; o.textContent = label;
      s.appendChild(o); });
    s.value = value;
    s.addEventListener('change', render);
  }
  const tokenLabels = D.tokens.map((t, i) => i + ': ' + t);
  fill('layer', Array.from({length: D.layers}, (_, i) => String(i)), D.layer);
  fill('head', Array.from({length: D.heads}, (_, i) => String(i)), D.head);
  fill('query', tokenLabels, D.query);
  fill('key', tokenLabels, D.key);
  const vec = (arr, l, h, t) => arr.subarray(((l * D.heads + h) * T + t) * d, ((l * D.heads + h) * T + t + 1) * d);
  function colour(v, top) {
    const a = top > 0 ? Math.min(1, Math.abs(v) / top) : 0;
    return v >= 0 ? `rgba(220,60,30,${a.toFixed(3)})` : `rgba(40,90,220,${a.toFixed(3)})`;
  }
  function drawVec(cls, values) {
    const row = root.querySelector('.nv-vec.' + cls + ' .nv-cells');
    const top = Math.max(...Array.from(values, Math.abs));
    row.replaceChildren(...Array.from(values, (v, i) => { const c = document.createElement('div');
      c.className = 'nv-cell'; c.style.background = colour(v, top); c.title = '[' + i + '] ' + v.toPrecision(4);
      return c; }));
  }
  let renders = 0;
  function render() {
    const l = +sel('layer').value, h = +sel('head').value, i = +sel('query').value, j = +sel('key').value;
    const q = vec(Q, l, h, i), k = vec(K, l, h, j), prod = q.map((x, n) => x * k[n]);
    root.querySelector('.nv-vec.nv-q .nv-name').textContent = 'query "' + D.tokens[i] + '"';
    root.querySelector('.nv-vec.nv-k .nv-name').textContent = 'key "' + D.tokens[j] + '"';
    drawVec('nv-q', q); drawVec('nv-k', k); drawVec('nv-p', prod);
    const scores = Array.from({length: T}, (_, m) => { const km = vec(K, l, h, m);
      let s = 0; for (let n = 0; n < d; n++) s += q[n] * km[n]; return s * D.scale; });
    const top = Math.max(...scores), exps = scores.map(s => Math.exp(s - top)), z = exps.reduce((a, b) => a + b, 0);
    const weights = exps.map(e => e / z), own = A[((l * D.heads + h) * T + i) * T + j];
    const dot = prod.reduce((a, b) => a + b, 0);
    root.querySelector('.nv-sum').textContent = `sum(q × k) = ${dot.toFixed(4)}; × 1/√${d} = ${D.scale.toFixed(4)}` +
      ` → score ${scores[j].toFixed(4)}; softmax over the row → weight ${weights[j].toFixed(4)}` +
      ` (the model's own weight: ${own.toFixed(4)})`;
    const keys = root.querySelector('.nv-keys');
    const wtop = Math.max(...weights);
    keys.replaceChildren(...D.tokens.map((t, m) => { const s = document.createElement('span');
      s.className = 'nv-key'; s.textContent = t; s.dataset.index = m;
      s.style.background = `rgba(120,60,200,${(weights[m] / wtop).toFixed(3)})`;
      s.title = `score ${scores[m].toFixed(4)}, weight ${weights[m].toFixed(4)}`;
      s.setAttribute('aria-selected', String(m === j));
      s.addEventListener('click', () => { sel('key').value = m; render(); });
      return s; }));
    Object.assign(root.dataset, {layer: l, head: h, query: i, key: j, score: scores[j], weight: weights[j],
      modelWeight: own, renderCount: ++renders});
  }
  render();
})();
"""


def _floats(a: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(a, dtype="<f4").tobytes()).decode("ascii")


def neuron_data(qk: QueryKeys, layer: int | None = None, head: int = 0, query: int = 0,
                key: int | None = None) -> dict:
    """What the view's script needs; it opens on ``layer`` (default the last), ``head``, ``query``
    (default [CLS]) and ``key`` (default the key that query attends to most)."""
    layer = qk.queries.shape[0] - 1 if layer is None else layer
    key = int(np.argmax(qk.attentions[layer, head, query])) if key is None else key
    return {"tokens": qk.tokens, "special": [bool(s) for s in qk.special_mask], "layers": int(qk.queries.shape[0]),
            "heads": int(qk.queries.shape[1]), "d": qk.head_dim, "scale": qk.scale, "layer": layer, "head": head,
            "query": query, "key": key, "q": _floats(qk.queries), "k": _floats(qk.keys), "attn": _floats(qk.attentions)}


def neuron_html(qk: QueryKeys, **start: int) -> str:
    """The neuron view as a fragment with its own <style> and <script> (no network)."""
    payload = json.dumps(neuron_data(qk, **start)).replace("</", "<\\/")
    rows = "".join(f'<div class="nv-vec {cls}"><span class="nv-name">{name}</span><span class="nv-cells" '
                   'style="display:flex"></span></div>'
                   for cls, name in (("nv-q", "query"), ("nv-k", "key"), ("nv-p", "query × key")))
    return (f'<div class="nv-view"><style>{_CSS}</style><h4>Neuron view: why a query attends to a key</h4>'
            '<p class="attr-small">The query and key vectors of two tokens in one head, as the model computed them '
            f'({qk.head_dim} numbers each; red positive, blue negative), and their elementwise product: its sum '
            'times 1/√d is the pre-softmax score; a softmax over every key gives the attention weight. Click a key '
            f'below to pick it. Checked against {html.escape(qk.model_name)}\'s own weights: largest difference '
            f'{qk.max_error:.1e}.</p>'
            '<div>Layer <select class="nv-sel-layer"></select>Head <select class="nv-sel-head"></select>'
            'Query <select class="nv-sel-query"></select>Key <select class="nv-sel-key"></select></div>'
            f'{rows}<div class="nv-sum"></div><div>Every key for this query (shade = weight): '
            '<span class="nv-keys"></span></div>'
            f'<script type="application/json" class="nv-data">{payload}</script><script>{_JS}</script></div>')
