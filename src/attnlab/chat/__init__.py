"""Chat with a small instruction-tuned causal LM (SmolLM2-135M-Instruct by default), streaming.

    from attnlab.chat import ChatSession, load_chat_model
    session = ChatSession(load_chat_model())
    for piece in session.send("What does an attention head do?"):
        ...  # pieces of the reply, as they are generated
"""

from attnlab.chat.model import (
    DEFAULT_CHAT_MODEL,
    DEFAULT_SYSTEM,
    MAX_NEW_TOKENS,
    ChatModel,
    ChatSession,
    GenerationSettings,
    chat_model_available,
    check_messages,
    load_chat_model,
)

__all__ = [
    "DEFAULT_CHAT_MODEL", "DEFAULT_SYSTEM", "MAX_NEW_TOKENS", "ChatModel", "ChatSession", "GenerationSettings",
    "chat_model_available", "check_messages", "load_chat_model",
]
