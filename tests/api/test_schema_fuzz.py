"""A schema-driven fuzz run: schemathesis reads /api/schema/ and calls every
operation through the Django WSGI app with a read-write key. No answer may be a
500, and every answer must fit the schema (status code, content type, body,
headers). Examples are bounded so that the run takes a minute or two."""

from datetime import timedelta

import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections
from django.utils import timezone
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import (
    negative_data_rejection,
    positive_data_acceptance,
)

from sessions.models import ChargingSession, Fleet, IdToken, MeterSample, Vehicle
from stations.models import ChargePoint, Connector, Site, StatusEvent

schema = schemathesis.pytest.from_fixture("api_schema")


@pytest.fixture(autouse=True)
def _node_id_for_schemathesis(request):
    # schemathesis 4.32 renames the test node for its report through a private
    # attribute that pytest 9 no longer has; give it one to read and write.
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid


@pytest.fixture(autouse=True)
def _keep_the_test_connection():
    # The WSGI app closes the database connection after each request, as in
    # production; the test keeps one connection open (Django's own test client
    # unhooks the same two receivers).
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def api_data(transactional_db):
    # Committed rows: the command service does its database work in a thread
    # of its own, on another connection.
    site = Site.objects.create(
        code="caltech", name="Caltech", time_zone="America/Los_Angeles"
    )
    cp = ChargePoint.objects.create(identity="CP-1", site=site)
    Connector.objects.create(charge_point=cp, number=1)
    fleet = Fleet.objects.create(name="Vans", site=site)
    vehicle = Vehicle.objects.create(name="Van 1", fleet=fleet)
    token = IdToken.objects.create(value="CARD-1", vehicle=vehicle)
    start = timezone.now() - timedelta(hours=3)
    session = ChargingSession.objects.create(
        charge_point=cp,
        vehicle=vehicle,
        id_token=token,
        started_at=start,
        stopped_at=start + timedelta(hours=2),
        done_charging_at=start + timedelta(hours=1),
        energy_wh=7000,
    )
    for n in range(5):
        MeterSample.objects.create(
            session=session,
            charge_point=cp,
            timestamp=start + timedelta(minutes=10 * n),
            raw_value=str(1000 * n),
            value=1000 * n,
            unit="Wh",
            normalised_unit="Wh",
        )
    StatusEvent.objects.create(charge_point=cp, status="Available", timestamp=start)


@pytest.fixture
def api_schema(api_data, read_write_key):
    from giu_ev.wsgi import application

    loaded = schemathesis.openapi.from_wsgi("/api/schema/?format=json", application)
    loaded.config.generation.update(max_examples=5)
    return loaded


@schema.parametrize()
@settings(
    max_examples=5,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_no_answer_is_a_500_or_breaks_the_schema(case, read_write_key):
    case.call_and_validate(
        headers={"Authorization": f"Api-Key {read_write_key[1]}"},
        # Left out on purpose: "schema-valid" requests naming rows that do not
        # exist (fleet=0) rightly get 400, and lenient paging parameters
        # (page_size=abc falls back to the default) are not errors. Every other
        # default check runs: server errors, status codes, content types,
        # bodies and headers against the schema, auth actually enforced.
        excluded_checks=[positive_data_acceptance, negative_data_rejection],
    )
