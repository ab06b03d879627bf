"""The ``attnlab`` command. Thin: parse flags, call one library function, print the result.

Mistakes a user can make end in one line on stderr (what, where, how to fix) and exit code 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from attnlab.cli_args import (
    COMMANDS,
    QUICKSTART_DIR,
    _positive_int,
    _print_json,
    add_data_args,
    add_long_text_args,
    add_train_args,
    command,
    config_from_args,
    long_text_kwargs,
)
from attnlab.errors import UserError
from attnlab.logs import configure_cli_logging

# -- commands -------------------------------------------------------------------------------------

def _train_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--output-dir", "-o", required=True, help="the run directory to write")
    add_train_args(p)
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint in --output-dir")


HEADLINE = {"macro_f1": "macro-F1", "micro_f1": "micro-F1", "subset_accuracy": "subset accuracy", "mse": "MSE",
            "pearson": "Pearson r", "spearman": "Spearman rho"}  # how `attnlab train` names the task's numbers


@command("train", _train_args)
def cmd_train(a: argparse.Namespace) -> int:
    """Fine-tune a model on labelled text and write a run directory."""
    from attnlab.training.tasks import get_task
    from attnlab.training.train import train

    cfg = config_from_args(a)
    run = train(cfg, resume=a.resume, overwrite=a.overwrite, progress=not a.no_progress)
    if run is None:  # a non-zero rank under torchrun / accelerate: rank 0 reports
        return 0
    m = run.metrics
    print(f"run: {run.path}")
    first, *rest = get_task(run.task).headline  # classification: accuracy, macro-F1

    def num(split: str, key: str) -> str:
        value = m[split].get(key)
        return "n/a" if value is None else f"{value:.4f}"

    print(f"validation {HEADLINE.get(first, first)} {num('validation', first)}  test {HEADLINE.get(first, first)} "
          f"{num('test', first)}  " + "  ".join(f"{HEADLINE.get(k, k)} {num('test', k)}" for k in rest))
    print(f"trainable params {m['params']['trainable']:,} ({m['params']['trainable_percent']:.2f}%)  "
          f"train time {m['training']['wall_seconds']:.1f} s")
    if cut := m["training"].get("truncated_train_rows"):
        rows = m["data_summary"]["splits"]["train"]["rows"]
        print(f"truncated {cut:,} of {rows:,} training texts to --max-length {m['training']['max_length']} tokens "
              "(predict and evaluate can read long texts whole: --long-text chunk)")
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
    add_long_text_args(p)


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
                                      engine=a.engine, **long_text_kwargs(a))
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
    p.add_argument("--json", action="store_true", help="print the metrics as JSON instead of tables")
    add_long_text_args(p)


@command("evaluate", _evaluate_args)
def cmd_evaluate(a: argparse.Namespace) -> int:
    """Score a finished run on any labelled data: accuracy, macro-F1, per-class report, confusion matrix."""
    from attnlab.evaluation.report import format_metrics
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
                     label_column=a.label_column, max_samples=a.max_samples, **long_text_kwargs(a))
    if a.output:
        write_json_atomic(Path(a.output), m)
    _print_json(m) if a.json else print(format_metrics(m))
    if "long_text" in m and not a.json:
        lt = m["long_text"]
        print(f"long texts: {lt['texts_chunked']:,} of {m['examples']:,} texts read in several windows "
              f"({lt['windows']:,} windows, {lt['aggregate']} of their probabilities)")
    return 0


def _merge_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", help="a finished run directory")
    p.add_argument("out", help="folder to write the plain transformers model to")
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty output folder")


@command("merge", _merge_args)
def cmd_merge(a: argparse.Namespace) -> int:
    """Write a run's model as a plain transformers folder (LoRA merged into the weights)."""
    from attnlab.inference import merge_run
    from attnlab.inference.tasks import run_task
    from attnlab.rundir import open_run

    out = merge_run(a.run_dir, a.out, overwrite=a.overwrite)
    run = open_run(a.run_dir)
    task = run_task(run)
    print(f"merged model: {out}  ({task.auto_model}.from_pretrained('{out}'))")
    if task.sized_head and run.pooling != "pooler":  # the architecture's head alone would read [CLS]
        print(f"note: this model classifies through {run.pooling} pooling; the few lines that reproduce "
              "its logits with plain transformers: docs/concepts/fine-tuning.md, section Pooling")
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


# all 8,4xx training snippets, whole validation and test splits. The recipe was chosen on the
# validation split (never the test split it reports): 2 epochs of batch 32, the checkpoint's own mean
# pooling, no dropout (a quarter off each step on a CPU) and a rate per method
# (benchmarks/results/quickstart.*.json has what it gives, per machine kind)
QUICKSTART = {"data": "movie-snippets", "model": "minilm-l6", "epochs": 2.0, "batch_size": 32, "dropout": 0.0,
              "pooling": "mean"}
QUICKSTART_LEARNING_RATES = {"full": 1e-4, "lora": 2e-3}


def _quickstart_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--output-dir", "-o", default=QUICKSTART_DIR, help=f"(default: {QUICKSTART_DIR})")
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
    res = compare(cfg, a.methods, QUICKSTART["model"], a.output_dir, overwrite=True, progress=not a.no_progress,
                  learning_rates=QUICKSTART_LEARNING_RATES)
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
    from attnlab.training.config import TASKS

    add_data_args(p)
    p.add_argument("--task", choices=TASKS, default="classification", help="read the label column as "
                   "`attnlab train --task` does: classes (classification, text2text), numbers (regression: the "
                   "summary gives the target's mean, spread and range) or label sets (multi-label: rows per label) "
                   "(default: classification)")
    p.add_argument("--model", default="minilm-l6", help="tokenizer for the token-length percentiles")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--json", action="store_true", help="print JSON")


@command("data", _data_args)
def cmd_data(a: argparse.Namespace) -> int:
    """Load a data set and print its summary: columns chosen, rows per split and label (or the target's
    spread), drops, warnings."""
    from transformers import AutoTokenizer

    from attnlab.data import load_data
    from attnlab.data.dataset import format_summary
    from attnlab.models import load_pretrained, resolve_model
    from attnlab.training.tasks import get_task

    ds = load_data(a.data, data_dir=a.data_dir, text_column=a.text_column, label_column=a.label_column, seed=a.seed,
                   label_kind=get_task(a.task).label_kind)
    tok = load_pretrained(AutoTokenizer.from_pretrained, resolve_model(a.model))
    s = ds.summary(tok, log_warnings=False)  # printed with the summary, not logged a second time
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
    p.add_argument("--methods", help="token attribution instead of the attention views: comma-separated "
                   "attention, rollout, grad-rollout, ig, gradxinput, occlusion, or all (writes attributions.json, "
                   ".png, .html)")
    p.add_argument("--ig-steps", type=_positive_int, default=64, help="Integrated Gradients steps with --methods "
                   "(default: 64)")


@command("explain", _explain_args)
def cmd_explain(a: argparse.Namespace) -> int:
    """Draw a model's attention on a text: heatmaps, an interactive HTML view, rollout importance, head stats.
    With --methods: token attributions (attention, rollout, gradients, occlusion) side by side."""
    from attnlab.explain import explain, explain_methods

    if a.methods is not None:
        if a.compare or a.layer is not None or a.head is not None:
            raise UserError("--methods does not take --compare, --layer or --head", where="--methods",
                            fix="leave --methods out for the attention views, or drop those flags")
        paths = explain_methods(a.text, a.model, a.out, methods=a.methods, n_steps=a.ig_steps)
    else:
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


from attnlab import cli_apps, cli_explain  # noqa: E402, F401  (register serve, chat, tune; then faithfulness)

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
