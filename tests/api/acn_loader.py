"""Real sessions for list and filter tests: ACN-Data Caltech, January 2020, read
from ../shared/data as the import does it (one charger per station, one token
and one vehicle per ACN user). Expectations in the tests are computed from the
same file, independently of the API."""

import json
from datetime import UTC, datetime
from functools import cache

from sessions.models import ChargingSession, IdToken, SessionSource, Vehicle
from stations.models import ChargePoint, Connector, Site
from tests.conftest import ACN_DIR

ACN_JSON = (
    ACN_DIR / "raw_api_json" / "acndata_sessions_caltech_2019-12-30_2020-12-30.json"
)
MONTH = "Jan 2020"


def acn_time(value: str | None) -> datetime | None:
    if value is None:
        return None
    return datetime.strptime(value, "%a, %d %b %Y %H:%M:%S GMT").replace(tzinfo=UTC)


@cache
def acn_items() -> tuple[dict, ...]:
    items = json.loads(ACN_JSON.read_text())["_items"]
    return tuple(item for item in items if MONTH in item["connectionTime"])


def acn_load() -> Site:
    """Write the month's sessions; return the site."""
    items = acn_items()
    site = Site.objects.create(
        code="caltech", name="Caltech ACN", time_zone="America/Los_Angeles"
    )
    stations = sorted({item["stationID"] for item in items})
    charge_points = dict(
        zip(
            stations,
            ChargePoint.objects.bulk_create(
                ChargePoint(identity=f"caltech-{station}", site=site)
                for station in stations
            ),
            strict=True,
        )
    )
    connectors = dict(
        zip(
            stations,
            Connector.objects.bulk_create(
                Connector(charge_point=charge_points[station], number=1)
                for station in stations
            ),
            strict=True,
        )
    )
    users = sorted({item["userID"] for item in items if item["userID"]})
    vehicles = dict(
        zip(
            users,
            Vehicle.objects.bulk_create(
                Vehicle(name=f"ACN user {user}", external_id=f"acn:user:{user}")
                for user in users
            ),
            strict=True,
        )
    )
    tokens = dict(
        zip(
            users,
            IdToken.objects.bulk_create(
                IdToken(
                    value=f"ACN{user}",
                    kind=IdToken.Kind.IMPORTED,
                    vehicle=vehicles[user],
                )
                for user in users
            ),
            strict=True,
        )
    )
    ChargingSession.objects.bulk_create(
        ChargingSession(
            charge_point=charge_points[item["stationID"]],
            connector=connectors[item["stationID"]],
            id_token=tokens.get(item["userID"]),
            id_tag=tokens[item["userID"]].value if item["userID"] else "",
            vehicle=vehicles.get(item["userID"]),
            started_at=acn_time(item["connectionTime"]),
            stopped_at=acn_time(item["disconnectTime"]),
            done_charging_at=acn_time(item["doneChargingTime"]),
            energy_wh=round(item["kWhDelivered"] * 1000),
            source=SessionSource.IMPORT,
            external_id=f"acn:{item['sessionID']}",
        )
        for item in items
    )
    return site
