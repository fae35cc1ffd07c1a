"""The operator's face over HTTP: the audit trail as AuditEvents, and the `admin/` scopes."""
