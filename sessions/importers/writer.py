"""The upsert writes of the import: a batch of records in a few bulk queries.

Sites, charge points (with connector 1), fleets, vehicles and tokens are
created when first seen and then left alone: staff may have edited them (a
site's capacity, a token's status), and a re-import must not undo that. Their
ids are cached for the whole run, so a batch of 1,000 sessions costs a handful
of queries however many rows it has.

Sessions are matched on ``external_id``. A session already stored is merged:

* a value the file does not have (empty) never erases a stored one;
* a source of higher or equal rank (ACN API JSON over its flattened CSV copy)
  overwrites stored values that differ, and becomes the session's
  ``import_format``/``import_file``;
* a source of lower rank only fills fields that are still empty (so the CSV
  never undoes what the JSON said, in whichever order the files come).

Importing the same file again therefore changes nothing.
"""

from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, connection, models, transaction
from django.db.models.functions import Lower, Upper
from django.utils import timezone

from sessions.importers.base import FileSummary, FleetSpec, SessionRecord, SiteSpec
from sessions.models import ChargingSession, Fleet, IdToken, SessionSource, Vehicle
from stations.models import ChargePoint, Connector, Site

# Fields a data set can supply, in the order they are compared.
MERGED_FIELDS = (
    "charge_point_id",
    "connector_id",
    "connector_number",
    "id_token_id",
    "id_tag",
    "vehicle_id",
    "started_at",
    "stopped_at",
    "done_charging_at",
    "energy_wh",
    "requested_energy_wh",
    "requested_departure_at",
    "raw_start_timestamp",
    "raw_stop_timestamp",
    "timestamp_zone_assumed",
    "flags",
)
# Postgres takes any number of bind parameters; SQLite's limit is 32,766 since
# 3.32. 500 rows x 16 fields stays far below both and keeps the CASE of
# bulk_update short.
UPDATE_BATCH_SIZE = 500
RAW_TIMESTAMP_MAX_LENGTH = 64


def _is_empty(value: Any) -> bool:
    return value is None or value == "" or value == []


@dataclass(frozen=True, slots=True)
class SourceFile:
    """Where a batch comes from: format, its rank, and the file (folder/name)."""

    format: str
    rank: int
    file: str


class SessionWriter:
    """Writes batches of records for one import run, caching ids between batches."""

    def __init__(self, *, ranks: dict[str, int]) -> None:
        self._ranks = ranks
        self._sites: dict[str, int] = {}
        self._charge_points: dict[str, int] = {}
        self._connectors: dict[int, int] = {}
        self._fleets: dict[str, int] = {}
        self._vehicles: dict[str, int] = {}
        self._tokens: dict[str, tuple[int, str]] = {}

    def batch_write(
        self, records: list[SessionRecord], *, source: SourceFile, summary: FileSummary
    ) -> None:
        """Create or merge the sessions of ``records`` and everything they refer to."""
        users = {r.user.token_value.upper(): r.user for r in records if r.user}
        fleets = {u.fleet.name: u.fleet for u in users.values() if u.fleet}
        sites = {r.site.code: r.site for r in records}
        sites.update({f.site.code: f.site for f in fleets.values() if f.site})

        with transaction.atomic():
            summary.sites_created += self._sites_ensure(sites)
            summary.charge_points_created += self._charge_points_ensure(records)
            self._connectors_ensure(
                {self._charge_points[r.charge_point_identity.lower()] for r in records}
            )
            summary.fleets_created += self._fleets_ensure(fleets)
            summary.vehicles_created += self._vehicles_ensure(users)
            summary.tokens_created += self._tokens_ensure(users)
            created, updated = self._sessions_upsert(records, source=source)

        summary.created += created
        summary.updated += updated
        summary.unchanged += len(records) - created - updated

    # --- assets: created once, then left alone ------------------------------------

    def _ensure(
        self,
        cache: dict,
        wanted: dict[Hashable, Any],
        *,
        model: type[models.Model],
        load: Callable[[list], Iterable[tuple[Hashable, Any]]],
        build: Callable[[Any], models.Model],
    ) -> int:
        """Fill ``cache`` for the keys of ``wanted``, creating the rows not found.

        ``ignore_conflicts`` plus a second load makes two imports running at
        once safe: a row the other one created in between is simply loaded.
        """
        missing = [key for key in wanted if key not in cache]
        if not missing:
            return 0
        cache.update(load(missing))
        new = [key for key in missing if key not in cache]
        if not new:
            return 0
        model.objects.bulk_create(
            [build(wanted[key]) for key in new], ignore_conflicts=True
        )
        cache.update(load(new))
        lost = [key for key in new if key not in cache]
        if lost:
            # SQLite's INSERT OR IGNORE also drops rows that break a CHECK or
            # NOT NULL constraint; say which, rather than fail later on a KeyError.
            raise IntegrityError(
                f"{model.__name__} rows could not be created: {lost[:5]}"
            )
        return len(new)

    def _sites_ensure(self, sites: dict[str, SiteSpec]) -> int:
        return self._ensure(
            self._sites,
            sites,
            model=Site,
            load=lambda codes: Site.objects.filter(code__in=codes).values_list(
                "code", "id"
            ),
            build=lambda spec: Site(
                code=spec.code,
                name=spec.name,
                time_zone=spec.time_zone,
                address=spec.address,
                latitude=spec.latitude,
                longitude=spec.longitude,
                grid_capacity_kw=spec.grid_capacity_kw,
            ),
        )

    def _charge_points_ensure(self, records: list[SessionRecord]) -> int:
        # Identities are unique without regard to case (as OCPP ids are matched).
        wanted = {
            r.charge_point_identity.lower(): (r.charge_point_identity, r.site.code)
            for r in records
        }
        return self._ensure(
            self._charge_points,
            wanted,
            model=ChargePoint,
            load=lambda keys: (
                ChargePoint.objects.annotate(key=Lower("identity"))
                .filter(key__in=keys)
                .values_list("key", "id")
            ),
            build=lambda spec: ChargePoint(
                identity=spec[0], site_id=self._sites[spec[1]], protocol=""
            ),
        )

    def _connectors_ensure(self, charge_point_ids: set[int]) -> None:
        self._ensure(
            self._connectors,
            {cp_id: cp_id for cp_id in charge_point_ids},
            model=Connector,
            load=lambda ids: Connector.objects.filter(
                charge_point_id__in=ids, number=1
            ).values_list("charge_point_id", "id"),
            build=lambda cp_id: Connector(charge_point_id=cp_id, number=1),
        )

    def _fleets_ensure(self, fleets: dict[str, FleetSpec]) -> int:
        return self._ensure(
            self._fleets,
            fleets,
            model=Fleet,
            load=lambda names: Fleet.objects.filter(name__in=names).values_list(
                "name", "id"
            ),
            build=lambda spec: Fleet(
                name=spec.name,
                site_id=self._sites[spec.site.code] if spec.site else None,
                description=spec.description,
            ),
        )

    def _vehicles_ensure(self, users: dict) -> int:
        wanted = {u.vehicle_external_id: u for u in users.values()}
        return self._ensure(
            self._vehicles,
            wanted,
            model=Vehicle,
            load=lambda ids: Vehicle.objects.filter(external_id__in=ids).values_list(
                "external_id", "id"
            ),
            build=lambda user: Vehicle(
                external_id=user.vehicle_external_id,
                name=user.vehicle_name,
                fleet_id=self._fleets[user.fleet.name] if user.fleet else None,
            ),
        )

    def _tokens_ensure(self, users: dict) -> int:
        # idTags compare without regard to case (OCPP 1.6 CiString), as stored.
        return self._ensure(
            self._tokens,
            users,
            model=IdToken,
            load=lambda keys: (
                (key, (pk, value))
                for key, pk, value in IdToken.objects.annotate(key=Upper("value"))
                .filter(key__in=keys)
                .values_list("key", "id", "value")
            ),
            build=lambda user: IdToken(
                value=user.token_value,
                kind=IdToken.Kind.IMPORTED,
                owner=user.owner,
                vehicle_id=self._vehicles[user.vehicle_external_id],
            ),
        )

    # --- sessions ---------------------------------------------------------------

    def _values(self, record: SessionRecord) -> dict[str, Any]:
        charge_point_id = self._charge_points[record.charge_point_identity.lower()]
        token_id = token_value = vehicle_id = None
        if record.user:
            token_id, token_value = self._tokens[record.user.token_value.upper()]
            vehicle_id = self._vehicles[record.user.vehicle_external_id]
        return {
            "charge_point_id": charge_point_id,
            "connector_id": self._connectors[charge_point_id],
            "connector_number": 1,
            "id_token_id": token_id,
            "id_tag": token_value or "",
            "vehicle_id": vehicle_id,
            "started_at": record.started_at,
            "stopped_at": record.stopped_at,
            "done_charging_at": record.done_charging_at,
            "energy_wh": record.energy_wh,
            "requested_energy_wh": record.requested_energy_wh,
            "requested_departure_at": record.requested_departure_at,
            "raw_start_timestamp": record.raw_start_timestamp[
                :RAW_TIMESTAMP_MAX_LENGTH
            ],
            "raw_stop_timestamp": record.raw_stop_timestamp[:RAW_TIMESTAMP_MAX_LENGTH],
            "timestamp_zone_assumed": record.timestamp_zone_assumed,
            "flags": list(record.flags),
        }

    def _sessions_upsert(
        self, records: list[SessionRecord], *, source: SourceFile
    ) -> tuple[int, int]:
        stored = {
            s.external_id: s
            for s in ChargingSession.objects.filter(
                external_id__in=[r.external_id for r in records]
            ).only("external_id", "import_format", "import_file", *MERGED_FIELDS)
        }

        new: list[dict[str, Any]] = []
        changed: list[ChargingSession] = []
        changed_fields: set[str] = set()
        for record in records:
            values = self._values(record)
            session = stored.get(record.external_id)
            if session is None:
                values.update(
                    source=SessionSource.IMPORT,
                    external_id=record.external_id,
                    import_format=source.format,
                    import_file=source.file,
                )
                new.append(values)
                continue
            fields = self._merge(session, values, source=source)
            if fields:
                changed.append(session)
                changed_fields.update(fields)

        _sessions_insert(new)
        if changed:
            now = timezone.now()
            for session in changed:
                session.updated_at = now
            ChargingSession.objects.bulk_update(
                changed,
                sorted(changed_fields | {"updated_at"}),
                batch_size=UPDATE_BATCH_SIZE,
            )
        return len(new), len(changed)

    def _merge(
        self, session: ChargingSession, values: dict[str, Any], *, source: SourceFile
    ) -> list[str]:
        """Apply ``values`` to a stored session by the rules in the module doc."""
        outranks = source.rank >= self._ranks.get(session.import_format, 0)
        fields = []
        for name, value in values.items():
            if _is_empty(value):
                continue
            current = getattr(session, name)
            if current == value or not (outranks or _is_empty(current)):
                continue
            setattr(session, name, value)
            fields.append(name)
        if fields and outranks:
            session.import_format = source.format
            session.import_file = source.file
            fields += ["import_format", "import_file"]
        return fields


def _sessions_insert(rows: list[dict[str, Any]]) -> None:
    """INSERT new sessions with a statement built once per batch.

    ``bulk_create`` spent ~0.4 ms per row compiling SQL (cProfile on the ACN
    folder: 21 s for 27,407 rows, most of it in SQLInsertCompiler); the
    statement is the same for every row, so it is built once here. Values go
    through each field's ``get_db_prep_save`` where the database needs it
    (datetimes on SQLite, JSON), defaults come from the model.

    SQLite runs ``executemany`` in C. On PostgreSQL psycopg sends one
    statement per row even in pipeline mode, and a multi-row VALUES of 30k
    placeholders spends longer in psycopg's query parser than in the server;
    COPY is PostgreSQL's own bulk path and takes the rows as they are.
    """
    if not rows:
        return
    now = timezone.now()
    fields = [f for f in ChargingSession._meta.concrete_fields if not f.primary_key]
    defaults = {f.attname: f.get_default() for f in fields}
    defaults.update(created_at=now, updated_at=now)
    prepared = [(f.attname, _value_prep(f)) for f in fields]
    params = []
    for row in rows:
        values = {**defaults, **row}
        params.append(
            [prep(values[name]) if prep else values[name] for name, prep in prepared]
        )

    # Only model metadata (quoted names) goes into the text; values are bound.
    quote = connection.ops.quote_name
    table = quote(ChargingSession._meta.db_table)
    columns = ", ".join(quote(f.column) for f in fields)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for row in params:
                    copy.write_row(row)
            return
        placeholders = ", ".join(["%s"] * len(fields))
        cursor.executemany(
            f"INSERT INTO {table} ({columns}) VALUES ({placeholders})",  # noqa: S608
            params,
        )


def _value_prep(field: models.Field) -> Callable[[Any], Any] | None:
    """How a value must be adapted for the database, or None if it goes as it is."""
    if isinstance(field, models.DateTimeField):
        # What DateTimeField.get_db_prep_value ends in, without the layers on top.
        return connection.ops.adapt_datetimefield_value
    if isinstance(field, models.JSONField | models.DecimalField):
        return lambda value: field.get_db_prep_save(value, connection)
    return None
