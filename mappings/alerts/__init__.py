"""Alerts across records: which Flags a newer assessment ends (`life.py`).

Outside this package, use the names below, not its modules.
"""

from __future__ import annotations

from mappings.alerts.life import Settled, assessments, flag_family, is_active_flag, settle

__all__ = ["Settled", "assessments", "flag_family", "is_active_flag", "settle"]
