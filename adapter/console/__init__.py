"""`/console`: the operator's web console, server-rendered (Jinja2, a vendored htmx).

`session` signs operators in and out (a signed, expiring cookie holding the operator's
name, tenant, admin scopes and CSRF token), `pages` serves the pages and their actions,
`reconcile_run` runs a reconcile in the background. Every action needs its scope
(`adapter.api.admin.scopes`) and a valid CSRF token, and lands in the audit trail under
the operator's name. Pages show ids, types, element paths, counts and statuses only:
never a name, an MRN or a clinical value.
"""
