"""FHIR Subscription notifications (R4 Backport IG, rest-hook): the endpoint guard, the
notification Bundles, the guarded HTTP sender, and the deliverer that drains the store's
queue (`adapter.store.subscription_queue`) in the worker process."""
