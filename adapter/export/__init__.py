"""Bulk Data `$export`: what a kick-off asks for (`request`) and the job writing its files
(`runner`); the routes are in `adapter.api.fhir.bulk_export`, the jobs in `adapter.store`."""

from __future__ import annotations
