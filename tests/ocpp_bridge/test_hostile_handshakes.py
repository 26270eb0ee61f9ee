"""Handshakes a misconfigured or hostile charger sends: refused as bad_identity
and recorded as a connection attempt, never an application error (HTTP 500)."""

from channels.db import database_sync_to_async as db

from ocpp_bridge.models import ConnectionAttempt


async def test_no_id_control_characters_in_the_id_are_refused_as_bad_identity(
    charger_cp, connect
):
    # A charger given the central system URL that does not append its id, and
    # ids decoding to NUL / newline (PostgreSQL text cannot hold NUL).
    paths = ["/ocpp/", "/ocpp", "/ocpp/CP%00-1", "/ocpp/CP%0A1"]
    results = []
    for path in paths:
        charger = await connect(path=path)
        results.append(charger.connected)

    attempts = await db(
        lambda: list(
            ConnectionAttempt.objects.order_by("id").values_list(
                "raw_path", "outcome", "reason"
            )
        )
    )()
    assert results == [False] * len(paths)
    assert [(p, r) for p, _, r in attempts] == [(p, "bad_identity") for p in paths]
    # A well-formed id still connects afterwards.
    assert (await connect()).connected
