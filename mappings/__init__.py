"""Pure translation between the clinic's records and FHIR R4 resources.

No I/O, no clock, no web framework, no database: records in, FHIR JSON out (and
back). The adapter service imports this package; this package never imports it.
"""

from __future__ import annotations
