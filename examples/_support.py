"""Shared by every example: pick the model, and say where approvals go.

With ``OPENAI_API_KEY`` set, examples talk to a real model (``OPENAI_BASE_URL`` optional, e.g. a
local Ollama at ``http://localhost:11434/v1``; ``OPENAI_MODEL`` picks the model name).
Otherwise they start FunctionLayer's scripted offline model with the example's own script, so
they run on a fresh machine with no key and no network.

Examples import this file by path (it is not an installed package)::

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from _support import example_model
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from functionlayer.testing.model import ModelScript, ScriptedModel

__all__ = ["ExampleModel", "approvals_destination", "example_model"]

DEFAULT_REAL_MODEL = "gpt-4o-mini"


@dataclass(frozen=True)
class ExampleModel:
    """Where the example's LLM lives. Pass ``**openai_kwargs`` to ``openai.OpenAI`` or ``ChatOpenAI``."""

    model: str
    base_url: str | None
    api_key: str
    scripted: ScriptedModel | None
    """The running scripted model, or ``None`` for a real model."""

    @property
    def openai_kwargs(self) -> dict[str, str]:
        kwargs = {"api_key": self.api_key}
        if self.base_url:
            kwargs["base_url"] = self.base_url
        return kwargs

    @property
    def litellm_model(self) -> str:
        """The model name in ``provider/model`` form (CrewAI, ControlFlow)."""
        return self.model if "/" in self.model else f"openai/{self.model}"


def approvals_destination() -> str:
    """Where ``FunctionLayer()`` will send approval requests, for the examples' banner."""
    server = os.environ.get("FUNCTIONLAYER_API_BASE")
    if server:
        return f"Approvals and questions go to the FunctionLayer server at {server}."
    return "Approvals and questions are asked in this terminal (y approves; anything else rejects)."


@contextmanager
def example_model(script: ModelScript, *, real_model: str | None = None) -> Iterator[ExampleModel]:
    """Use a real model if ``OPENAI_API_KEY`` is set, else serve ``script`` offline.

    Prints on its first line which model it uses, then where approvals go. For the scripted
    model it also sets ``OPENAI_BASE_URL``/``OPENAI_API_KEY`` in this process, so frameworks
    that read them (CrewAI, ControlFlow) find it too.
    """
    key = os.environ.get("OPENAI_API_KEY")
    if key:
        base_url = os.environ.get("OPENAI_BASE_URL") or None
        name = os.environ.get("OPENAI_MODEL") or real_model or DEFAULT_REAL_MODEL
        print(
            f"Using the real model {name} at {base_url or 'api.openai.com'} (OPENAI_API_KEY is set)."
        )
        print(approvals_destination(), flush=True)
        yield ExampleModel(model=name, base_url=base_url, api_key=key, scripted=None)
        return
    with ScriptedModel(script, model="scripted-model") as scripted:
        print(
            f"Using the scripted offline model at {scripted.base_url} "
            "(set OPENAI_API_KEY to use a real model)."
        )
        print(approvals_destination(), flush=True)
        previous = {name: os.environ.get(name) for name in ("OPENAI_BASE_URL", "OPENAI_API_KEY")}
        os.environ["OPENAI_BASE_URL"] = scripted.base_url
        os.environ["OPENAI_API_KEY"] = "scripted-model-needs-no-key"
        try:
            yield ExampleModel(
                model="gpt-4o-mini",  # the name frameworks expect; the scripted model ignores it
                base_url=scripted.base_url,
                api_key="scripted-model-needs-no-key",
                scripted=scripted,
            )
        finally:
            for name, value in previous.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
