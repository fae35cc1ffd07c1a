"""Logging setup for the service: one format, the configured level.

What is logged is ids, counts, statuses and error classes; never names, values or any other
clinical content (see architecture.md).
"""

from __future__ import annotations

import logging

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(level: str) -> None:
    logging.basicConfig(level=level, format=LOG_FORMAT)
    logging.getLogger("adapter").setLevel(level)
