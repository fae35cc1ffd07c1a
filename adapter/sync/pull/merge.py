"""Taking the EHR's versions into the store: import, update, tombstone, or keep a conflict.

For each resource an EHR search answers, in one transaction per page:

- a version we already hold (same EHR id and versionId) changes nothing: re-reading the
  overlap window, or a page again after a crash, never repeats a change;
- a version whose content is what we hold (our own push, echoed back) only records the
  EHR's version;
- a change to one of our resources becomes its new current version, `source` "ehr", with a
  FHIR Provenance naming the EHR version it came from; it is re-indexed for search;
- the same, while a clinic change to that resource is still unsent (an outbox entry not
  done), is a conflict: the EHR's version is kept beside ours, neither overwrites the other,
  until an operator chooses (`adapter conflicts`);
- a resource the EHR created about one of our patients is imported, under an identifier
  naming the EHR and its id, so it keeps one row however often it is read.

Deletions (from the EHR's `_history`) tombstone the resource the same way. Content is in
our terms throughout (`ehr_view.localise`), and carries the security labels our rules give
every resource (`mappings.common.builders.labelled`): what the EHR sent may lack them. Its narrative
is made anew from what it says (`mappings.common.narrative.refreshed`) unless a person wrote it, so
a narrative the EHR regenerated or dropped is no change (the comparison ignores `text`) and
never leaves a stale one behind. Each version
written gets its Provenance as a resource too (`adapter.store.ehr_provenance`).

Nothing of another tenant comes in: an EHR resource carrying an identifier another tenant
owns (`adapter.store.owners`) is ignored, and so is anything about a resource of ours whose
identifier another tenant owns (two tenants that sent one id into a shared namespace before
ids had owners: the first to have sent it keeps it). Logs carry counts, never ids of patients.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import orjson

from adapter.store import conflicts, ehr_versions
from adapter.store.accept import sha256
from adapter.store.ehr_provenance import Lineage, insert_lineage
from adapter.store.ehr_versions import EhrCopy, Local, load_local
from adapter.store.engine import Connection
from adapter.store.outbox_holds import unsent_keys
from adapter.store.owners import owners
from adapter.store.search_index import index_values, reindex, unindex
from adapter.store.subscription_events import CREATE, DELETE, UPDATE, Pulled, on_pulled, status_of
from adapter.sync.pull.ehr_view import EhrRef, content_digest, holders, localise, parse_reference
from adapter.sync.pull.scope import SHARED_TYPES
from mappings.common.builders import labelled
from mappings.common.identity import Identity
from mappings.common.lookup import obj, objs, str_field
from mappings.common.narrative import refreshed
from mappings.common.serialize import dumps
from mappings.context import SecurityLabels
from mappings.jsontypes import JsonObject, Resource

__all__ = ["EhrVersion", "Local", "Merger", "Outcome", "load_local", "version_of"]

SOURCE_EHR = "ehr"
DATA_OPERATION = "http://terminology.hl7.org/CodeSystem/v3-DataOperation"
# The `pk` of a resource imported by the page being merged, until the page is written.
PENDING_PK = 0
PARTICIPANT_TYPE = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"
MEDICATION_TYPES = frozenset({"MedicationStatement", "MedicationRequest"})

log = logging.getLogger(__name__)


class Outcome(StrEnum):
    IMPORTED = "imported"
    UPDATED = "updated"
    DELETED = "deleted"
    CONFLICT = "conflict"
    SEEN = "seen"
    """A version we hold already, or our own content echoed back."""
    IGNORED = "ignored"
    """Not about anything of ours (or ambiguous: two EHR resources carry our identifier)."""


@dataclass(frozen=True)
class EhrVersion:
    """One version of one resource on the EHR: its content, or None for a deletion."""

    ref: EhrRef
    version: str
    resource: Resource | None


@dataclass(frozen=True)
class _Import:
    """A resource the EHR created, waiting to be inserted with the rest of its page."""

    identity: Identity
    logical_id: str
    """`identity.id`, computed once (a SHA-256)."""
    patient_key: str | None
    version: EhrVersion
    content: Resource
    text: str
    references: tuple[str, ...]
    """Its `reference` strings, in our terms (found once, when the page was read)."""

    @property
    def key(self) -> str:
        return f"{self.identity.resource_type}/{self.logical_id}"


def version_of(resource: Resource) -> EhrVersion | None:
    """The EHR version a resource read from the EHR is; None without type, id or versionId."""
    resource_type = str_field(resource, "resourceType")
    ehr_id = str_field(resource, "id")
    version = str_field(obj(resource.get("meta")), "versionId")
    if not (resource_type and ehr_id and version):
        return None
    return EhrVersion(EhrRef(resource_type, ehr_id), version, resource)


class Merger:
    """Merges EHR versions into one tenant's store, inside the caller's transaction."""

    def __init__(
        self,
        conn: Connection,
        tenant: str,
        ehr_base: str,
        now: datetime,
        security: SecurityLabels | None = None,
    ) -> None:
        self.conn = conn
        self.tenant = tenant
        self.ehr_base = ehr_base.rstrip("/")
        self.now = now
        self.security = security or SecurityLabels()
        self._imports: list[_Import] = []
        self.medication_patients: set[str] = set()
        """The patients whose medication list the merged versions changed (imported,
        updated or deleted MedicationStatements and MedicationRequests), for the screen."""
        self._holders: dict[int, list[JsonObject]] = {}
        self._foreign: frozenset[EhrRef] = frozenset()
        self._pulled: list[Pulled] = []

    def merge(self, versions: Sequence[EhrVersion]) -> Counter[Outcome]:
        """Take a page of EHR versions (contents and deletions) into the store."""
        counts: Counter[Outcome] = Counter()
        # Where each resource refers to others: found once, rewritten in place later.
        self._holders = {id(v.resource): holders(v.resource) for v in versions if v.resource}
        cited = {
            ref
            for found in self._holders.values()
            for holder in found
            if (ref := parse_reference(str(holder["reference"]), self.ehr_base)) is not None
        }
        held = self._held({v.ref for v in versions} | cited)
        self._match_by_identifier(versions, held)
        self._foreign = self._owned_elsewhere(versions, held)
        ours = {ref: local.logical_id for ref, local in held.items()}
        for v in versions:
            if v.ref not in held and v.resource is not None:
                ours[v.ref] = self._import_identity(v.ref).id
        unsent = self._unsent_keys(held.values())
        for v in versions:
            counts[self._merge_one(v, held, ours, unsent)] += 1
        self._write_imports()
        self.raise_events()
        return counts

    def raise_events(self) -> None:
        """Queue the subscription events of what was written, in the caller's transaction."""
        on_pulled(self.conn, self.tenant, self._pulled, self.now)
        self._pulled = []

    def _merge_one(
        self,
        v: EhrVersion,
        held: dict[EhrRef, Local],
        ours: dict[EhrRef, str],
        unsent: set[str],
    ) -> Outcome:
        if v.ref in self._foreign:
            return Outcome.IGNORED  # another tenant's: never taken into this one
        local = held.get(v.ref)
        if v.resource is None:
            return self._delete(v, local, unsent) if local is not None else Outcome.IGNORED
        if local is None:
            return self._import(v, v.resource, held, ours)
        if local.ehr_id not in (None, v.ref.ehr_id):
            log.warning("pull: two %s on the EHR carry one identifier of ours", v.ref.resource_type)
            return Outcome.IGNORED
        if local.ehr_version == v.version and local.ehr_id == v.ref.ehr_id:
            return Outcome.SEEN
        if local.pk == PENDING_PK:
            return Outcome.SEEN  # imported from this very page (a search lists one version)
        content = self._local(v.resource, local.logical_id, ours)
        if not local.deleted and content_digest(content) == content_digest(_parsed(local.content)):
            self._note_ehr_version(local, v)
            return Outcome.SEEN
        if local.key in unsent:
            return self._conflict(local, v, dumps(content).decode())
        self.write_version(local, v, content)
        return Outcome.UPDATED

    # -- reading ------------------------------------------------------------------------

    def _held(self, refs: Iterable[EhrRef]) -> dict[EhrRef, Local]:
        """Our rows for these EHR resources, by the EHR ids recorded on them."""
        by_type: dict[str, set[str]] = {}
        for ref in refs:
            by_type.setdefault(ref.resource_type, set()).add(ref.ehr_id)
        found: dict[EhrRef, Local] = {}
        for resource_type, ids in by_type.items():
            for local in ehr_versions.held_by_ehr_ids(self.conn, self.tenant, resource_type, ids):
                assert local.ehr_id is not None
                found[EhrRef(resource_type, local.ehr_id)] = local
        return found

    def _match_by_identifier(
        self, versions: Sequence[EhrVersion], held: dict[EhrRef, Local]
    ) -> None:
        """Find by identifier the resources of ours whose EHR id we never learned (a patient
        matched on its MRN, an answer lost in a crash), adding them to `held`."""
        wanted: dict[tuple[str, str, str], EhrRef] = {}
        for v in versions:
            if v.ref in held or v.resource is None:
                continue
            for ident in objs(v.resource.get("identifier")):
                system, value = str_field(ident, "system"), str_field(ident, "value")
                if system and value:
                    wanted[(v.ref.resource_type, system, value)] = v.ref
        if not wanted:
            return
        found = ehr_versions.held_by_identifiers(
            self.conn,
            self.tenant,
            {t for t, _, _ in wanted},
            {s for _, s, _ in wanted},
            {v for _, _, v in wanted},
        )
        for local in found:
            ref = wanted.get((local.resource_type, local.identifier_system, local.identifier_value))
            if ref is not None and ref not in held:
                held[ref] = local

    def _owned_elsewhere(
        self, versions: Sequence[EhrVersion], held: dict[EhrRef, Local]
    ) -> frozenset[EhrRef]:
        """The EHR resources of the page (and the ones cited) that are another tenant's:
        carrying an identifier it owns, or held by us under an identifier it owns."""
        named: dict[tuple[str, str], set[EhrRef]] = {}
        for v in versions:
            for ident in objs(v.resource.get("identifier")) if v.resource else ():
                system, value = str_field(ident, "system"), str_field(ident, "value")
                if system and value:
                    named.setdefault((system, value), set()).add(v.ref)
        for ref, local in held.items():
            named.setdefault((local.identifier_system, local.identifier_value), set()).add(ref)
        found = owners(self.conn, named)
        return frozenset(
            ref for pair, tenant in found.items() if tenant != self.tenant for ref in named[pair]
        )

    def _unsent_keys(self, locals_: Iterable[Local]) -> set[str]:
        """The keys of our resources among `locals_` that a not-yet-done outbox entry holds."""
        patients = {local.patient_key for local in locals_ if local.patient_key is not None}
        return unsent_keys(self.conn, self.tenant, patients)

    # -- writing ------------------------------------------------------------------------

    def _import_identity(self, ref: EhrRef) -> Identity:
        return Identity(ref.resource_type, self.ehr_base, f"{ref.resource_type}/{ref.ehr_id}")

    def _import(
        self,
        v: EhrVersion,
        resource: Resource,
        held: dict[EhrRef, Local],
        ours: dict[EhrRef, str],
    ) -> Outcome:
        """A resource the EHR created: kept when it is about one of our patients."""
        if v.ref.resource_type == "Patient" or v.ref.resource_type in SHARED_TYPES:
            return Outcome.IGNORED  # searched by ids we hold: not ours means not asked for
        patient = self._patient_of(resource, held)
        if patient is None:
            return Outcome.IGNORED  # not about our patients, or about another tenant's
        ident = self._import_identity(v.ref)
        logical_id = ours[v.ref]  # `ident.id`, found by `merge` for every resource not held
        content = self._local(resource, logical_id, ours)
        text = dumps(content).decode()
        cited = tuple(str(h["reference"]) for h in self._holders[id(resource)])
        self._imports.append(
            _Import(ident, logical_id, patient.patient_key, v, content, text, cited)
        )
        self._note_medication(ident.resource_type, patient.patient_key)
        # Held from now on: the same resource again in this page is a version already seen.
        held[v.ref] = Local(
            PENDING_PK, ident.resource_type, logical_id, patient.patient_key, 1, text, False,
            v.ref.ehr_id, v.version, ident.system, ident.value,
        )  # fmt: skip
        return Outcome.IMPORTED

    def _write_imports(self) -> None:
        """Insert the page's imported resources, their versions and index rows: a few
        statements of many rows each (imports are most of what a first pull reads)."""
        if not self._imports:
            return
        imports, now = self._imports, self.now
        # Each row's values in the order of `ehr_versions.IMPORTED_COLUMNS`.
        rows = [
            (
                self.tenant,
                i.identity.resource_type,
                i.logical_id,
                i.identity.system,
                i.identity.value,
                i.patient_key,
                None,
                1,
                sha256(i.text.encode()),
                i.text,
                False,
                now,
                i.version.ref.ehr_id,
                i.version.version,
                _etag(i.version.version),
            )
            for i in imports
        ]
        pks = ehr_versions.import_resources(self.conn, self.tenant, rows)
        self._pulled += [
            Pulled(i.key, 1, CREATE, i.patient_key, status_of(i.content)) for i in imports
        ]
        lineage = [self._lineage(i.key, 1, i.patient_key, i.version, "CREATE") for i in imports]
        versions = [
            self._version_row(pk, 1, i.text, False, dumps(found.provenance).decode())
            for pk, i, found in zip(pks, imports, lineage, strict=True)
        ]
        ehr_versions.insert_versions(self.conn, versions)
        insert_lineage(self.conn, self.tenant, lineage, self.security, now)
        index = [
            row
            for pk, i in zip(pks, imports, strict=True)
            for row in index_values(
                pk, self.tenant, i.identity.resource_type, i.content, i.references
            )
        ]
        ehr_versions.insert_index(self.conn, index)
        self._imports = []

    def _local(self, resource: Resource, logical_id: str, ours: dict[EhrRef, str]) -> Resource:
        """The page's copy of `resource` in our terms, labelled as our rules label it, its
        narrative made anew unless a person wrote it (the page is not used after)."""
        content = localise(resource, self._holders[id(resource)], logical_id, ours, self.ehr_base)
        return refreshed(labelled(content, self.security))

    def _patient_of(self, resource: Resource, held: dict[EhrRef, Local]) -> Local | None:
        for element in ("subject", "patient"):
            text = str_field(obj(resource.get(element)), "reference")
            ref = parse_reference(text, self.ehr_base) if text else None
            if ref is not None and ref.resource_type == "Patient" and ref in held:
                return None if ref in self._foreign else held[ref]
        return None

    def write_version(self, local: Local, v: EhrVersion, content: Resource) -> None:
        """Make `content` (the EHR's version `v`, in our terms) the current version."""
        content = labelled(content, self.security)
        text = dumps(content).decode()
        version = local.version + 1
        self._note_medication(local.resource_type, local.patient_key)
        ehr_versions.set_current(self.conn, local.pk, version, text, self.now, _ehr_copy(local, v))
        self._record(local, version, text, False, v, "UPDATE")
        self._pulled.append(
            Pulled(local.key, version, UPDATE, local.patient_key, status_of(content))
        )
        reindex(self.conn, local.pk, self.tenant, local.resource_type, content)

    def _delete(self, v: EhrVersion, local: Local, unsent: set[str]) -> Outcome:
        if local.ehr_version == v.version or _older(v.version, local.ehr_version):
            return Outcome.SEEN
        if local.deleted:
            self._note_ehr_version(local, v)
            return Outcome.SEEN
        if local.key in unsent:
            return self._conflict(local, v, "null")
        self.tombstone(local, v)
        return Outcome.DELETED

    def tombstone(self, local: Local, v: EhrVersion) -> None:
        """Record that the EHR deleted the resource (its version `v`)."""
        version = local.version + 1
        self._note_medication(local.resource_type, local.patient_key)
        ehr_versions.set_deleted(self.conn, local.pk, version, self.now, _ehr_copy(local, v))
        self._record(local, version, local.content, True, v, "DELETE")
        self._pulled.append(Pulled(local.key, version, DELETE, local.patient_key))
        unindex(self.conn, local.pk)

    def _note_medication(self, resource_type: str, patient_key: str | None) -> None:
        if resource_type in MEDICATION_TYPES and patient_key is not None:
            self.medication_patients.add(patient_key)

    def _note_ehr_version(self, local: Local, v: EhrVersion) -> None:
        ehr_versions.set_ehr_copy(self.conn, local.pk, _ehr_copy(local, v))

    def _conflict(self, local: Local, v: EhrVersion, ehr_content: str) -> Outcome:
        if conflicts.is_known(self.conn, local.pk, v.version):
            return Outcome.SEEN
        theirs = _ehr_copy(local, v)
        conflicts.open_conflict(
            self.conn, self.tenant, local.pk, local.version, theirs, ehr_content, self.now
        )
        log.warning(
            "ALERT pull: a %s changed on both sides; see `adapter conflicts`", local.resource_type
        )
        return Outcome.CONFLICT

    def _record(
        self, local: Local, version: int, text: str, deleted: bool, v: EhrVersion, operation: str
    ) -> None:
        """Our `version` of `local`, taken from the EHR's `v`, and its Provenance."""
        found = self._lineage(local.key, version, local.patient_key, v, operation)
        row = self._version_row(local.pk, version, text, deleted, dumps(found.provenance).decode())
        ehr_versions.insert_versions(self.conn, [row])
        insert_lineage(self.conn, self.tenant, [found], self.security, self.now)

    def _version_row(
        self, pk: int, version: int, text: str, deleted: bool, provenance: str
    ) -> tuple[object, ...]:
        """A version's row, its values in the order of `ehr_versions.VERSION_COLUMNS`."""
        return (pk, version, text, deleted, self.now, SOURCE_EHR, None, provenance)

    def _lineage(
        self, key: str, version: int, patient_key: str | None, v: EhrVersion, operation: str
    ) -> Lineage:
        provenance = self._provenance(key, version, v, operation)
        return Lineage(key, version, patient_key, provenance)

    def _provenance(self, key: str, version: int, v: EhrVersion, operation: str) -> JsonObject:
        """A FHIR Provenance: our `version` of `key` is the EHR's version `v`, taken now."""
        ehr_version = f"{self.ehr_base}/{v.ref.resource_type}/{v.ref.ehr_id}/_history/{v.version}"
        provenance: JsonObject = {
            "resourceType": "Provenance",
            "target": [{"reference": f"{key}/_history/{version}"}],
            "recorded": self.now.isoformat(),
            "activity": {"coding": [{"system": DATA_OPERATION, "code": operation}]},
            "agent": [
                {
                    "type": {"coding": [{"system": PARTICIPANT_TYPE, "code": "author"}]},
                    "who": {
                        "identifier": {"system": "urn:ietf:rfc:3986", "value": self.ehr_base},
                        "display": "EHR",
                    },
                }
            ],
            "entity": [{"role": "source", "what": {"reference": ehr_version}}],
        }
        return provenance


def _parsed(text: str) -> Resource:
    value = orjson.loads(text)
    assert isinstance(value, dict)
    return value


def _ehr_copy(local: Local, v: EhrVersion) -> EhrCopy:
    """What the EHR calls `local` at its version `v`."""
    return EhrCopy(local.resource_type, local.logical_id, v.ref.ehr_id, v.version, _etag(v.version))


def _etag(version: str) -> str:
    return f'W/"{version}"'


def _older(version: str, than: str | None) -> bool:
    """True when both are numbers (as HAPI's are) and `version` is the older one."""
    if than is None or not (version + than).isascii():
        return False  # `int()` refuses digits outside ASCII that `isdigit()` accepts
    return version.isdigit() and than.isdigit() and int(version) < int(than)
