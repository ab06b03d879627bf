"""Generate the prompt-engineering examples with the packaged chat model (SmolLM2-135M-Instruct).

Loads the causal LM from ``attnlab.models.resolve_model("smollm2").path`` with
``AutoModelForCausalLM``, formats each conversation with the tokenizer's chat template and decodes
greedily (``do_sample=False``: the same text on every run and machine), then writes the prompts, the
exact text the model sees and its answers to ``docs/gen/prompting.md``.

This one is slow-ish (the first use converts the packaged GGUF, ~30 s; then a few seconds per
example), so the test suite does not rerun it; rerun it when the examples or the model change:

    python docs/gen/prompting.py
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

from _docgen import GEN, banner, run_main

from attnlab.evaluation.tables import markdown_table

SCRIPT = "docs/gen/prompting.py"
OUT_MD = GEN / "prompting.md"
MODEL = "smollm2"
MAX_NEW_TOKENS = 60
REVIEW = "the movie was not good at all"

Message = dict[str, str]

EXAMPLES: list[dict[str, Any]] = [
    {"id": "vague", "title": "A vague request",
     "lesson": "Nothing says which sense of the word, for whom, or how long: the model has to guess.",
     "messages": [{"role": "user", "content": "Tell me about attention."}]},
    {"id": "specific", "title": "The same request, made specific",
     "lesson": "The topic, the reader and the length are named. Compare the focus with the answer above, "
               "and check the content: a fluent answer is not necessarily a correct one.",
     "messages": [{"role": "user", "content": "In two sentences, explain what self-attention does in a "
                                              "transformer, for a programmer."}]},
    {"id": "zero-shot", "title": "Zero-shot classification",
     "lesson": "An instruction, the input clearly delimited, and the allowed answers spelled out. Does the "
               "answer keep to the format?",
     "messages": [{"role": "user", "content": "Classify the sentiment of the movie review as positive or "
                                              f"negative. Answer with one word.\n\nReview: \"{REVIEW}\""}]},
    {"id": "few-shot", "title": "Few-shot classification",
     "lesson": "Worked examples in the conversation show the format, which the model copies; whether it "
               "gets the label right is a separate question.",
     "messages": [
         {"role": "system", "content": "You label movie reviews as positive or negative. Answer with one word."},
         {"role": "user", "content": "Review: \"a gorgeous, moving film\""},
         {"role": "assistant", "content": "positive"},
         {"role": "user", "content": "Review: \"a tedious mess\""},
         {"role": "assistant", "content": "negative"},
         {"role": "user", "content": f"Review: \"{REVIEW}\""}]},
    {"id": "system", "title": "A system prompt sets the role and the format",
     "lesson": "The system message applies to the whole conversation: here, a persona and an output format "
               "(JSON) that a program could parse, if the model follows it.",
     "messages": [
         {"role": "system", "content": "You are a film critic. Reply with a JSON object with the keys "
                                       "\"verdict\" and \"reason\", nothing else."},
         {"role": "user", "content": f"Review: \"{REVIEW}\""}]},
]


def load_chat_model():
    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from attnlab.models import resolve_model

    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    warnings.filterwarnings("ignore")
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    path = resolve_model(MODEL).path
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        tok = AutoTokenizer.from_pretrained(path)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    return tok, model


def generate(tok, model, messages: list[Message]) -> tuple[str, str, int, int]:
    """(templated prompt, answer, prompt tokens, answer tokens) with greedy decoding."""
    import torch

    prompt = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    ids = tok(prompt, return_tensors="pt", add_special_tokens=False)
    with torch.no_grad():
        out = model.generate(**ids, max_new_tokens=MAX_NEW_TOKENS, do_sample=False,
                             pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id)
    new = out[0, ids["input_ids"].shape[1]:]
    return prompt, tok.decode(new, skip_special_tokens=True).strip(), ids["input_ids"].shape[1], len(new)


LABELS = ("positive", "negative")
SCORED_REVIEWS = (REVIEW, "a warm, funny and moving film")


def label_probabilities(tok, model, messages: list[Message]) -> dict[str, float]:
    """P(label | prompt) for each allowed label, renormalised over the labels: the model scores the
    answers instead of writing one, so it cannot wander off the format."""
    import torch

    prompt = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    prompt_ids = tok(prompt, return_tensors="pt", add_special_tokens=False)["input_ids"]
    logps = {}
    for label in LABELS:
        label_ids = tok(label, return_tensors="pt", add_special_tokens=False)["input_ids"]
        ids = torch.cat([prompt_ids, label_ids], dim=1)
        with torch.no_grad():
            logits = model(ids).logits[0, prompt_ids.shape[1] - 1:-1]  # the positions that predict the label
        logps[label] = float(torch.log_softmax(logits.float(), -1).gather(1, label_ids[0, :, None]).sum())
    z = torch.softmax(torch.tensor(list(logps.values())), 0)
    return {label: float(p) for label, p in zip(LABELS, z, strict=True)}


def _with_review(messages: list[Message], review: str) -> list[Message]:
    return [{**m, "content": m["content"].replace(REVIEW, review)} for m in messages]


def _quote(text: str) -> str:
    return "\n".join(f"> {line}" if line else ">" for line in text.splitlines())


def render() -> dict[Path, str]:
    import torch

    from attnlab.rundir import library_versions

    torch.manual_seed(0)
    tok, model = load_chat_model()
    n_params = sum(p.numel() for p in model.parameters())
    parts = [banner(SCRIPT),
             f"Model: `{MODEL}` (`{type(model).__name__}`, {n_params / 1e6:.1f}M parameters), greedy decoding "
             f"(`do_sample=False`), at most {MAX_NEW_TOKENS} new tokens; transformers "
             f"{library_versions().get('transformers', '?')}, torch {library_versions().get('torch', '?')}. "
             "An answer cut off mid-sentence hit the token limit.\n"]
    first_prompt = None
    for ex in EXAMPLES:
        start = time.perf_counter()
        prompt, answer, n_in, n_out = generate(tok, model, ex["messages"])
        first_prompt = first_prompt or prompt
        seconds = time.perf_counter() - start
        print(f"{ex['id']}: {n_in} prompt tokens, {n_out} new tokens, {seconds:.1f} s", file=sys.stderr)
        parts.append(f"### {ex['title']} {{#prompt-{ex['id']}}}\n")
        parts.append(ex["lesson"] + "\n")
        for m in ex["messages"]:
            parts.append(f"**{m['role']}**\n\n{_quote(m['content'])}\n")
        parts.append(f"**model** ({n_out} tokens)\n\n{_quote(answer or '(empty)')}\n")
    parts.append("### Constrain the answer: score the allowed labels {#prompt-scoring}\n")
    parts.append("Instead of letting the model write, compare how likely it finds each allowed answer right "
                 "after the prompt (the sum of the label tokens' log-probabilities, renormalised over the "
                 "labels). The output can no longer leave the format, and the probabilities show how sure "
                 "the model is.\n")
    rows = []
    for ex in EXAMPLES:
        if ex["id"] not in ("zero-shot", "few-shot"):
            continue
        for review in SCORED_REVIEWS:
            probs = label_probabilities(tok, model, _with_review(ex["messages"], review))
            best = max(probs, key=probs.get)
            rows.append((ex["title"].split()[0].lower(), f'"{review}"',
                         *(f"{probs[label]:.3f}" for label in LABELS), best))
    parts.append(markdown_table(["prompt", "review", *(f"P({label})" for label in LABELS), "picked"], rows, "llrrl"))
    parts.append("### What the model actually reads {#prompt-template}\n")
    parts.append("The chat template turns the messages into one string with role markers; the model only ever "
                 "continues text. The first example, as templated:\n")
    parts.append(f"```text\n{first_prompt.rstrip()}\n```\n")
    return {OUT_MD: "\n".join(parts)}


def main(argv: list[str] | None = None) -> int:
    return run_main(SCRIPT, render, argv=argv, description=__doc__.splitlines()[0])


if __name__ == "__main__":
    sys.exit(main())
