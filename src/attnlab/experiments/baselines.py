"""Classic baselines for ``compare``: what a transformer has to beat.

* ``tfidf-lr`` -- scikit-learn's TF-IDF of word 1- and 2-grams, then logistic regression; the
  inverse regularisation strength C is chosen on the validation split from :data:`C_GRID`.
* ``vader``    -- the VADER sentiment lexicon (vaderSentiment): a hand-made valence per word, summed
  with rules for negation, intensifiers and punctuation into a compound score in [-1, 1]. Nothing
  is trained; only the decision threshold is chosen, on the training split. It reads negative /
  positive (and neutral) labels only.

Each baseline is fitted on the same split a transformer row trains on and measured the same way
(test accuracy and macro-F1, validation accuracy, parameters, fit time, test-set throughput, size
on disk). The fitted baseline goes to ``<output>/<name>/`` as plain data -- ``baseline.json``
(settings, metrics, label map; written last, so it marks the folder finished) and, for tf-idf,
``vocabulary.json`` and ``weights.safetensors``. No pickle: :func:`load_baseline` rebuilds the
model from those files.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from attnlab.data import TextDataset
from attnlab.errors import UserError
from attnlab.evaluation.metrics import classification_metrics
from attnlab.io import atomic_dir, write_json_atomic
from attnlab.rundir import dir_bytes, hardware, library_versions

log = logging.getLogger(__name__)

META = "baseline.json"
C_GRID = (0.25, 1.0, 4.0, 16.0)
TFIDF = dict(ngram_range=(1, 2), sublinear_tf=True, lowercase=True)  # the rest: scikit-learn's defaults
TFIDF_JSON = {k: list(v) if isinstance(v, tuple) else v for k, v in TFIDF.items()}  # as JSON reads it back
NEGATIVE, NEUTRAL, POSITIVE = {"negative", "neg"}, {"neutral", "neu"}, {"positive", "pos"}


# -- tf-idf + logistic regression ---------------------------------------------------------------

class TfidfLR:
    """A fitted ``TfidfVectorizer`` + ``LogisticRegression``; saved as vocabulary, idf and weights."""

    def __init__(self, vectorizer, classifier, state: dict[str, Any]):
        self.vectorizer, self.classifier, self.state = vectorizer, classifier, state

    @staticmethod
    def check(data: TextDataset) -> None:
        pass  # any labels, any text

    @classmethod
    def fit(cls, data: TextDataset, seed: int) -> TfidfLR:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression

        train, val = data.splits["train"], data.splits["validation"]
        vectorizer = TfidfVectorizer(**TFIDF)
        x_train = vectorizer.fit_transform(train["text"])
        x_val = vectorizer.transform(val["text"])
        best, scores = None, {}
        for c in C_GRID:  # the first C with the best validation accuracy
            clf = LogisticRegression(C=c, max_iter=2000, random_state=seed).fit(x_train, train["label"])
            scores[c] = float(np.mean(clf.predict(x_val) == np.asarray(val["label"])))
            if best is None or scores[c] > scores[best[0]]:
                best = (c, clf)
        c, clf = best
        state = {"C": c, "C_grid": list(C_GRID), "validation_accuracy_by_C": {str(k): v for k, v in scores.items()},
                 "vectorizer": TFIDF_JSON,
                 "features": len(vectorizer.vocabulary_)}
        return cls(vectorizer, clf, state)

    def predict(self, texts: list[str]) -> np.ndarray:
        return self.classifier.predict(self.vectorizer.transform(texts))

    def params(self) -> tuple[int, int]:
        n = int(self.classifier.coef_.size + self.classifier.intercept_.size)
        return n, n  # every weight is fitted (the idf values are counted statistics, not parameters)

    def notes(self) -> str:
        return (f"word 1-2-gram TF-IDF ({self.state['features']:,} features) + logistic regression; "
                f"C = {self.state['C']:g} chosen on validation from {', '.join(f'{c:g}' for c in C_GRID)}; "
                "params = regression weights")

    def disk_bytes(self, folder: Path) -> int:
        return dir_bytes(folder)  # vocabulary.json + weights.safetensors

    def save(self, folder: Path) -> None:
        from safetensors.numpy import save_file

        terms = sorted(self.vectorizer.vocabulary_, key=self.vectorizer.vocabulary_.get)
        (folder / "vocabulary.json").write_text(json.dumps(terms, ensure_ascii=False), encoding="utf-8")
        save_file({"idf": self.vectorizer.idf_, "coef": self.classifier.coef_,
                   "intercept": self.classifier.intercept_, "classes": self.classifier.classes_.astype(np.int64)},
                  str(folder / "weights.safetensors"))

    @classmethod
    def load(cls, folder: Path, state: dict[str, Any]) -> TfidfLR:
        from safetensors.numpy import load_file
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression

        terms = json.loads((folder / "vocabulary.json").read_text(encoding="utf-8"))
        w = load_file(str(folder / "weights.safetensors"))
        settings = {k: tuple(v) if isinstance(v, list) else v for k, v in state["vectorizer"].items()}
        vectorizer = TfidfVectorizer(**settings, vocabulary={t: i for i, t in enumerate(terms)})
        vectorizer.idf_ = w["idf"]
        clf = LogisticRegression(C=state["C"])
        clf.coef_, clf.intercept_, clf.classes_ = w["coef"], w["intercept"], w["classes"]
        return cls(vectorizer, clf, state)


# -- VADER ----------------------------------------------------------------------------------------

def _analyzer():
    try:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer
    except ImportError:
        raise UserError("the vader baseline needs the vaderSentiment package", where="--baselines vader",
                        fix="pip install vaderSentiment (bash setup.sh installs it)") from None
    return SentimentIntensityAnalyzer()


def vader_label_roles(labels: list[str]) -> dict[str, int]:
    """``{"negative": id, "positive": id[, "neutral": id]}`` from the label names, or a UserError."""
    roles: dict[str, int] = {}
    for i, name in enumerate(labels):
        key = str(name).strip().lower()
        role = "negative" if key in NEGATIVE else "positive" if key in POSITIVE else "neutral" if key in NEUTRAL \
            else None
        if role is None or role in roles:
            roles = {}
            break
        roles[role] = i
    if {"negative", "positive"} <= set(roles) and len(roles) == len(labels):
        return roles
    raise UserError(f"VADER scores negative/positive sentiment and cannot map the labels {', '.join(map(str, labels))}",
                    where="--baselines vader",
                    fix="use data labelled negative/positive (and neutral), or leave vader out of --baselines")


def _best_threshold(scores: np.ndarray, positive: np.ndarray) -> float:
    """The t that makes ``score > t -> positive`` most accurate on these examples (exact, O(n log n))."""
    candidates = np.concatenate([[-np.inf], np.unique(scores)])
    neg_sorted, pos_sorted = np.sort(scores[~positive]), np.sort(scores[positive])
    correct = (np.searchsorted(neg_sorted, candidates, side="right")  # negatives at or below t
               + len(pos_sorted) - np.searchsorted(pos_sorted, candidates, side="right"))  # positives above t
    t = candidates[int(np.argmax(correct))]
    return -1.01 if np.isneginf(t) else float(t)  # compound scores lie in [-1, 1]


class Vader:
    """VADER's compound score, thresholded: above t -> positive; with a neutral label, below -t ->
    negative and in between -> neutral."""

    def __init__(self, analyzer, state: dict[str, Any]):
        self.analyzer, self.state = analyzer, state

    def scores(self, texts: list[str]) -> np.ndarray:
        return np.array([self.analyzer.polarity_scores(t)["compound"] for t in texts])

    @staticmethod
    def check(data: TextDataset) -> None:
        vader_label_roles(data.labels)
        _analyzer()

    @classmethod
    def fit(cls, data: TextDataset, seed: int) -> Vader:
        roles = vader_label_roles(data.labels)
        model = cls(_analyzer(), {"roles": roles, "threshold": 0.0, "chosen_on": "train"})
        train = data.splits["train"]
        s, y = model.scores(train["text"]), np.asarray(train["label"])
        if "neutral" in roles:  # a symmetric band around 0; t on a grid
            grid = np.round(np.arange(0.0, 1.0, 0.025), 3)
            acc = [np.mean(model._decide(s, float(t)) == y) for t in grid]
            model.state["threshold"] = float(grid[int(np.argmax(acc))])
        else:
            model.state["threshold"] = _best_threshold(s, y == roles["positive"])
        return model

    def _decide(self, s: np.ndarray, t: float) -> np.ndarray:
        r = self.state["roles"]
        if "neutral" in r:
            return np.where(s > t, r["positive"], np.where(s < -t, r["negative"], r["neutral"]))
        return np.where(s > t, r["positive"], r["negative"])

    def predict(self, texts: list[str]) -> np.ndarray:
        return self._decide(self.scores(texts), self.state["threshold"])

    def params(self) -> tuple[int, int]:
        return 0, len(self.analyzer.lexicon)  # fixed lexicon valences; none trained

    def notes(self) -> str:
        return (f"VADER lexicon ({len(self.analyzer.lexicon):,} words, fixed valences: nothing trained); compound "
                f"score threshold {self.state['threshold']:.4g} chosen on the training split; params = lexicon "
                "entries, size = the lexicon files")

    def disk_bytes(self, folder: Path) -> int:
        import vaderSentiment

        lexicons = Path(vaderSentiment.__file__).parent
        return sum((lexicons / f).stat().st_size for f in ("vader_lexicon.txt", "emoji_utf8_lexicon.txt"))

    def save(self, folder: Path) -> None:
        pass  # the threshold and label map are in baseline.json; the lexicon ships with vaderSentiment

    @classmethod
    def load(cls, folder: Path, state: dict[str, Any]) -> Vader:
        return cls(_analyzer(), state)


# -- registry and runner --------------------------------------------------------------------------

@dataclass(frozen=True)
class Baseline:
    name: str
    description: str
    kind: type  # check(data), fit(data, seed), predict(texts), params(), notes(), disk_bytes(folder),
    #             save(folder), load(folder, state)


BASELINES: dict[str, Baseline] = {b.name: b for b in [
    Baseline("tfidf-lr", "TF-IDF of word 1-2-grams + logistic regression (scikit-learn), C chosen on validation",
             TfidfLR),
    Baseline("vader", "the VADER sentiment lexicon (vaderSentiment), threshold chosen on the training split", Vader),
]}


def get_baseline(name: str) -> Baseline:
    if name not in BASELINES:
        raise UserError(f"unknown baseline '{name}'", where="--baselines",
                        fix=f"pick from {', '.join(BASELINES)} (or none)")
    return BASELINES[name]


def data_fingerprint(data: TextDataset) -> str:
    """A hash of every split's texts and labels and the label names: the same rows, the same hash."""
    h = hashlib.sha256(json.dumps(data.labels).encode())
    for split in ("train", "validation", "test"):
        h.update(split.encode())
        for text, label in zip(data.splits[split]["text"], data.splits[split]["label"], strict=True):
            h.update(f"{label}\t{text}\n".encode())
    return h.hexdigest()[:16]


def check_baselines(names: list[str], data: TextDataset) -> None:
    """Unknown names and data a baseline cannot read fail here, before anything is trained."""
    for name in names:
        get_baseline(name).kind.check(data)


def load_baseline(folder: str | Path):
    """A fitted baseline read back from its folder; ``.predict(texts)`` gives label ids."""
    folder = Path(folder)
    try:
        meta = json.loads((folder / META).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise UserError("not a finished baseline folder", where=str(folder),
                        fix="run attnlab compare --baselines ... to fit one") from None
    return get_baseline(meta["baseline"]).kind.load(folder, meta["state"])


def _throughput(predict: Callable[[list[str]], Any], texts: list[str]) -> float:
    start = time.perf_counter()
    predict(texts)
    return len(texts) / max(time.perf_counter() - start, 1e-9)


def _row(folder: Path, meta: dict[str, Any], sps: float) -> dict[str, Any]:
    trainable, total = meta["params"]["trainable"], meta["params"]["total"]
    return {
        "model": meta["baseline"], "method": "baseline", "run_dir": str(folder),
        "test_accuracy": meta["test"]["accuracy"], "test_macro_f1": meta["test"]["macro_f1"],
        "validation_accuracy": meta["validation"]["accuracy"],
        "trainable_params": trainable, "total_params": total,
        "trainable_percent": 100 * trainable / total if total else 0.0,
        "train_seconds": meta["training"]["wall_seconds"], "epoch_seconds": None, "step_seconds": None,
        "tokens_per_second": None, "learning_rate": None, "peak_rss_mib": None,
        "checkpoint_mib": meta["checkpoint_bytes"] / 2**20, "base_weight_mib": None,
        "precision": "fp64", "device": "cpu", "inference_sentences_per_second": sps, "notes": meta["notes"],
    }


def run_baseline(name: str, data: TextDataset, output_dir: str | Path, *, seed: int = 42,
                 overwrite: bool = False) -> dict[str, Any]:
    """Fit baseline ``name`` on ``data``'s training split, score validation and test, save it to
    ``output_dir/name`` and return its comparison row. A folder fitted on the same rows with the
    same seed is reused (its throughput measured again) unless ``overwrite``."""
    baseline = get_baseline(name)
    baseline.kind.check(data)
    folder = Path(output_dir).expanduser() / name
    settings = {"baseline": name, "data": data.name, "fingerprint": data_fingerprint(data), "seed": seed,
                "tfidf": {**TFIDF_JSON, "C_grid": list(C_GRID)} if name == "tfidf-lr" else None}
    test_texts = list(data.splits["test"]["text"])
    if not overwrite and (folder / META).is_file():
        meta = json.loads((folder / META).read_text(encoding="utf-8"))
        if meta.get("settings") == settings:
            log.info("baseline %s already fitted on these rows, reusing %s", name, folder)
            return _row(folder, meta, _throughput(load_baseline(folder).predict, test_texts))
    if folder.exists() and any(folder.iterdir()) and not (folder / META).is_file():
        raise UserError("folder exists and is not a baseline folder", where=str(folder),
                        fix="pass another --output-dir, or move that folder away")

    log.info("baseline %s: fitting on %d rows", name, len(data.splits["train"]))
    start = time.perf_counter()
    model = baseline.kind.fit(data, seed)
    fit_seconds = time.perf_counter() - start
    sps = _throughput(model.predict, test_texts)
    metrics = {}
    for split in ("validation", "test"):
        rows = data.splits[split]
        metrics[split] = classification_metrics(np.asarray(rows["label"]), model.predict(list(rows["text"])),
                                                data.labels)
    trainable, total = model.params()

    with atomic_dir(folder, overwrite=True) as tmp:  # an old folder is replaced once the new one is complete
        model.save(tmp)
        size = model.disk_bytes(tmp)
        meta = {"baseline": name, "description": baseline.description, "settings": settings, "labels": data.labels,
                "state": model.state, "notes": model.notes(), "params": {"trainable": trainable, "total": total},
                "validation": metrics["validation"], "test": metrics["test"],
                "training": {"wall_seconds": fit_seconds, "train_rows": len(data.splits["train"])},
                "inference": {"sentences_per_second": sps, "texts": len(test_texts)}, "checkpoint_bytes": size,
                "versions": library_versions(), "hardware": hardware()}
        write_json_atomic(tmp / META, meta)  # last: marks the folder finished
    return _row(folder, meta, sps)
