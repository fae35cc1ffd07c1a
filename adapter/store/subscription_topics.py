"""Our SubscriptionTopics (R4 Backport IG): what each one fires on, and which filters it takes.

    encounter           an Encounter was stored or changed: by a clinic's document or by the
                        pull (filters: patient)
    alert               a Flag or a DetectedIssue was raised or ended, by a clinic or the EHR
                        (filters: patient, type); see `fires` for what counts as either
    submission-failed   a clinic's submission was parked by the push as a dead letter or a
                        conflict; the focus is its Encounter (filters: patient)
    ehr-change          the pull brought a change from the EHR: an import, an update or a
                        deletion of any type (filters: patient, type)

A filter is `Type?patient=Patient/<id>` (the backport's filter criteria): each part
optional, several filters of one subscription are alternatives. Pure data and matching:
no I/O, so the API, the store and the tests read the same definitions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

TOPIC_BASE = "https://fhir.ketamine-adapter.org/SubscriptionTopic/"
ENCOUNTER = TOPIC_BASE + "encounter"
ALERT = TOPIC_BASE + "alert"
SUBMISSION_FAILED = TOPIC_BASE + "submission-failed"
EHR_CHANGE = TOPIC_BASE + "ehr-change"

CLINIC, EHR, PUSH = "clinic", "ehr", "push"
CREATE, UPDATE, DELETE = "create", "update", "delete"
ALERT_TYPES = frozenset({"Flag", "DetectedIssue"})
# Statuses after which a Flag or a DetectedIssue no longer stands.
ENDED_STATUSES = frozenset({"inactive", "entered-in-error", "cancelled"})


@dataclass(frozen=True)
class Topic:
    url: str
    title: str
    description: str
    resource_types: frozenset[str] | None
    """The focus types it fires on (None: any type)."""
    filters_by_type: bool


TOPICS: tuple[Topic, ...] = (
    Topic(
        ENCOUNTER,
        "Encounter stored or changed",
        "A patient's Encounter was created, updated or deleted, by a clinic's document or "
        "by a change the pull brought from the EHR.",
        frozenset({"Encounter"}),
        False,
    ),
    Topic(
        ALERT,
        "Alert raised or ended",
        "A Flag or a DetectedIssue was raised (created standing, or set standing again "
        "after it had ended) or ended (a standing one set inactive, cancelled or "
        "entered-in-error, or deleted). A change that leaves it standing, or leaves it "
        "ended, is no event.",
        ALERT_TYPES,
        True,
    ),
    Topic(
        SUBMISSION_FAILED,
        "Submission failed",
        "The push parked a clinic's submission as a dead letter or a conflict; the focus is "
        "the submission's Encounter.",
        frozenset({"Encounter"}),
        False,
    ),
    Topic(
        EHR_CHANGE,
        "Change from the EHR",
        "The pull brought a change from the EHR: a resource imported, updated or deleted.",
        None,
        True,
    ),
)
BY_URL = {topic.url: topic for topic in TOPICS}


@dataclass(frozen=True)
class Filter:
    """One filter criteria: a focus type and a patient (logical id), each optional."""

    resource_type: str | None = None
    patient: str | None = None

    def criteria(self) -> str:
        query = f"patient=Patient/{self.patient}" if self.patient else ""
        return f"{self.resource_type or ''}?{query}"


@dataclass(frozen=True)
class Change:
    """A change of a resource, as the topics see it; `patient`: its patient's logical id."""

    source: str
    resource_type: str
    logical_id: str
    version: int
    action: str
    patient: str | None
    status: str | None = None
    was_standing: bool = False
    """An alert (Flag, DetectedIssue) only: whether its version before this change stood,
    i.e. existed, not deleted, its status none of `ENDED_STATUSES`."""

    @property
    def key(self) -> str:
        return f"{self.resource_type}/{self.logical_id}"

    @property
    def is_standing(self) -> bool:
        """Whether the resource stands as an alert after this change."""
        return self.action != DELETE and stands(self.status)


def stands(status: str | None) -> bool:
    """Whether an alert of that status still stands (one without a status does)."""
    return status not in ENDED_STATUSES


def fires(topic_url: str, change: Change) -> bool:
    """Whether `change` is an event of the topic (filters apart)."""
    topic = BY_URL.get(topic_url)
    if topic is None:
        return False
    if topic.resource_types is not None and change.resource_type not in topic.resource_types:
        return False
    if topic_url == SUBMISSION_FAILED:
        return change.source == PUSH
    if change.source == PUSH:
        return False
    if topic_url == EHR_CHANGE:
        return change.source == EHR
    if topic_url == ALERT:
        return is_alert_transition(change)
    return True


def is_alert_transition(change: Change) -> bool:
    """The alert topic's trigger, as the backport's resourceTrigger would put it with
    `queryCriteria` previous `status:not-in=ended` / current `status:in=ended` and
    `requireBoth`: an event when the alert starts standing (created standing, or set
    standing again after it ended) or stops standing (ended, or deleted while standing).
    A Flag created already ended, an edit of a standing one that keeps it standing, and
    any change of an ended one that keeps it ended (or deletes it) raise nothing."""
    return change.is_standing != change.was_standing


def passes(filters: Sequence[Filter], change: Change) -> bool:
    """Whether `change` passes a subscription's filters (none: everything passes)."""
    if not filters:
        return True
    return any(_passes(one, change) for one in filters)


def _passes(one: Filter, change: Change) -> bool:
    if one.resource_type is not None and one.resource_type != change.resource_type:
        return False
    return one.patient is None or one.patient == change.patient
