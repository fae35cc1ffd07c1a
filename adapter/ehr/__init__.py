"""Our client of the EHR's FHIR server: HTTP and retry policy, auth, capabilities, sending
transactions (or batches), and reading OperationOutcomes."""

from __future__ import annotations
