"""The package's version (its own module, so the modules the package imports can name it
without importing the package)."""

__version__ = "0.4.0"
