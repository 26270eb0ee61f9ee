"""Staff writes on fleets, vehicles and id tokens (from the API and the admin).

Kept apart from services.py, which holds the charger-driven writes (sessions,
meter samples, authorisation)."""

import logging
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from sessions.models import Fleet, IdToken, IdTokenStatus, Vehicle
from stations.models import Site

logger = logging.getLogger(__name__)


def _save_unique(obj, *, field: str, message: str) -> None:
    """Save; a unique constraint lost to a concurrent writer is a field error."""
    try:
        with transaction.atomic():
            obj.save()
    except IntegrityError as exc:
        raise ValidationError({field: message}) from exc


def id_token_create(
    *,
    value: str,
    kind: str = IdToken.Kind.RFID,
    status: str = IdTokenStatus.ACCEPTED,
    expires_at: datetime | None = None,
    owner: str = "",
    vehicle: Vehicle | None = None,
    parent_id_tag: str = "",
) -> IdToken:
    """Register a token. idTags compare without regard to case (OCPP 1.6 §3.5)."""
    value = value.strip()
    if not value:
        raise ValidationError({"value": "A token value is required."})
    if IdToken.objects.filter(value__iexact=value).exists():
        raise ValidationError(
            {"value": f"A token {value!r} exists already (case does not matter)."}
        )

    token = IdToken(
        value=value,
        kind=kind,
        status=status,
        expires_at=expires_at,
        owner=owner,
        vehicle=vehicle,
        parent_id_tag=parent_id_tag,
    )
    token.full_clean(validate_constraints=False)
    _save_unique(token, field="value", message=f"A token {value!r} exists already.")
    logger.info("Id token created", extra={"id_token": token.pk})
    return token


def id_token_block(*, id_token: IdToken) -> IdToken:
    """Block a token: the next Authorize or StartTransaction with it is refused."""
    if id_token.status != IdTokenStatus.BLOCKED:
        id_token.status = IdTokenStatus.BLOCKED
        id_token.save(update_fields=["status"])
        logger.info("Id token blocked", extra={"id_token": id_token.pk})
    return id_token


def id_token_unblock(*, id_token: IdToken) -> IdToken:
    """Accept a blocked token again (expiry still applies)."""
    if id_token.status == IdTokenStatus.BLOCKED:
        id_token.status = IdTokenStatus.ACCEPTED
        id_token.save(update_fields=["status"])
        logger.info("Id token unblocked", extra={"id_token": id_token.pk})
    return id_token


def _check_fleet_name(name: str, *, exclude_pk: int | None = None) -> str:
    name = name.strip()
    if not name:
        raise ValidationError({"name": "A fleet name is required."})
    taken = Fleet.objects.filter(name=name).exclude(pk=exclude_pk)
    if taken.exists():
        raise ValidationError({"name": f"A fleet named {name!r} exists already."})
    return name


def fleet_create(
    *, name: str, site: Site | None = None, description: str = ""
) -> Fleet:
    fleet = Fleet(name=_check_fleet_name(name), site=site, description=description)
    _save_unique(fleet, field="name", message="A fleet with this name exists already.")
    logger.info("Fleet created", extra={"fleet": fleet.pk})
    return fleet


def fleet_update(*, fleet: Fleet, **changes) -> Fleet:
    """Change name, site or description of a fleet."""
    if "name" in changes:
        changes["name"] = _check_fleet_name(changes["name"], exclude_pk=fleet.pk)
    for field, value in changes.items():
        setattr(fleet, field, value)
    _save_unique(fleet, field="name", message="A fleet with this name exists already.")
    return fleet


def fleet_delete(*, fleet: Fleet) -> None:
    """Delete a fleet; its vehicles stay, without a fleet, with their history."""
    pk = fleet.pk
    fleet.delete()
    logger.info("Fleet deleted", extra={"fleet": pk})


def _check_vehicle(vehicle: Vehicle) -> None:
    if vehicle.external_id == "":
        vehicle.external_id = None
    vehicle.full_clean(validate_constraints=False, validate_unique=False)
    if vehicle.external_id is not None:
        taken = Vehicle.objects.filter(external_id=vehicle.external_id).exclude(
            pk=vehicle.pk
        )
        if taken.exists():
            raise ValidationError(
                {"external_id": "Another vehicle has this external id."}
            )


def vehicle_create(*, name: str, fleet: Fleet | None = None, **fields) -> Vehicle:
    vehicle = Vehicle(name=name.strip(), fleet=fleet, **fields)
    _check_vehicle(vehicle)

    _save_unique(vehicle, field="external_id", message="Another vehicle has this id.")
    logger.info("Vehicle created", extra={"vehicle": vehicle.pk})
    return vehicle


def vehicle_update(*, vehicle: Vehicle, **changes) -> Vehicle:
    for field, value in changes.items():
        setattr(vehicle, field, value)
    if "name" in changes:
        vehicle.name = vehicle.name.strip()
    _check_vehicle(vehicle)

    _save_unique(vehicle, field="external_id", message="Another vehicle has this id.")
    return vehicle


def vehicle_delete(*, vehicle: Vehicle) -> None:
    """Delete a vehicle; its sessions and tokens stay, without the vehicle."""
    pk = vehicle.pk
    vehicle.delete()
    logger.info("Vehicle deleted", extra={"vehicle": pk})
