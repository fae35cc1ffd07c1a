"""Talking to other FHIR servers (the EHR): client, retry policy, auth and paging as they grow."""

from __future__ import annotations
