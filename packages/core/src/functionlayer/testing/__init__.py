"""Test FunctionLayer flows offline: a scripted human and a scripted OpenAI-compatible model.

- :class:`ScriptedHuman` is a backend whose human answers from a script
  (:func:`approve`, :func:`reject`, :func:`edit`, :func:`respond`, :func:`never`, :func:`fail`)
  and records every request.
- The scripted model server (``functionlayer.testing.model``) speaks the OpenAI chat-completions
  API on localhost so a framework's real agent loop runs end to end without a real LLM.
"""

from __future__ import annotations

import importlib
from typing import Any

from functionlayer._backends._memory import InMemoryBackend
from functionlayer.testing import _human
from functionlayer.testing._human import *  # noqa: F403  # the scripted human, listed in its __all__

__all__ = ["InMemoryBackend"]  # plus the names of functionlayer.testing.model, re-exported lazily
__all__ += _human.__all__


def _model_module() -> Any:
    # import_module, not `from functionlayer.testing import model`: that form would look the
    # submodule up through this very __getattr__ before importing it, recursing forever.
    return importlib.import_module("functionlayer.testing.model")


def _model_names() -> list[str]:
    return list(_model_module().__all__)


def __getattr__(name: str) -> Any:
    # The model server is only imported when used.
    if name.startswith("__"):
        raise AttributeError(name)
    model = _model_module()
    if name in model.__all__:
        return getattr(model, name)
    raise AttributeError(f"module 'functionlayer.testing' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__ + _model_names())
