"""The FHIR R4 face (`/fhir`): read, search, history, `$everything`, capability, paging,
Bulk `$export`."""
