"""The search parameters of each served type: R4's names and meanings, and our few own.

`TABLE` is, per type, every parameter the search index reads: its FHIR type (token, string,
reference, date) and the paths it reads. A name R4 defines for the type means here what it
means in R4 (the spec's search parameter registry) and its `definition` is R4's canonical;
a name R4 does not define for the type is one of `CUSTOM`, a SearchParameter resource of
ours (served on `/fhir/SearchParameter/{id}`, see adapter.api.fhir.capability).

A path is dotted (each step may be a list); a last step `name[key=value]` keeps only the
items whose `key` is `value` (`telecom[system=phone]`). A reference parameter in
`REFERENCE_TYPES` keeps only references to that type (`patient`: `Patient/...`).
"""

from __future__ import annotations

R4 = "http://hl7.org/fhir/SearchParameter/"
# R4's definitions shared by several types (checked against HAPI's R4 CapabilityStatement);
# any other R4 parameter's definition is `{Type}-{name}`.
_CLINICAL = (
    "AllergyIntolerance",
    "Condition",
    "DetectedIssue",
    "Encounter",
    "MedicationAdministration",
    "MedicationRequest",
    "MedicationStatement",
    "Observation",
    "Procedure",
)
_MEDICATIONS = ("MedicationAdministration", "MedicationRequest", "MedicationStatement")
_PEOPLE = ("Patient", "Practitioner")
_SHARED: dict[str, tuple[str, ...]] = {
    "clinical-identifier": (*_CLINICAL, "CarePlan", "Consent"),
    "clinical-patient": (*_CLINICAL, "Flag", "CarePlan", "Consent"),
    "clinical-code": (
        *(t for t in _CLINICAL if t not in ("DetectedIssue", "Encounter")),
        "Medication",
    ),
    "clinical-type": ("AllergyIntolerance", "Encounter"),
    "clinical-date": (
        "AllergyIntolerance",
        "Consent",
        "Encounter",
        "Flag",
        "Observation",
        "Procedure",
    ),
    "clinical-encounter": ("Flag", "Observation", "Procedure"),
    "medications-medication": _MEDICATIONS,
    "medications-status": _MEDICATIONS,
    "medications-encounter": ("MedicationRequest",),
    "individual-family": _PEOPLE,
    "individual-given": _PEOPLE,
    "individual-gender": _PEOPLE,
    "individual-telecom": (*_PEOPLE, "PractitionerRole"),
    "individual-phone": (*_PEOPLE, "PractitionerRole"),
    "individual-email": (*_PEOPLE, "PractitionerRole"),
    "individual-address": _PEOPLE,
    "individual-address-city": _PEOPLE,
    "individual-address-country": _PEOPLE,
    "individual-address-postalcode": _PEOPLE,
    "individual-address-state": _PEOPLE,
    "individual-birthdate": ("Patient",),
}
# The parameters R4 does not define for the type, that we keep: what each means.
CUSTOM: dict[tuple[str, str], str] = {
    ("AdverseEvent", "identifier"): "The adverse event's business identifier",
    ("AdverseEvent", "patient"): "The patient the adverse event happened to (its subject)",
    ("AdverseEvent", "encounter"): "The encounter the adverse event happened in",
    ("AllergyIntolerance", "encounter"): "The encounter the allergy was recorded in",
    ("Flag", "category"): "The flag's category",
    ("Flag", "code"): "The flag's code",
    ("Flag", "status"): "The flag's status (active, inactive, entered-in-error)",
}
# Reference parameters that keep only references to one type.
REFERENCE_TYPES = {"patient": "Patient", "practitioner": "Practitioner"}
_HUMAN = {
    "name": ("string", ("name",)),
    "family": ("string", ("name.family",)),
    "given": ("string", ("name.given",)),
    "gender": ("token", ("gender",)),
    "telecom": ("token", ("telecom",)),
    "phone": ("token", ("telecom[system=phone]",)),
    "email": ("token", ("telecom[system=email]",)),
    "address": ("string", ("address",)),
    "address-city": ("string", ("address.city",)),
    "address-country": ("string", ("address.country",)),
    "address-postalcode": ("string", ("address.postalCode",)),
    "address-state": ("string", ("address.state",)),
    "active": ("token", ("active",)),
    "identifier": ("token", ("identifier",)),
}
_Params = dict[str, tuple[str, tuple[str, ...]]]
# What the clinical types about a subject share.
_ABOUT: _Params = {
    "identifier": ("token", ("identifier",)),
    "patient": ("reference", ("subject",)),
    "subject": ("reference", ("subject",)),
}
_IN_ENCOUNTER: _Params = {**_ABOUT, "encounter": ("reference", ("encounter",))}
_MEDICATION: _Params = {
    "code": ("token", ("medicationCodeableConcept",)),
    "medication": ("reference", ("medicationReference",)),
    "status": ("token", ("status",)),
}
TABLE: dict[str, _Params] = {
    "AdverseEvent": {
        "identifier": ("token", ("identifier",)),
        "subject": ("reference", ("subject",)),
        "patient": ("reference", ("subject",)),
        "encounter": ("reference", ("encounter",)),
        "actuality": ("token", ("actuality",)),
        "date": ("date", ("date",)),
        "event": ("token", ("event",)),
        "severity": ("token", ("severity",)),
        "substance": ("reference", ("suspectEntity.instance",)),
    },
    "AllergyIntolerance": {
        "identifier": ("token", ("identifier",)),
        "patient": ("reference", ("patient",)),
        "encounter": ("reference", ("encounter",)),
        "code": ("token", ("code", "reaction.substance")),
        "clinical-status": ("token", ("clinicalStatus",)),
        "verification-status": ("token", ("verificationStatus",)),
        "criticality": ("token", ("criticality",)),
        "type": ("token", ("type",)),
        "category": ("token", ("category",)),
        "manifestation": ("token", ("reaction.manifestation",)),
        "severity": ("token", ("reaction.severity",)),
        "date": ("date", ("recordedDate",)),
        "recorder": ("reference", ("recorder",)),
    },
    "CarePlan": {
        **_ABOUT,
        "status": ("token", ("status",)),
        "intent": ("token", ("intent",)),
        "category": ("token", ("category",)),
    },
    "Condition": {
        **_IN_ENCOUNTER,
        "code": ("token", ("code",)),
        "category": ("token", ("category",)),
        "clinical-status": ("token", ("clinicalStatus",)),
        "verification-status": ("token", ("verificationStatus",)),
        "severity": ("token", ("severity",)),
        "recorded-date": ("date", ("recordedDate",)),
        "onset-date": ("date", ("onsetDateTime", "onsetPeriod")),
        "abatement-date": ("date", ("abatementDateTime", "abatementPeriod")),
        "evidence": ("token", ("evidence.code",)),
        "asserter": ("reference", ("asserter",)),
    },
    "Consent": {
        "identifier": ("token", ("identifier",)),
        "patient": ("reference", ("patient",)),
        "status": ("token", ("status",)),
        "scope": ("token", ("scope",)),
        "category": ("token", ("category",)),
        "date": ("date", ("dateTime",)),
    },
    "DetectedIssue": {
        "identifier": ("token", ("identifier",)),
        "patient": ("reference", ("patient",)),
        "code": ("token", ("code",)),
        "identified": ("date", ("identifiedDateTime", "identifiedPeriod")),
        "implicated": ("reference", ("implicated",)),
        "author": ("reference", ("author",)),
    },
    "Device": {
        "identifier": ("token", ("identifier",)),
        "patient": ("reference", ("patient",)),
        "type": ("token", ("type",)),
        "status": ("token", ("status",)),
        "manufacturer": ("string", ("manufacturer",)),
        "model": ("string", ("modelNumber",)),
        "organization": ("reference", ("owner",)),
    },
    "Encounter": {
        "identifier": ("token", ("identifier",)),
        "patient": ("reference", ("subject",)),
        "subject": ("reference", ("subject",)),
        "status": ("token", ("status",)),
        "class": ("token", ("class",)),
        "type": ("token", ("type",)),
        "date": ("date", ("period",)),
        "participant": ("reference", ("participant.individual",)),
        "practitioner": ("reference", ("participant.individual",)),
        "participant-type": ("token", ("participant.type",)),
        "reason-code": ("token", ("reasonCode",)),
        "service-provider": ("reference", ("serviceProvider",)),
        "location": ("reference", ("location.location",)),
        "episode-of-care": ("reference", ("episodeOfCare",)),
    },
    "Flag": {
        **_IN_ENCOUNTER,
        "date": ("date", ("period",)),
        "author": ("reference", ("author",)),
        "category": ("token", ("category",)),
        "code": ("token", ("code",)),
        "status": ("token", ("status",)),
    },
    "Medication": {
        "identifier": ("token", ("identifier",)),
        "code": ("token", ("code",)),
        "status": ("token", ("status",)),
        "lot-number": ("token", ("batch.lotNumber",)),
        "expiration-date": ("date", ("batch.expirationDate",)),
    },
    "MedicationAdministration": {
        **_ABOUT,
        "context": ("reference", ("context",)),
        **_MEDICATION,
        "effective-time": ("date", ("effectiveDateTime", "effectivePeriod")),
        "performer": ("reference", ("performer.actor",)),
        "request": ("reference", ("request",)),
        "reason-given": ("token", ("reasonCode",)),
        "reason-not-given": ("token", ("statusReason",)),
    },
    "MedicationRequest": {
        **_IN_ENCOUNTER,
        **_MEDICATION,
        "intent": ("token", ("intent",)),
        "category": ("token", ("category",)),
        "priority": ("token", ("priority",)),
        "authoredon": ("date", ("authoredOn",)),
        "requester": ("reference", ("requester",)),
        "intended-performer": ("reference", ("performer",)),
    },
    "MedicationStatement": {
        **_ABOUT,
        "context": ("reference", ("context",)),
        **_MEDICATION,
        "category": ("token", ("category",)),
        "effective": ("date", ("effectiveDateTime", "effectivePeriod")),
        "source": ("reference", ("informationSource",)),
        "part-of": ("reference", ("partOf",)),
    },
    "Observation": {
        **_IN_ENCOUNTER,
        "code": ("token", ("code",)),
        "component-code": ("token", ("component.code",)),
        "combo-code": ("token", ("code", "component.code")),
        "category": ("token", ("category",)),
        "status": ("token", ("status",)),
        "date": ("date", ("effectiveDateTime", "effectivePeriod", "effectiveInstant")),
        "performer": ("reference", ("performer",)),
        "derived-from": ("reference", ("derivedFrom",)),
        "has-member": ("reference", ("hasMember",)),
        "part-of": ("reference", ("partOf",)),
        "value-concept": ("token", ("valueCodeableConcept",)),
        "method": ("token", ("method",)),
        "data-absent-reason": ("token", ("dataAbsentReason",)),
    },
    "Organization": {
        "identifier": ("token", ("identifier",)),
        "name": ("string", ("name", "alias")),
        "type": ("token", ("type",)),
        "active": ("token", ("active",)),
        "address": ("string", ("address",)),
        "address-city": ("string", ("address.city",)),
        "address-postalcode": ("string", ("address.postalCode",)),
        "address-state": ("string", ("address.state",)),
        "partof": ("reference", ("partOf",)),
    },
    "Patient": {
        **_HUMAN,
        "birthdate": ("date", ("birthDate",)),
        "organization": ("reference", ("managingOrganization",)),
        "general-practitioner": ("reference", ("generalPractitioner",)),
        "language": ("token", ("communication.language",)),
        "link": ("reference", ("link.other",)),
    },
    "Practitioner": {**_HUMAN, "communication": ("token", ("communication",))},
    "PractitionerRole": {
        "identifier": ("token", ("identifier",)),
        "practitioner": ("reference", ("practitioner",)),
        "organization": ("reference", ("organization",)),
        "role": ("token", ("code",)),
        "specialty": ("token", ("specialty",)),
        "active": ("token", ("active",)),
        "telecom": ("token", ("telecom",)),
        "phone": ("token", ("telecom[system=phone]",)),
        "email": ("token", ("telecom[system=email]",)),
    },
    "Procedure": {
        **_IN_ENCOUNTER,
        "code": ("token", ("code",)),
        "category": ("token", ("category",)),
        "status": ("token", ("status",)),
        "date": ("date", ("performedDateTime", "performedPeriod")),
        "performer": ("reference", ("performer.actor",)),
        "reason-code": ("token", ("reasonCode",)),
        "part-of": ("reference", ("partOf",)),
    },
    "Provenance": {
        "target": ("reference", ("target",)),
        "patient": ("reference", ("target",)),
        "recorded": ("date", ("recorded",)),
        "agent": ("reference", ("agent.who",)),
        "agent-type": ("token", ("agent.type",)),
        "agent-role": ("token", ("agent.role",)),
        "entity": ("reference", ("entity.what",)),
    },
    "Questionnaire": {
        "identifier": ("token", ("identifier",)),
        "name": ("string", ("name",)),
        "title": ("string", ("title",)),
        "status": ("token", ("status",)),
    },
    "QuestionnaireResponse": {
        **_IN_ENCOUNTER,
        "status": ("token", ("status",)),
        "authored": ("date", ("authored",)),
        "questionnaire": ("reference", ("questionnaire",)),
        "source": ("reference", ("source",)),
        "author": ("reference", ("author",)),
        "based-on": ("reference", ("basedOn",)),
        "part-of": ("reference", ("partOf",)),
    },
}


def definition(resource_type: str, name: str) -> str | None:
    """R4's canonical of the type's parameter `name`; None for one of ours (`CUSTOM`)."""
    if (resource_type, name) in CUSTOM:
        return None
    for shared, types in _SHARED.items():
        if resource_type in types and shared.split("-", 1)[1] == name:
            return R4 + shared
    return f"{R4}{resource_type}-{name}"


def custom_id(resource_type: str, name: str) -> str:
    """The id of our SearchParameter resource for a `CUSTOM` parameter."""
    return f"{resource_type}-{name}"


def parameters(resource_type: str) -> _Params:
    """Every parameter of the type: name -> (kind, paths)."""
    return TABLE.get(resource_type, {})
