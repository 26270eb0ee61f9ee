"""Builders of rows for the page tests, and a reader of HTML tables."""

from datetime import datetime, timedelta
from html.parser import HTMLParser
from itertools import count

from sessions.models import ChargingSession, IdToken, MeterSample, SessionSource
from stations.models import ChargePoint, Connector, Site

_numbers = count(1)


def make_site(code: str = "caltech", time_zone: str = "America/Los_Angeles") -> Site:
    return Site.objects.create(code=code, name=code.title(), time_zone=time_zone)


def make_charge_point(site: Site, identity: str | None = None, **fields) -> ChargePoint:
    return ChargePoint.objects.create(
        identity=identity or f"{site.code}-CP-{next(_numbers)}", site=site, **fields
    )


def make_connector(charge_point: ChargePoint, number: int = 1, **fields) -> Connector:
    return Connector.objects.create(charge_point=charge_point, number=number, **fields)


def make_session(
    charge_point: ChargePoint,
    started_at: datetime,
    hours: float = 2,
    energy_wh: int | None = 5000,
    token: IdToken | None = None,
    **fields,
) -> ChargingSession:
    fields.setdefault("source", SessionSource.IMPORT)
    return ChargingSession.objects.create(
        charge_point=charge_point,
        started_at=started_at,
        stopped_at=started_at + timedelta(hours=hours),
        energy_wh=energy_wh,
        id_token=token,
        id_tag=token.value if token else "",
        external_id=f"test-{next(_numbers)}",
        **fields,
    )


def make_samples(
    session: ChargingSession, minutes: int, power_w: float, step_min: int = 5
) -> list[MeterSample]:
    """Energy register and power every ``step_min`` minutes at constant power."""
    rows = []
    for i in range(0, minutes + 1, step_min):
        at = session.started_at + timedelta(minutes=i)
        energy = (session.meter_start_wh or 0) + power_w * i / 60
        rows.append(
            MeterSample(
                session=session,
                charge_point=session.charge_point,
                connector_number=session.connector_number,
                timestamp=at,
                measurand="Energy.Active.Import.Register",
                unit="Wh",
                raw_value=str(energy),
                value=energy,
                normalised_unit="Wh",
            )
        )
        rows.append(
            MeterSample(
                session=session,
                charge_point=session.charge_point,
                connector_number=session.connector_number,
                timestamp=at,
                measurand="Power.Active.Import",
                unit="W",
                raw_value=str(power_w),
                value=power_w,
                normalised_unit="W",
            )
        )
    return MeterSample.objects.bulk_create(rows)


class _TableReader(HTMLParser):
    def __init__(self, table_id: str):
        super().__init__()
        self.table_id = table_id
        self.depth = 0
        self.rows: list[list[str]] = []
        self.cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "table" and (self.depth or dict(attrs).get("id") == self.table_id):
            self.depth += 1
        elif self.depth and tag == "tr":
            self.rows.append([])
        elif self.depth and tag in ("td", "th"):
            self.cell = []

    def handle_endtag(self, tag):
        if tag == "table" and self.depth:
            self.depth -= 1
        elif self.depth and tag in ("td", "th") and self.cell is not None:
            self.rows[-1].append(" ".join("".join(self.cell).split()))
            self.cell = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell.append(data)


def table_rows(html: str | bytes, table_id: str) -> list[list[str]]:
    """The text of each cell of the table with this id, row by row (header too)."""
    if isinstance(html, bytes):
        html = html.decode()
    reader = _TableReader(table_id)
    reader.feed(html)
    if not reader.rows:
        raise AssertionError(f"no table #{table_id} in the page")
    return reader.rows
