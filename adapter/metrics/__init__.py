"""`/metrics`: the adapter's figures in Prometheus' text format (see docs/operations.md).

`series` holds what is counted as it happens (requests, EHR calls), `store_figures` what is
read from the store at each scrape (the outbox, conflicts, the pull's lag), `route` serves
them. No label ever carries an id or a value from a request: route templates, methods,
statuses and status classes, outbox states and resource types only.
"""
