"""The ``attnlab`` commands that run an application: ``serve`` (REST API and web UI), ``chat`` (a
terminal chat with the packaged LLM) and ``tune`` (a hyper-parameter search). Registered with the
other commands (``cli.py``) through ``cli_args.command``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from attnlab.cli_args import (
    QUICKSTART_DIR,
    _number,
    _port,
    _positive_int,
    _thread_count,
    add_long_text_args,
    add_train_args,
    command,
    config_from_args,
    long_text_kwargs,
)
from attnlab.errors import UserError


def _serve_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run", action="append", default=[], metavar="RUN_DIR", help="a finished run directory to "
                   "serve (repeat for several; clients pick one by its folder name; the first is the default; "
                   "none: the runs of the last `attnlab quickstart`, best validation accuracy first)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, this machine only)")
    p.add_argument("--port", type=_port, default=7860, help="1..65535 (default: 7860)")
    p.add_argument("--no-chat", action="store_true", help="no /v1/generate and no Chat tab (SmolLM2 is not loaded)")
    p.add_argument("--no-ui", action="store_true", help="REST API only, no web UI")
    p.add_argument("--compare-dir", help="comparison shown in the Compare tab (default: the newest of runs/compare "
                   "and runs/quickstart)")
    p.add_argument("--num-threads", type=_thread_count, help="torch CPU threads (default: all cores; 1 is often "
                   "faster for chat on a busy machine)")
    p.add_argument("--engine", choices=["torch", "onnxruntime"], default="torch", help="what classifies: torch "
                   "(default) or onnxruntime (fused ONNX graph, CPU; faster single-text latency: docs/speed.md)")
    add_long_text_args(p)  # the server's default; a /v1/classify request may pick its own


@command("serve", _serve_args)
def cmd_serve(a: argparse.Namespace) -> int:
    """Serve runs over a REST API (/v1/classify, /v1/attention, /v1/generate; docs at /docs) and a web UI (/ui)."""
    from attnlab.serve import serve

    if a.engine == "onnxruntime":  # fail now, not at the first request
        from attnlab.inference.onnx_engine import require_onnxruntime

        require_onnxruntime()
    runs, source = (a.run, "") if a.run else _quickstart_runs()
    url = f"http://{'[' + a.host + ']' if ':' in a.host else a.host}:{a.port}"
    where = f"{url}/docs (API)" if a.no_ui else f"{url}/ui (web UI)  {url}/docs (API)"
    names = ", ".join(Path(r).name + (" (default)" if i == 0 and len(runs) > 1 else "") for i, r in enumerate(runs))
    print(f"attnlab serve: {where}  runs: {names or 'none'}{source}  chat: {'off' if a.no_chat else 'on'}", flush=True)
    if not runs:
        print(f"no runs to classify with: make some with `attnlab quickstart` (writes {Path(QUICKSTART_DIR)}) or pass "
              "--run RUN_DIR", flush=True)
    serve(runs, host=a.host, port=a.port, chat=not a.no_chat, ui=not a.no_ui, compare_dir=a.compare_dir,
          num_threads=a.num_threads, engine=a.engine, **long_text_kwargs(a))
    return 0


def _quickstart_runs() -> tuple[list[str], str]:
    """The finished runs of the last quickstart, best validation accuracy first (its comparison.json;
    without one, its finished run folders by name), and where they came from for the banner."""
    import json

    from attnlab.rundir import is_finished_run

    folder = Path(QUICKSTART_DIR)
    try:
        rows = json.loads((folder / "comparison.json").read_text(encoding="utf-8")).get("rows", [])
    except (OSError, ValueError, AttributeError):
        rows = []
    if not isinstance(rows, list):
        rows = []
    rows = [r for r in rows if isinstance(r, dict) and isinstance(r.get("run_dir"), str)]
    rows.sort(key=lambda r: -r["validation_accuracy"] if isinstance(r.get("validation_accuracy"), int | float)
              else 1.0)
    found = []
    for r in rows:  # a path as the quickstart wrote it, else the same folder name under where it writes
        path = next((c for c in (Path(r["run_dir"]), folder / Path(r["run_dir"]).name) if is_finished_run(c)), None)
        if path is not None and str(path) not in found:
            found.append(str(path))
    if not found and folder.is_dir():
        found = [str(c) for c in sorted(folder.iterdir()) if c.is_dir() and is_finished_run(c)]
    return found, f" (the last quickstart's, in {folder})" if found else ""


def _chat_args(p: argparse.ArgumentParser) -> None:
    from attnlab.chat import DEFAULT_CHAT_MODEL, DEFAULT_SYSTEM

    p.add_argument("--system", default=DEFAULT_SYSTEM, help=f"system prompt ('' for none; default: {DEFAULT_SYSTEM!r})")
    p.add_argument("--temperature", type=_number, default=0.7, help="0 = greedy (default: 0.7)")
    p.add_argument("--max-new-tokens", type=_positive_int, default=256, help="per reply (default: 256)")
    p.add_argument("--seed", type=int, help="fix the sampling")
    p.add_argument("--model", default=DEFAULT_CHAT_MODEL, help=f"chat model (default: {DEFAULT_CHAT_MODEL})")
    p.add_argument("--num-threads", type=_thread_count, help="torch CPU threads (default: all cores)")


@command("chat", _chat_args)
def cmd_chat(a: argparse.Namespace) -> int:
    """Chat with SmolLM2-135M-Instruct in the terminal: one message per line, replies stream; /reset, /exit or EOF."""
    from attnlab.chat import ChatSession, GenerationSettings, load_chat_model

    if a.num_threads:
        import torch

        torch.set_num_threads(a.num_threads)
    settings = GenerationSettings(max_new_tokens=a.max_new_tokens, temperature=a.temperature, seed=a.seed).check()
    tty = sys.stdin.isatty()
    if tty:
        print(f"loading {a.model}...", file=sys.stderr, flush=True)
    session = ChatSession(load_chat_model(a.model), system=a.system or None, settings=settings)
    if tty:
        print("type a message and press Enter; /reset clears the conversation, /exit or Ctrl-D quits",
              file=sys.stderr, flush=True)
    while True:
        if tty:
            print("> ", end="", file=sys.stderr, flush=True)
        line = sys.stdin.readline()
        if not line:
            break
        text = line.strip()
        if text in ("/exit", "/quit"):
            break
        if text == "/reset":
            session.reset()
            continue
        if not text:
            continue
        reply = session.send(text)
        try:
            for piece in reply:
                print(piece, end="", flush=True)
        except KeyboardInterrupt:
            reply.close()  # stops generation; the partial reply is kept
            print(" [stopped]", end="")
        print(flush=True)
    return 0


def _tune_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--output-dir", "-o", default="runs/tune", help="where best.yaml and the trials table and plot "
                   "go (default: runs/tune)")
    p.add_argument("--trials", type=_positive_int, default=10, help="number of trials (default: 10)")
    p.add_argument("--timeout", type=_number, help="start no new trial after this many seconds (the running one "
                   "finishes)")
    p.add_argument("--search", action="append", metavar="NAME=SPEC", help="change the search space: "
                   "learning_rate=1e-5..1e-3 (a range), batch_size=16,32 (a choice), lora_r=off (not searched); "
                   "repeatable. A searched setting passed as a flag (e.g. --batch-size 16) is fixed instead")
    p.add_argument("--storage", help="Optuna storage URL, e.g. sqlite:///tune.db: keeps the study; processes "
                   "pointed at the same study add their trials to it (default: in memory)")
    p.add_argument("--study-name", help="study name in --storage (default: attnlab-tune-NAME, NAME being "
                   "the output folder's name)")
    add_train_args(p)


@command("tune", _tune_args)
def cmd_tune(a: argparse.Namespace) -> int:
    """Search learning rate, epochs, batch size, warmup (and LoRA rank/alpha) with Optuna; write best.yaml."""
    from attnlab.experiments.tune import SEARCHABLE, parse_search, tune

    if a.timeout is not None and a.timeout <= 0:
        raise UserError(f"timeout {a.timeout:g} is not positive", where="--timeout", fix="pass seconds > 0")
    cfg = config_from_args(a, output_dir=a.output_dir)
    fixed = [name for name in SEARCHABLE if getattr(a, name, None) is not None]
    res = tune(cfg, a.trials, a.output_dir, timeout=a.timeout, space=parse_search(a.search), fixed=fixed,
               overwrite=a.overwrite, progress=not a.no_progress, storage=a.storage, study_name=a.study_name)
    if res is None:  # a non-zero rank under torchrun: rank 0 reports
        return 0
    best = res["best"]
    print(res["table"])
    print(f"\nbest: trial {best['trial']}, validation {res['metric']} {best['objective']:.4f}")
    print(f"table and plot: {Path(a.output_dir) / 'trials.md'}")
    print(f"recipe: {res['best_yaml']}")
    print(f"train it: attnlab train --config {res['best_yaml']} -o runs/best")
    return 0
