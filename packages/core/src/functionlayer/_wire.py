"""The base of every wire model: JSON-compatible, lenient about unknown fields.

Models use ``defer_build`` so importing :mod:`functionlayer` does not pay for building every
validator up front (see ``bench/core_overhead.py``).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

__all__ = ["WireModel"]


class WireModel(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="ignore")
