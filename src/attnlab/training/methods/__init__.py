"""Fine-tuning methods, registered by name (as PEFT registers its tuners): one :class:`Method` per
method carries every fact about it, and everything else (training, DDP, the sweep, tune, the CLI's
choices and help) reads the facts from here.

A new method is one registration::

    register_method(Method("probe+ln", "head and the last LayerNorm", 1e-3, prepare))
"""

from __future__ import annotations

from attnlab.errors import UserError
from attnlab.training.methods import bitfit, full, head, lora, qlora
from attnlab.training.methods.base import Method, base_weight_memory, count_params

METHODS: dict[str, Method] = {}


def register_method(method: Method, *, replace: bool = False) -> Method:
    """Add ``method`` to the registry under its name; ``replace`` allows re-registering a name."""
    if method.name in METHODS and not replace:
        raise ValueError(f"a method named {method.name!r} is already registered")
    METHODS[method.name] = method
    return method


def unregister_method(name: str) -> Method:
    """Remove a method (a test's toy one, say) from the registry and return it."""
    return METHODS.pop(name)


def get_method(name: str) -> Method:
    if name not in METHODS:
        raise UserError(f"unknown method '{name}'", where="--method", fix=f"pick one of {', '.join(METHODS)}")
    return METHODS[name]


def methods_for_task(task: str) -> list[str]:
    """The registered methods that train ``task``, in registration order."""
    return [m.name for m in METHODS.values() if task in m.tasks]


def lora_methods() -> list[str]:
    """The registered methods that take the LoRA settings (rank, alpha, targets): ``sweep --adapter``'s choices."""
    return [m.name for m in METHODS.values() if m.lora_settings]


def recorded_keys() -> set[str]:
    """The config.yaml keys any registered method records beside the settings (qlora's ``quantization``)."""
    return {k for m in METHODS.values() for k in m.records}


for _module in (full, lora, head, qlora, bitfit):
    register_method(_module.METHOD)

__all__ = ["METHODS", "Method", "base_weight_memory", "count_params", "get_method", "lora_methods",
           "methods_for_task", "recorded_keys", "register_method", "unregister_method"]
