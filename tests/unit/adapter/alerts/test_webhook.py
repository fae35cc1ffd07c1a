"""`Webhook`: one message per kind per interval; a failing receiver never raises."""

from __future__ import annotations

import json

import responses

from adapter.alerts.webhook import DEAD_LETTER, EHR_UNREACHABLE, Alert, Webhook

URL = "https://hooks.example.org/adapter"


def alert(kind: str = DEAD_LETTER) -> Alert:
    return Alert(kind, "1 outbox entries refused by the EHR", 1, "/console/dead-letters", [7])


@responses.activate
def test_send__same_kind_within_interval__held_back_until_it_passes() -> None:
    responses.post(URL, status=204)
    now = [100.0]
    hook = Webhook(URL, 60, clock=lambda: now[0])
    assert hook.send(alert())
    assert not hook.send(alert())
    assert hook.send(alert(EHR_UNREACHABLE))
    now[0] += 60
    assert hook.send(alert())
    assert len(responses.calls) == 3
    sent = responses.calls[0].request.body
    assert isinstance(sent, bytes)
    body = json.loads(sent)
    assert body == {
        "kind": "dead_letter",
        "summary": "1 outbox entries refused by the EHR",
        "count": 1,
        "console": "/console/dead-letters",
        "ids": [7],
    }


@responses.activate
def test_send__receiver_fails__false_and_no_exception() -> None:
    responses.post(URL, status=500)
    assert not Webhook(URL, 60).send(alert())
