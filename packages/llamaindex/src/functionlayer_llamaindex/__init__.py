"""FunctionLayer guarded functions as LlamaIndex tools."""

__version__ = "0.4.0"

__all__ = ["__version__"]
