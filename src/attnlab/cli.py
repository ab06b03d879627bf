"""The ``attnlab`` command. Thin: parse flags, call one library function, print the result.

Mistakes a user can make end in one line on stderr (what, where, how to fix) and exit code 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

from attnlab.errors import UserError
from attnlab.logs import configure_cli_logging

COMMANDS: dict[str, tuple[Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]] = {}


def command(name: str, add_args: Callable[[argparse.ArgumentParser], None]):
    """Register ``fn`` as ``attnlab <name>``; its docstring is the help text."""

    def wrap(fn: Callable[[argparse.Namespace], int]):
        COMMANDS[name] = (add_args, fn)
        return fn

    return wrap


def _positive_int(s: str) -> int:
    try:
        v = int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{s}' is not an integer") from None
    if v <= 0:
        raise argparse.ArgumentTypeError(f"{v} is not positive")
    return v


def _port(s: str) -> int:
    try:
        v = int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{s}' is not a port number") from None
    if not 1 <= v <= 65535:
        raise argparse.ArgumentTypeError(f"{v} is not a TCP port (1..65535)")
    return v


def _number(s: str) -> float:
    try:
        return float(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{s}' is not a number") from None


# -- shared flag groups: derived from the TrainConfig fields ---------------------------------------

class _SettingFlag(argparse.Action):
    """Stores one training setting: the value given, or a switch's fixed value (``nargs=0``, the value
    in ``const``). Its help is built from the setting when shown: ``--method`` lists the registered
    methods, which ``attnlab --help`` must not wait for."""

    def __init__(self, option_strings: list[str], dest: str, *, describe: Callable[[], str], **kwargs: Any):
        self._describe = describe
        super().__init__(option_strings, dest, **kwargs)

    @property  # type: ignore[override]
    def help(self) -> str:
        return self._describe().replace("%", "%%")  # argparse %-formats help texts

    @help.setter
    def help(self, value: str | None) -> None:  # argparse's __init__ sets it; the setting describes itself
        pass

    def __call__(self, parser, namespace, values, option_string=None):  # type: ignore[override]
        setattr(namespace, self.dest, self.const if self.nargs == 0 else values)


def _setting_help(f: Any, default: Any) -> str:
    """The field's help and its default: the setting's own (``default`` SUPPRESS) or the command's."""
    from attnlab.training import settings

    note = (settings.default_text(f) if default is argparse.SUPPRESS
            else settings.default_words(f) if default is None else settings.format_value(default))
    return settings.help_text(f) + (f" (default: {note})" if note else "")


def _value_type(hint: Any, positive: bool) -> Callable[[str], Any] | None:
    """How a flag parses its text, from the field's type hint (None: kept as text)."""
    kinds = set(typing.get_args(hint)) or {hint}
    if float in kinds:
        return _number
    if int in kinds:
        return _positive_int if positive else int
    return None


def _add_setting(g: Any, f: Any, hint: Any, default: Any) -> None:
    """``f``'s flag (a typed value; none for a bool) and its switches, all storing into ``f.name``."""
    from attnlab.training import settings

    if hint is not bool:
        kind = _value_type(hint, positive=bool(f.metadata.get("positive")))
        g.add_argument(*settings.flags(f), dest=f.name, action=_SettingFlag, type=kind, default=default,
                       choices=f.metadata.get("choices"), describe=lambda: _setting_help(f, default))
    for s in f.metadata.get("switches", ()):
        g.add_argument(s.flag, dest=f.name, action=_SettingFlag, nargs=0, const=s.value, default=default,
                       describe=lambda s=s: s.help or settings.help_text(f))


def _add_settings(p: argparse.ArgumentParser, *, only: str | None = None, skip: tuple[str, ...] = (),
                  defaults: dict[str, Any] | None = None) -> dict[str, Any]:
    """The flags of the TrainConfig settings, in argument groups by their ``group`` (or only group
    ``only``); returns the groups by title. Without ``defaults`` a flag left out is absent from the
    namespace, so it never overrides a recipe; with them (commands that read the values themselves)
    a missing name defaults to None."""
    from attnlab.training.config import TrainConfig

    hints = typing.get_type_hints(TrainConfig)
    fields = [f for f in dataclasses.fields(TrainConfig) if f.metadata.get("group") and f.name not in skip]
    groups: dict[str, Any] = {}
    for title in dict.fromkeys(f.metadata["group"] for f in fields):  # in order of first appearance
        if only not in (None, title):
            continue
        groups[title] = p.add_argument_group(title)
        for f in (f for f in fields if f.metadata["group"] == title):
            default = argparse.SUPPRESS if defaults is None else defaults.get(f.name)
            _add_setting(groups[title], f, hints[f.name], default)
    return groups


def add_data_args(p: argparse.ArgumentParser, default: str | None = "movie-snippets") -> None:
    """The data-source flags (``--data`` with ``default``), for commands other than training."""
    from attnlab.training.config import DATA

    _add_settings(p, only=DATA, defaults={"data": default})


def add_train_args(p: argparse.ArgumentParser, methods_flag: bool = False) -> None:
    """A flag for every TrainConfig setting with a group (``--method`` left out where the command
    takes ``--methods``), plus ``--config``, ``--overwrite`` and ``--no-progress``."""
    from attnlab.training.config import BOOKKEEPING, MODEL

    groups = _add_settings(p, skip=("method",) if methods_flag else ())
    groups[MODEL].add_argument("--config", help="recipe YAML (a file, or a packaged recipe's name) with any of "
                               "the settings below; flags override it")
    g = groups[BOOKKEEPING]
    g.add_argument("--overwrite", action="store_true", help="replace an existing output directory")
    g.add_argument("--no-progress", action="store_true", help="no progress bars")


def config_from_args(a: argparse.Namespace, **extra: Any):
    """Defaults, then ``--config``'s recipe, then the setting flags given (one left out is not in
    ``a``: it keeps the recipe's value), then ``extra``."""
    from attnlab.training.config import TrainConfig

    given = {k: v for k, v in vars(a).items() if k in TrainConfig.field_names()}
    return TrainConfig.from_sources(getattr(a, "config", None), **(given | extra))


def _print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=2, default=str))


# -- commands -------------------------------------------------------------------------------------

def _train_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--output-dir", "-o", required=True, help="the run directory to write")
    add_train_args(p)
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint in --output-dir")


@command("train", _train_args)
def cmd_train(a: argparse.Namespace) -> int:
    """Fine-tune a model on labelled text and write a run directory."""
    from attnlab.training.train import train

    cfg = config_from_args(a)
    run = train(cfg, resume=a.resume, overwrite=a.overwrite, progress=not a.no_progress)
    if run is None:  # a non-zero rank under torchrun / accelerate: rank 0 reports
        return 0
    m = run.metrics
    print(f"run: {run.path}")
    print(f"validation accuracy {m['validation']['accuracy']:.4f}  test accuracy {m['test']['accuracy']:.4f}  "
          f"macro-F1 {m['test']['macro_f1']:.4f}")
    print(f"trainable params {m['params']['trainable']:,} ({m['params']['trainable_percent']:.2f}%)  "
          f"train time {m['training']['wall_seconds']:.1f} s")
    print(f"predict with: attnlab predict {run.path} \"some text\"")
    return 0


def _predict_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", help="a finished run directory")
    p.add_argument("texts", nargs="*", help="texts to classify")
    p.add_argument("--input", "-i", help="a .txt file (one text per line) or a CSV/TSV/JSONL file with a text column")
    p.add_argument("--text-column", help="text column of --input (default: detected)")
    p.add_argument("--batch-size", type=_positive_int, default=32,
                   help="(default: 32: measured fastest, docs/speed.md)")
    p.add_argument("--no-merge", action="store_true", help="keep LoRA adapters separate (slower)")
    p.add_argument("--quantize", choices=["int8"], help="int8 dynamic quantization of the linear layers (CPU; "
                   "faster, probabilities change slightly: see docs/speed.md)")
    p.add_argument("--engine", choices=["torch", "onnxruntime"], default="torch", help="torch (default) or "
                   "onnxruntime: the model exported to ONNX with fused transformer blocks, CPU; needs "
                   "pip install 'attnlab[onnx]' (see docs/speed.md)")


def _read_texts(path: str, text_column: str | None) -> list[str]:
    p = Path(path)
    if not p.is_file():
        raise UserError("input file not found", where=path, fix="check the --input path")
    if p.suffix.lower() == ".txt":
        try:
            lines = p.read_text(encoding="utf-8-sig").splitlines()
        except UnicodeDecodeError:
            raise UserError("input is not UTF-8 text", where=path, fix="re-save it as UTF-8") from None
        return [ln for ln in lines if ln.strip()]
    from attnlab.data.files import find_columns, read_table

    df = read_table(p)
    col, _ = find_columns(df, text_column, None, path, need_label=False)
    return df[col].fillna("").astype(str).tolist()


@command("predict", _predict_args)
def cmd_predict(a: argparse.Namespace) -> int:
    """Classify texts with a finished run; prints one JSON line per text."""
    from attnlab.inference import Predictor

    texts = list(a.texts) + (_read_texts(a.input, a.text_column) if a.input else [])
    if not texts:
        raise UserError("no texts given", where="attnlab predict", fix='pass "text" arguments or --input FILE')
    Predictor._check(texts)
    predictor = Predictor.from_run(a.run_dir, merge=not a.no_merge, batch_size=a.batch_size, quantize=a.quantize,
                                      engine=a.engine)
    for row in predictor.predict(texts):
        print(json.dumps(row, ensure_ascii=False))
    return 0


def _evaluate_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", help="a finished run directory")
    add_data_args(p, default=None)
    p.add_argument("--split", choices=["train", "validation", "test"], help="split of a named data set or folder "
                   "(default: test; a single file is scored whole)")
    p.add_argument("--max-samples", type=int, help="score a stratified subset")
    p.add_argument("--output", help="also write the metrics JSON here")


@command("evaluate", _evaluate_args)
def cmd_evaluate(a: argparse.Namespace) -> int:
    """Score a finished run on any labelled data: accuracy, macro-F1, per-class report, confusion matrix."""
    from attnlab.inference.evaluate import evaluate_run
    from attnlab.training.rundir import write_json_atomic

    if not a.data:
        raise UserError("no data to evaluate on", where="attnlab evaluate", fix="pass --data NAME_OR_FILE")
    if a.output:  # before any work: a wrong target must not cost an evaluation, nor leave a temp file
        out = Path(a.output)
        if out.is_dir():
            raise UserError("--output is a directory", where=str(out), fix="pass a file path, e.g. DIR/metrics.json")
        if not out.parent.is_dir():
            raise UserError("the folder of --output does not exist", where=str(out.parent),
                            fix="create it first, or pass a path in an existing folder")
    m = evaluate_run(a.run_dir, a.data, split=a.split, data_dir=a.data_dir, text_column=a.text_column,
                     label_column=a.label_column, max_samples=a.max_samples)
    if a.output:
        write_json_atomic(Path(a.output), m)
    _print_json(m)
    return 0


def _merge_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", help="a finished run directory")
    p.add_argument("out", help="folder to write the plain transformers model to")
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty output folder")


@command("merge", _merge_args)
def cmd_merge(a: argparse.Namespace) -> int:
    """Write a run's model as a plain transformers folder (LoRA merged into the weights)."""
    from attnlab.inference import merge_run
    from attnlab.training.rundir import open_run

    out = merge_run(a.run_dir, a.out, overwrite=a.overwrite)
    text2text = open_run(a.run_dir).config.get("task") == "text2text"
    auto = "AutoModelForSeq2SeqLM" if text2text else "AutoModelForSequenceClassification"
    print(f"merged model: {out}  ({auto}.from_pretrained('{out}'))")
    return 0


def _compare_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--output-dir", "-o", default="runs/compare", help="where runs and the table go "
                   "(default: runs/compare)")
    p.add_argument("--methods", default="full,lora,head", help="comma-separated methods (default: full,lora,head)")
    p.add_argument("--models", default="minilm-l6", help="comma-separated models: registered names, local folders "
                   "or hub ids; none for baselines only (default: minilm-l6)")
    p.add_argument("--baselines", default="none", help="classic baselines fitted on the same split: tfidf-lr "
                   "(TF-IDF + logistic regression), vader (sentiment lexicon), comma-separated (default: none)")
    add_train_args(p, methods_flag=True)


@command("compare", _compare_args)
def cmd_compare(a: argparse.Namespace) -> int:
    """Train (model, method) pairs with the same data, seed and budget, plus classic baselines; print one table."""
    from attnlab.experiments import compare

    cfg = config_from_args(a, output_dir=a.output_dir)
    res = compare(cfg, a.methods, a.models, a.output_dir, baselines=a.baselines, overwrite=a.overwrite,
                  progress=not a.no_progress)
    print(res["table"])
    print(f"\ntable and plots: {Path(a.output_dir) / 'comparison.md'}")
    return 0


# all 8,4xx training snippets, whole validation and test splits; 3 epochs and batch 16 chosen on the
# validation split (benchmarks/results/quickstart.*.json has what they give, per machine kind)
QUICKSTART = {"data": "movie-snippets", "model": "minilm-l6", "epochs": 3.0, "batch_size": 16}


def _quickstart_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--output-dir", "-o", default="runs/quickstart", help="(default: runs/quickstart)")
    p.add_argument("--methods", default="full,lora", help="(default: full,lora)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


@command("quickstart", _quickstart_args)
def cmd_quickstart(a: argparse.Namespace) -> int:
    """Compare full fine-tuning and LoRA on the packaged defaults (minilm-l6, movie-snippets): minutes on 2 cores."""
    from attnlab.experiments import compare
    from attnlab.training.config import TrainConfig

    cfg = TrainConfig.from_sources(None, **QUICKSTART, output_dir=a.output_dir)
    print(f"quickstart: {QUICKSTART['model']} on {QUICKSTART['data']} (every training text, {QUICKSTART['epochs']:g} "
          f"epochs, batch {QUICKSTART['batch_size']}) with {a.methods}")
    res = compare(cfg, a.methods, QUICKSTART["model"], a.output_dir, overwrite=True, progress=not a.no_progress)
    print(res["table"])
    best = max(res["rows"], key=lambda r: r["validation_accuracy"])
    print(f"\ntable and plots: {Path(a.output_dir) / 'comparison.md'}")
    for r in res["rows"]:
        print(f"run: {r['run_dir']}")
    print(f"model to use (best validation accuracy): {best['run_dir']}")
    print(f"try: attnlab predict {best['run_dir']} \"a gorgeous, moving film\" \"a tedious mess\"")
    return 0


def _models_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print JSON")


@command("models", _models_args)
def cmd_models(a: argparse.Namespace) -> int:
    """List the registered models: kind, parameters, installed or not, how to install."""
    from attnlab.models import list_models

    rows = list_models()
    if a.json:
        _print_json(rows)
        return 0
    print(f"{'name':<16} {'kind':<10} {'params':>8}  {'installed':<9}  description")
    for r in rows:
        print(f"{r['name']:<16} {r['kind']:<10} {r['params_millions']:>7.1f}M  {'yes' if r['installed'] else 'no':<9}  "
              f"{r['description']}")
        if not r["installed"]:
            print(f"{'':<16} install: {r['install']}")
    print("Any local Hugging Face folder or hub id (where a hub is reachable) works too.")
    return 0


def _data_args(p: argparse.ArgumentParser) -> None:
    add_data_args(p)
    p.add_argument("--model", default="minilm-l6", help="tokenizer for the token-length percentiles")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--json", action="store_true", help="print JSON")


@command("data", _data_args)
def cmd_data(a: argparse.Namespace) -> int:
    """Load a data set and print its summary: rows per split and label, drops, token lengths."""
    from transformers import AutoTokenizer

    from attnlab.data import load_data
    from attnlab.data.dataset import format_summary
    from attnlab.models import load_pretrained, resolve_model

    ds = load_data(a.data, data_dir=a.data_dir, text_column=a.text_column, label_column=a.label_column, seed=a.seed)
    tok = load_pretrained(AutoTokenizer.from_pretrained, resolve_model(a.model))
    s = ds.summary(tok)
    _print_json(s) if a.json else print(format_summary(s))
    return 0


def _explain_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("text", help="the text to explain")
    p.add_argument("--model", default="minilm-l6", help="registered model, HF folder, hub id or run directory "
                   "(default: minilm-l6)")
    p.add_argument("--compare", help="a second model or run directory: per-head attention change on the same text")
    p.add_argument("--out", "-o", default="explain-out",
                   help="folder for the PNGs, HTML and JSON (default: explain-out)")
    p.add_argument("--layer", type=int, help="layer for head.png/layer.png (default: first/last)")
    p.add_argument("--head", type=int, help="head for head.png (default: 0)")
    p.add_argument("--top-k", type=_positive_int, default=10, help="most-changed heads to list with --compare")


@command("explain", _explain_args)
def cmd_explain(a: argparse.Namespace) -> int:
    """Draw a model's attention on a text: heatmaps, an interactive HTML view, rollout importance, head stats."""
    from attnlab.explain import explain

    paths = explain(a.text, model=a.model, compare=a.compare, out_dir=a.out, layer=a.layer, head=a.head,
                    top_k=a.top_k)
    for name, path in paths.items():
        print(f"{name:<16} {path}")
    return 0


def _sweep_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--output-dir", "-o", default="runs/sweep", help="where runs, table and plots go "
                   "(default: runs/sweep)")
    p.add_argument("--ranks", default="1,4,16,64", help="comma-separated LoRA ranks (default: 1,4,16,64)")
    p.add_argument("--targets", default="attention,attention+mlp,all-linear", help="comma-separated target "
                   "sets: attention, attention+mlp, all-linear (default: all three)")
    p.add_argument("--baselines", default="head,bitfit", help="comma-separated non-adapter methods to train "
                   "alongside, or none (default: head,bitfit)")
    from attnlab.training.methods import lora_methods  # the method registry (imports no torch)

    p.add_argument("--adapter", choices=lora_methods(), default="lora", help="adapter method (default: lora)")
    add_train_args(p, methods_flag=True)


@command("sweep", _sweep_args)
def cmd_sweep(a: argparse.Namespace) -> int:
    """Parameter-efficiency study: LoRA at several ranks and target sets, plus baselines, same data and budget."""
    from attnlab.experiments import sweep

    cfg = config_from_args(a, output_dir=a.output_dir)
    res = sweep(cfg, a.ranks, a.targets, a.output_dir, baselines=a.baselines, adapter=a.adapter,
                overwrite=a.overwrite, progress=not a.no_progress)
    print(res["table"])
    print(f"\ntable and plots: {Path(a.output_dir) / 'sweep.md'}")
    return 0


def _serve_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run", action="append", default=[], metavar="RUN_DIR", help="a finished run directory to "
                   "serve (repeat for several; clients pick one by its folder name; the first is the default)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, this machine only)")
    p.add_argument("--port", type=_port, default=7860, help="1..65535 (default: 7860)")
    p.add_argument("--no-chat", action="store_true", help="no /v1/generate and no Chat tab (SmolLM2 is not loaded)")
    p.add_argument("--no-ui", action="store_true", help="REST API only, no web UI")
    p.add_argument("--compare-dir", help="comparison shown in the Compare tab (default: the newest of runs/compare "
                   "and runs/quickstart)")
    p.add_argument("--num-threads", type=_positive_int, help="torch CPU threads (default: all cores; 1 is often "
                   "faster for chat on a busy machine)")
    p.add_argument("--engine", choices=["torch", "onnxruntime"], default="torch", help="what classifies: torch "
                   "(default) or onnxruntime (fused ONNX graph, CPU; faster single-text latency: docs/speed.md)")


@command("serve", _serve_args)
def cmd_serve(a: argparse.Namespace) -> int:
    """Serve runs over a REST API (/v1/classify, /v1/attention, /v1/generate; docs at /docs) and a web UI (/ui)."""
    from attnlab.serve import serve

    if a.engine == "onnxruntime":  # fail now, not at the first request
        from attnlab.inference.onnx_engine import require_onnxruntime

        require_onnxruntime()
    url = f"http://{'[' + a.host + ']' if ':' in a.host else a.host}:{a.port}"
    names = ", ".join(Path(r).name for r in a.run) or "none"
    print(f"attnlab serve: {url}/ui (web UI)  {url}/docs (API)  runs: {names}", flush=True)
    serve(a.run, host=a.host, port=a.port, chat=not a.no_chat, ui=not a.no_ui, compare_dir=a.compare_dir,
          num_threads=a.num_threads, engine=a.engine)
    return 0


def _chat_args(p: argparse.ArgumentParser) -> None:
    from attnlab.chat import DEFAULT_CHAT_MODEL, DEFAULT_SYSTEM

    p.add_argument("--system", default=DEFAULT_SYSTEM, help=f"system prompt ('' for none; default: {DEFAULT_SYSTEM!r})")
    p.add_argument("--temperature", type=_number, default=0.7, help="0 = greedy (default: 0.7)")
    p.add_argument("--max-new-tokens", type=_positive_int, default=256, help="per reply (default: 256)")
    p.add_argument("--seed", type=int, help="fix the sampling")
    p.add_argument("--model", default=DEFAULT_CHAT_MODEL, help=f"chat model (default: {DEFAULT_CHAT_MODEL})")
    p.add_argument("--num-threads", type=_positive_int, help="torch CPU threads (default: all cores)")


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


# -- entry point ----------------------------------------------------------------------------------

class _Parser(argparse.ArgumentParser):
    """argparse whose usage mistakes end like every other user error: one line, exit code 2."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"error: {message} ({self.prog}). See `{self.prog} --help`.\n")


def build_parser() -> argparse.ArgumentParser:
    from attnlab import __version__

    parser = _Parser(prog="attnlab", description="Understand attention, fine-tune transformer "
                                     "classifiers (full, LoRA, head), compare them, and use the result.")
    parser.add_argument("--version", action="version", version=f"attnlab {__version__}")
    parser.add_argument("--verbose", "-v", action="store_true", help="show library warnings and debug logs")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (add_args, fn) in COMMANDS.items():
        doc = (fn.__doc__ or "").strip()
        p = sub.add_parser(name, help=doc.splitlines()[0] if doc else None, description=doc,
                           formatter_class=argparse.HelpFormatter)
        add_args(p)
        p.set_defaults(func=fn)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    configure_cli_logging(args.verbose)
    if getattr(args, "no_progress", False):  # Trainer's bars follow `progress`; these are the libraries' own
        import datasets
        import transformers

        datasets.disable_progress_bars()
        transformers.utils.logging.disable_progress_bar()
    try:
        return int(args.func(args) or 0)
    except UserError as exc:
        print(f"error: {exc.one_line()}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt as exc:  # a TrainingInterrupted says where its checkpoint is
        print(f"interrupted: {str(exc) or 'a resumable checkpoint is kept where one was written (use --resume)'}",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
