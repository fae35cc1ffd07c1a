"""The adapter service: the I/O shell around `mappings` (API, store, sync, EHR client, CLI).

This package only re-exports its version; import what you need from its modules.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("ketamine-fhir-adapter")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = ["__version__"]
