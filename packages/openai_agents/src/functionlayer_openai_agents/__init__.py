"""FunctionLayer guarded functions as OpenAI Agents SDK tools."""

__version__ = "0.4.0"

__all__ = ["__version__"]
