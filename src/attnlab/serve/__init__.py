"""Serve fine-tuned runs: a REST API (FastAPI) and a web UI (Gradio) in one process.

    attnlab serve --run runs/quickstart/minilm-l6-lora     # http://127.0.0.1:7860/ui, API docs at /docs

    from attnlab.serve import create_app                    # the FastAPI app, e.g. for TestClient
    app = create_app(["runs/quickstart/minilm-l6-lora"], ui=False)
"""

from attnlab.serve.api import create_app
from attnlab.serve.batcher import MicroBatcher
from attnlab.serve.errors import ApiError
from attnlab.serve.limits import Limits
from attnlab.serve.server import DEFAULT_HOST, DEFAULT_PORT, serve
from attnlab.serve.state import ServeState

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "ApiError", "Limits", "MicroBatcher", "ServeState", "create_app", "serve"]
