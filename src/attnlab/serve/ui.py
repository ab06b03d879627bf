"""The web UI (Gradio Blocks), mounted inside the API app: Classify (with a token highlight by any
attribution method, computed as POST /v1/explain computes it), Attention, Compare, Chat.

Every tab calls the same :class:`~attnlab.serve.state.ServeState` as the REST API (the same
loaded models, batcher and limits). It works offline: analytics are off and the theme uses the
system's fonts, so the page loads nothing from outside the server.

Gradio's file route serves only what this UI made (the comparison plots it hands the gallery,
copied into Gradio's cache): no folder is opened to it (``allowed_paths``), and a guard in front
refuses any other file, uploads (the UI has no upload component) and Gradio's URL proxy.
"""

from __future__ import annotations

import html
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before gradio is imported
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import gradio as gr

from attnlab.chat import DEFAULT_SYSTEM, GenerationSettings
from attnlab.errors import UserError
from attnlab.serve.errors import ApiError
from attnlab.serve.middleware import PathGuardMiddleware
from attnlab.serve.state import ServeState

log = logging.getLogger(__name__)

SYSTEM_FONTS = ["ui-sans-serif", "system-ui", "-apple-system", "Segoe UI", "Roboto", "sans-serif"]
MONO_FONTS = ["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace"]
CHAT_HISTORY = 40  # messages sent to the model; older turns are left out
EXAMPLE = "the movie was not good at all"
HEAD_CHOICES = 12  # offered in the head menu; any other number can be typed
DEFAULT_HIGHLIGHT = "rollout"  # the Classify tab's first highlight (any of explain's methods can be picked)


def theme() -> gr.themes.Base:
    return gr.themes.Default(font=SYSTEM_FONTS, font_mono=MONO_FONTS)


def _gr_error(exc: Exception) -> gr.Error:
    msg = exc.message if isinstance(exc, ApiError) else exc.one_line() if isinstance(exc, UserError) else str(exc)
    return gr.Error(msg)


def _text_of(content: Any) -> str:
    """A chatbot message's text: gradio 6 hands content over as a list of {"type": "text", ...} parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        return str(content.get("text") or "")
    if isinstance(content, list | tuple):
        return "".join(_text_of(c) for c in content)
    return ""


def _image(path: Path) -> Any:
    """A PNG read into memory (Gradio writes it to its own cache, from where the page loads it)."""
    from PIL import Image

    with Image.open(path) as img:
        img.load()
        return img.copy()


def _optional_int(value: Any, what: str) -> int | None:
    if value is None or str(value).strip().lower() in ("", "all"):
        return None
    try:
        return int(float(value))
    except ValueError:
        raise gr.Error(f"{what} must be a number or 'all', got {value!r}") from None


def prediction_view(task: Any, row: dict[str, Any]) -> tuple[Any, str]:
    """What the Classify tab shows of one prediction ``row`` of a run of ``task`` (a RunTask): the
    Prediction box's value and the Markdown under it. A class prediction is its class probabilities
    (nothing under them); a regression one its value, named by the target; a multi-label one the labels
    that pass their thresholds, with every label's probability and threshold in a table under them."""
    from attnlab.data.labels import MULTI, SCORE

    if task.label_kind == SCORE:
        return f"{row['target']}: {row['score']:.4g}", f"Predicted **{row['target']}**: {row['score']:.4g}"
    if task.label_kind == MULTI:
        probs, cuts, on = row["probabilities"], row["thresholds"], row["labels"]
        lines = ["| label | probability | threshold | applies |", "|---|---:|---:|:---:|"]
        lines += [f"| {name} | {p:.1%} | {cuts[name]:.1%} | {'yes' if name in on else 'no'} |"
                  for name, p in sorted(probs.items(), key=lambda kv: -kv[1])]
        return (", ".join(on) if on else "no label passes its threshold"), "\n".join(lines)
    return row["probabilities"], ""


def _classify_tab(state: ServeState) -> None:
    from attnlab.explain.attribution import METHODS
    from attnlab.explain.views_attribution import highlight_html
    from attnlab.inference.tasks import run_task
    from attnlab.serve.routes.explain import EXPLAINED_TASKS, explain_text

    def highlight(text: str, run_name: str, method: str) -> str:
        """The tokens coloured by ``method``, computed as POST /v1/explain computes them (a note for a run
        whose task token attribution does not explain)."""
        task = run_task(state.run(run_name)).name
        if task not in EXPLAINED_TASKS:
            return (f'<div style="font-size:12px;color:#555">note: token attribution explains classification '
                    f"runs; this is a {html.escape(task)} run</div>")
        done = explain_text(state, text or "", run_name, [method])
        notes = "".join(f'<div style="font-size:12px;color:#555">note: {html.escape(n)}</div>' for n in done.notes)
        return highlight_html(done.sentence, method) + notes

    def classify(text: str, run_name: str, method: str) -> tuple[Any, str, str]:
        try:
            run, rows = state.classify_sync([text or ""], run_name)
            value, detail = prediction_view(run_task(run), rows[0])
            return value, detail, highlight(text, run_name, method)
        except (ApiError, UserError) as exc:
            raise _gr_error(exc) from None

    runs = list(state.runs)
    if not runs:
        gr.Markdown("No runs are served. Start the server with `attnlab serve --run RUN_DIR`.")
        return
    with gr.Row():
        c_text = gr.Textbox(label="Text", value=EXAMPLE, lines=3, scale=4, elem_id="classify-text")
        c_run = gr.Dropdown(runs, value=runs[0], label="Run", scale=1, elem_id="classify-run")
    with gr.Row():
        c_method = gr.Radio(list(METHODS), value=DEFAULT_HIGHLIGHT, label="Highlight tokens by", scale=4,
                            elem_id="classify-method")
        c_btn = gr.Button("Classify", variant="primary", scale=1, elem_id="classify-btn")
    with gr.Row():
        with gr.Column():
            c_label = gr.Label(label="Prediction", elem_id="classify-label")
            c_detail = gr.Markdown(elem_id="classify-detail")  # regression and multi-label: what the box sums up
        c_highlight = gr.HTML(label="Token attribution", elem_id="classify-highlight")
    for ev in (c_btn.click, c_text.submit, c_method.change):  # picking a method re-draws the highlight
        ev(classify, [c_text, c_run, c_method], [c_label, c_detail, c_highlight], concurrency_limit=4)


def _attention_tab(state: ServeState) -> None:
    from attnlab.explain import to_iframe_html

    def attention(text: str, model: str, layer: Any, head: Any) -> str:
        try:
            result = state.extract(text or "", model=model)
            layer, head = result.check_layer_head(_optional_int(layer, "layer"), _optional_int(head, "head"),
                                                  where=None)
        except (ApiError, UserError) as exc:
            raise _gr_error(exc) from None
        return to_iframe_html(result, height=720, layer=layer or 0, heads=None if head is None else [head])

    choices = state.attention_choices
    with gr.Row():
        a_text = gr.Textbox(label="Text", value=EXAMPLE, lines=2, scale=4, elem_id="attention-text")
        a_model = gr.Dropdown(choices, value=choices[0] if choices else None, label="Model",
                              scale=1, elem_id="attention-model")
        a_layer = gr.Number(0, label="Layer", precision=0, scale=1, elem_id="attention-layer")
        a_head = gr.Dropdown(["all", *map(str, range(HEAD_CHOICES))], value="all", label="Head",
                             allow_custom_value=True, scale=1, elem_id="attention-head")
    a_btn = gr.Button("Show attention", variant="primary", elem_id="attention-btn")
    a_view = gr.HTML(elem_id="attention-view")
    for ev in (a_btn.click, a_text.submit):
        ev(attention, [a_text, a_model, a_layer, a_head], a_view, concurrency_limit=2)


def _compare_tab(state: ServeState, demo: gr.Blocks) -> None:
    def comparison() -> tuple[str, list[Any]]:
        text, plots = state.comparison()
        return text, [_image(p) for p in plots]  # images, not paths: no folder is opened to Gradio

    k_table = gr.Markdown(elem_id="compare-table")
    k_plots = gr.Gallery(label="Plots", columns=2, height="auto", object_fit="contain", interactive=False,
                         format="png", elem_id="compare-plots")
    k_btn = gr.Button("Reload", elem_id="compare-reload")
    k_btn.click(comparison, None, [k_table, k_plots])
    demo.load(comparison, None, [k_table, k_plots])


def _chat_messages(history: list[dict], system: str) -> list[dict[str, str]]:
    """What the model is sent: the last turns of the chatbot's history, from a user turn on, after
    the system prompt (if any); empty unless the last turn is the user's."""
    msgs = [{"role": m["role"], "content": _text_of(m["content"])} for m in history
            if m.get("role") in ("user", "assistant")][-CHAT_HISTORY:]
    if not msgs or msgs[-1]["role"] != "user":
        return []
    while msgs and msgs[0]["role"] != "user":
        msgs.pop(0)
    if (system or "").strip():
        msgs.insert(0, {"role": "system", "content": system})
    return msgs


def _chat_tab(state: ServeState) -> None:
    def add_user(message: str, history: list[dict]) -> tuple[Any, list[dict]]:
        if not (message or "").strip():
            return gr.Textbox(value=message, interactive=False), history
        # the input is locked while the reply streams, and unlocked when it is done
        return gr.Textbox(value="", interactive=False), [*history, {"role": "user", "content": message}]

    def respond(history: list[dict], system: str, temperature: float, max_new_tokens: float) -> Iterator[list[dict]]:
        msgs = _chat_messages(history, system)
        if not msgs:
            yield history
            return
        settings = GenerationSettings(max_new_tokens=int(max_new_tokens), temperature=float(temperature))
        try:
            pieces = state.chat_model().stream(msgs, settings)
            history = [*history, {"role": "assistant", "content": ""}]
            reply = ""
            for piece in pieces:
                reply += piece
                history[-1] = {"role": "assistant", "content": reply}
                yield history
        except (ApiError, UserError) as exc:
            raise _gr_error(exc) from None

    if not state.chat_enabled:
        gr.Markdown("Chat is disabled on this server (started with `--no-chat`).")
        return
    with gr.Row():
        h_system = gr.Textbox(DEFAULT_SYSTEM, label="System prompt", scale=3, elem_id="chat-system")
        h_temp = gr.Slider(0.0, 1.5, value=0.7, step=0.05, label="Temperature (0: greedy)",
                           scale=1, elem_id="chat-temperature")
        h_max = gr.Slider(8, state.limits.max_new_tokens, value=min(200, state.limits.max_new_tokens),
                          step=8, label="Max new tokens", scale=1, elem_id="chat-max-tokens")
    h_bot = gr.Chatbot(label=f"Chat ({state.chat_model_name})", height=420, elem_id="chatbot")
    with gr.Row():
        h_msg = gr.Textbox(placeholder="Type a message and press Enter", show_label=False, scale=5,
                           elem_id="chat-input")
        h_send = gr.Button("Send", variant="primary", scale=1, elem_id="chat-send")
        h_clear = gr.Button("Clear", scale=1, elem_id="chat-clear")
    replies = []
    for ev in (h_msg.submit, h_send.click):
        reply = ev(add_user, [h_msg, h_bot], [h_msg, h_bot], queue=False).then(
            respond, [h_bot, h_system, h_temp, h_max], h_bot)
        reply.then(lambda: gr.Textbox(interactive=True), None, h_msg, queue=False)
        replies.append(reply)
    h_clear.click(lambda: ([], gr.Textbox(value="", interactive=True)), None, [h_bot, h_msg],
                  cancels=replies, queue=False)


def build_ui(state: ServeState) -> gr.Blocks:
    """The Blocks app over ``state``: one tab per area."""
    with gr.Blocks(title="attnlab", analytics_enabled=False) as demo:
        gr.Markdown("## attnlab\nClassify text with fine-tuned runs, look inside their attention, compare "
                    "methods, chat with SmolLM2. REST API: [/docs](/docs).")
        with gr.Tabs():
            with gr.Tab("Classify", id="classify"):
                _classify_tab(state)
            with gr.Tab("Attention", id="attention"):
                _attention_tab(state)
            with gr.Tab("Compare", id="compare"):
                _compare_tab(state, demo)
            with gr.Tab("Chat", id="chat"):
                _chat_tab(state)
    return demo


def produced_files(demo: gr.Blocks) -> set[str]:
    """The files this UI has handed to the page (Gradio's cache copies), not what was uploaded."""
    sets = [s for s in getattr(demo, "temp_file_sets", []) if s is not getattr(demo, "upload_file_set", None)]
    return {os.path.realpath(f) for files in sets for f in list(files)}


def mount_ui(app: Any, state: ServeState, path: str = "/ui") -> None:
    """Mount :func:`build_ui` on ``app`` at ``path``, behind the file guard (see the module's doc)."""
    demo = build_ui(state)
    api = f"{path}/gradio_api"
    app.add_middleware(PathGuardMiddleware, refused=f"^{api}/(upload|proxy=)", files=f"^{api}/file[=/](.*)$",
                       allow=lambda f: os.path.realpath(f) in produced_files(demo),
                       why="uploads (and the URL proxy) are refused: this web UI takes no files")
    gr.mount_gradio_app(app, demo, path=path, theme=theme(), footer_links=[], ssr_mode=False,
                        run_history=False, mcp_server=False, pwa=False, show_error=True)
