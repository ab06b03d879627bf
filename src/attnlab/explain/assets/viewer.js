/* attnlab attention viewer: a head view (bertviz style) and a model view, no dependencies.
 *
 * Each viewer is a <div class="attnlab-viewer" id=ID>; this script is inlined after it, followed by
 * attnlabViewer(ID, data) with the weights. Everything is looked up through ID, so several viewers
 * can share one page (Jupyter, docs); no data lives in a separate <script> that a host could strip.
 *
 * Test hooks: the head-view <svg id=ID-svg> carries data-render-count (incremented on every
 * render), data-hover ("left:3", "right:5" or ""), data-layer, data-heads ("0,3") and data-lines
 * (lines drawn); tokens are <text class="attn-token" data-side data-index>; lines are
 * <line class="attn-line" data-head data-from data-to stroke-opacity=weight>; thumbnails are
 * <canvas class="attn-thumb" data-layer data-head>.
 */
(function () {
  "use strict";
  var SVGNS = "http://www.w3.org/2000/svg";
  var PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd"];
  var MIN_WEIGHT = 0.01;       // lines below this are not drawn (they would be invisible anyway)
  var MIN_WEIGHT_HOVER = 0.001;
  var THUMB = 64;              // thumbnails are block-averaged down to at most THUMB x THUMB
  var ROW = 22;                // head view: pixels per token row

  function color(h) { return PALETTE[h % PALETTE.length]; }

  function decode(b64, n, bits) {    // little-endian uint16 (or uint8) -> weights in [0, 1]
    var bin = atob(b64), out = new Float32Array(n), k;
    if (bits === 8) {
      for (k = 0; k < n; k++) out[k] = bin.charCodeAt(k) / 255;
    } else {
      for (k = 0; k < n; k++) out[k] = (bin.charCodeAt(2 * k) | (bin.charCodeAt(2 * k + 1) << 8)) / 65535;
    }
    return out;
  }

  function el(tag, attrs, ns) {
    var e = ns ? document.createElementNS(SVGNS, tag) : document.createElement(tag);
    for (var k in attrs) if (Object.prototype.hasOwnProperty.call(attrs, k)) e.setAttribute(k, attrs[k]);
    return e;
  }

  function heatPixels(ctx, get, t, n, rgb) {   // draw a t x t matrix block-averaged to n x n
    var img = ctx.createImageData(n, n), d = img.data, step = t / n;
    for (var a = 0; a < n; a++) {
      for (var b = 0; b < n; b++) {
        var i0 = Math.floor(a * step), i1 = Math.max(i0 + 1, Math.floor((a + 1) * step));
        var j0 = Math.floor(b * step), j1 = Math.max(j0 + 1, Math.floor((b + 1) * step));
        var s = 0;
        for (var i = i0; i < i1; i++) for (var j = j0; j < j1; j++) s += get(i, j);
        var v = Math.sqrt(s / ((i1 - i0) * (j1 - j0)));   // sqrt: small weights stay visible
        var p = 4 * (a * n + b);
        d[p] = Math.round(255 - v * (255 - rgb[0]));
        d[p + 1] = Math.round(255 - v * (255 - rgb[1]));
        d[p + 2] = Math.round(255 - v * (255 - rgb[2]));
        d[p + 3] = 255;
      }
    }
    ctx.putImageData(img, 0, 0);
  }

  function hexRgb(hex) {
    return [parseInt(hex.slice(1, 3), 16), parseInt(hex.slice(3, 5), 16), parseInt(hex.slice(5, 7), 16)];
  }

  function attnlabViewer(id, data) {
    var root = document.getElementById(id);
    if (!root || root.getAttribute("data-ready") === "1") return null;
    var L = data.layers, H = data.heads, T = data.tokens.length;
    var A = decode(data.attn, L * H * T * T, data.bits);
    function w(l, h, i, j) { return A[((l * H + h) * T + i) * T + j]; }

    var state = { layer: data.layer, heads: data.selected.slice(), hover: null, renders: 0,
      focus: [data.layer, data.selected.length ? data.selected[0] : 0] };

    // ---- controls: layer select + head checkboxes
    var select = document.getElementById(id + "-layer");
    for (var l = 0; l < L; l++) select.appendChild(el("option", { value: String(l) })).textContent = "Layer " + l;
    select.value = String(state.layer);
    var headBox = document.getElementById(id + "-heads");
    var boxes = [];
    for (var h = 0; h < H; h++) {
      var lab = el("label", { title: "head " + h });
      var cb = el("input", { type: "checkbox", "class": "attn-head-toggle", "data-head": String(h) });
      cb.checked = state.heads.indexOf(h) >= 0;
      var sw = el("span", { "class": "attnlab-swatch", style: "background:" + color(h) });
      lab.appendChild(cb); lab.appendChild(sw); lab.appendChild(document.createTextNode(String(h)));
      headBox.appendChild(lab);
      boxes.push(cb);
    }

    // ---- head view: two token columns and the lines between them
    var svg = document.getElementById(id + "-svg");
    var maxChars = 1;
    data.tokens.forEach(function (t) { maxChars = Math.max(maxChars, t.length); });
    var colW = Math.min(150, 12 + 7.5 * maxChars), gapW = 230, top = 24;
    var leftX = colW, rightX = colW + gapW, width = 2 * colW + gapW + 10, height = top + T * ROW + 6;
    svg.setAttribute("width", width); svg.setAttribute("height", height);
    svg.setAttribute("viewBox", "0 0 " + width + " " + height);
    var heading = el("text", { x: leftX, y: 14, "text-anchor": "end", "font-size": 11, fill: "#777" }, true);
    heading.textContent = "query";
    svg.appendChild(heading);
    var heading2 = el("text", { x: rightX, y: 14, "font-size": 11, fill: "#777" }, true);
    heading2.textContent = "key";
    svg.appendChild(heading2);
    var lines = el("g", { "class": "attn-lines" }, true);
    svg.appendChild(lines);
    var tokenEls = { left: [], right: [] }, tokenBgs = { left: [], right: [] };
    ["left", "right"].forEach(function (side) {
      for (var i = 0; i < T; i++) {
        var y = top + i * ROW + ROW / 2;
        var bg = el("rect", { "class": "attn-token-bg", x: side === "left" ? 2 : rightX - 2, y: y - ROW / 2 + 1,
          width: colW - 6, height: ROW - 2, rx: 3 }, true);
        var t = el("text", { "class": "attn-token" + (data.special[i] ? " attn-special" : ""),
          x: side === "left" ? leftX - 6 : rightX + 4, y: y + 4, "text-anchor": side === "left" ? "end" : "start",
          "data-side": side, "data-index": String(i) }, true);
        t.textContent = data.tokens[i];
        (function (side, i) {
          var enter = function () { state.hover = { side: side, index: i }; render(); };
          var leave = function () { state.hover = null; render(); };
          t.addEventListener("mouseenter", enter); bg.addEventListener("mouseenter", enter);
          t.addEventListener("mouseleave", leave); bg.addEventListener("mouseleave", leave);
        })(side, i);
        svg.appendChild(bg); svg.appendChild(t);
        tokenEls[side].push(t); tokenBgs[side].push(bg);
      }
    });

    // ---- model view: one thumbnail per layer x head
    var thumbs = [];
    var table = el("table");
    var hr = el("tr");
    hr.appendChild(el("th"));
    for (var hh = 0; hh < H; hh++) hr.appendChild(el("th")).textContent = "H" + hh;
    table.appendChild(hr);
    var n = Math.min(T, THUMB);
    for (var ll = 0; ll < L; ll++) {
      var tr = el("tr");
      tr.appendChild(el("th")).textContent = "L" + ll;
      for (var h2 = 0; h2 < H; h2++) {
        var c = el("canvas", { "class": "attn-thumb", width: n, height: n, "data-layer": String(ll),
          "data-head": String(h2), title: "layer " + ll + ", head " + h2 + ": click to show" });
        c.style.setProperty("--attn-color", color(h2));
        (function (ll, h2) {
          heatPixels(c.getContext("2d"), function (i, j) { return w(ll, h2, i, j); }, T, n, [8, 48, 107]);
          c.addEventListener("click", function () { selectHead(ll, h2); });
        })(ll, h2);
        var td = el("td");
        td.appendChild(c);
        tr.appendChild(td);
        thumbs.push(c);
      }
      table.appendChild(tr);
    }
    document.getElementById(id + "-model").appendChild(table);
    var detail = document.getElementById(id + "-detail");
    var detailCaption = document.getElementById(id + "-detail-title");

    function drawDetail() {
      var l = state.focus[0], h = state.focus[1], m = Math.min(T, 240);
      detail.width = m; detail.height = m;
      heatPixels(detail.getContext("2d"), function (i, j) { return w(l, h, i, j); }, T, m, hexRgb(color(h)));
      detail.setAttribute("data-layer", String(l)); detail.setAttribute("data-head", String(h));
      detailCaption.textContent = "Layer " + l + ", head " + h + " (rows: query, columns: key)";
    }

    function selectHead(l, h) {
      state.layer = l; state.heads = [h]; state.focus = [l, h];
      select.value = String(l);
      boxes.forEach(function (b, k) { b.checked = k === h; });
      render();
    }

    function render() {
      var l = state.layer, hv = state.hover, count = 0;
      while (lines.firstChild) lines.removeChild(lines.firstChild);
      var frag = document.createDocumentFragment(), minW = hv ? MIN_WEIGHT_HOVER : MIN_WEIGHT;
      state.heads.forEach(function (h) {
        for (var i = 0; i < T; i++) {
          if (hv && hv.side === "left" && i !== hv.index) continue;
          for (var j = 0; j < T; j++) {
            if (hv && hv.side === "right" && j !== hv.index) continue;
            var v = w(l, h, i, j);
            if (v < minW) continue;
            var y1 = top + i * ROW + ROW / 2, y2 = top + j * ROW + ROW / 2;
            var line = el("line", { "class": "attn-line", x1: leftX + 2, y1: y1, x2: rightX - 4, y2: y2,
              stroke: color(h), "stroke-width": 2, "stroke-opacity": v.toFixed(3), "data-head": String(h),
              "data-from": String(i), "data-to": String(j) }, true);
            frag.appendChild(line);
            count++;
          }
        }
      });
      lines.appendChild(frag);
      ["left", "right"].forEach(function (side) {
        for (var i = 0; i < T; i++) {
          var on = !!hv && hv.side === side && hv.index === i;
          tokenEls[side][i].classList.toggle("attn-active", on);
          tokenBgs[side][i].classList.toggle("attn-active", on);
        }
      });
      thumbs.forEach(function (c) {
        var sel = +c.getAttribute("data-layer") === l && state.heads.indexOf(+c.getAttribute("data-head")) >= 0;
        c.classList.toggle("attn-selected", sel);
      });
      if (!hv) drawDetail();
      state.renders++;
      svg.setAttribute("data-render-count", String(state.renders));
      svg.setAttribute("data-hover", hv ? hv.side + ":" + hv.index : "");
      svg.setAttribute("data-layer", String(l));
      svg.setAttribute("data-heads", state.heads.join(","));
      svg.setAttribute("data-lines", String(count));
    }

    select.addEventListener("change", function () {
      state.layer = +select.value;
      state.focus = [state.layer, state.heads.length ? state.heads[0] : state.focus[1]];
      render();
    });
    boxes.forEach(function (b) {
      b.addEventListener("change", function () {
        state.heads = boxes.filter(function (x) { return x.checked; }).map(function (x) { return +x.getAttribute("data-head"); });
        if (state.heads.length) state.focus = [state.layer, state.heads[state.heads.length - 1]];
        render();
      });
    });
    root.querySelectorAll("button[data-act]").forEach(function (btn) {
      btn.addEventListener("click", function () {
        var all = btn.getAttribute("data-act") === "all";
        boxes.forEach(function (b) { b.checked = all; });
        state.heads = all ? boxes.map(function (_, k) { return k; }) : [];
        render();
      });
    });

    render();
    root.setAttribute("data-ready", "1");
    var api = { render: render, selectHead: selectHead, state: state };
    window.attnlabViewers = window.attnlabViewers || {};
    window.attnlabViewers[id] = api;
    return api;
  }

  window.attnlabViewer = attnlabViewer;
})();
