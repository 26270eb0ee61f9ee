"""Normalising meter readings: the units chargers send, to Wh, W, VA, var, A, V.

Pure functions of the reading: the services store the raw value and unit as
sent beside the normalised value, so a change of the rules (or of a charger's
energy scale) can be replayed over the raw data.
"""

from dataclasses import dataclass, field

# OCPP 1.6 UnitOfMeasure (§7.35), spelled as the schema spells them.
UNITS_IN_ENUM = frozenset(
    {
        "Wh",
        "kWh",
        "varh",
        "kvarh",
        "W",
        "kW",
        "VA",
        "kVA",
        "var",
        "kvar",
        "A",
        "V",
        "K",
        "Celcius",
        "Celsius",
        "Fahrenheit",
        "Percent",
    }
)

# lower-cased unit -> (normalised unit, factor). Prefixed forms outside the
# enum (MWh, mA) are seen from meters behind some chargers.
_UNIT_TABLE: dict[str, tuple[str, float]] = {
    "wh": ("Wh", 1.0),
    "kwh": ("Wh", 1000.0),
    "mwh": ("Wh", 1_000_000.0),
    "w": ("W", 1.0),
    "kw": ("W", 1000.0),
    "mw": ("W", 1_000_000.0),
    "varh": ("varh", 1.0),
    "kvarh": ("varh", 1000.0),
    "var": ("var", 1.0),
    "kvar": ("var", 1000.0),
    "va": ("VA", 1.0),
    "kva": ("VA", 1000.0),
    "a": ("A", 1.0),
    "ma": ("A", 0.001),
    "v": ("V", 1.0),
    "kv": ("V", 1000.0),
    "k": ("K", 1.0),
    "celcius": ("Celsius", 1.0),
    "celsius": ("Celsius", 1.0),
    "fahrenheit": ("Fahrenheit", 1.0),
    "percent": ("Percent", 1.0),
    "%": ("Percent", 1.0),
}

# The unit a measurand is read in when the charger names none. The 1.6 schema
# defaults every unit to Wh, which only makes sense for energy.
_DEFAULT_UNIT_BY_PREFIX = (
    ("Energy.Reactive", "varh"),
    ("Energy", "Wh"),
    ("Power.Reactive", "var"),
    ("Power.Offered", "W"),
    ("Power.Factor", ""),
    ("Power", "W"),
    ("Current", "A"),
    ("Voltage", "V"),
    ("SoC", "Percent"),
    ("Temperature", "Celsius"),
    ("Frequency", "Hz"),
    ("RPM", "RPM"),
)

ENERGY_REGISTER = "Energy.Active.Import.Register"
POWER_IMPORT = "Power.Active.Import"


@dataclass
class Normalised:
    value: float | None
    unit: str
    flags: list[str] = field(default_factory=list)


def default_unit(measurand: str) -> str:
    for prefix, unit in _DEFAULT_UNIT_BY_PREFIX:
        if measurand.startswith(prefix):
            return unit
    return "Wh"


def reading_normalise(
    *, raw_value: str, unit: str, measurand: str, energy_scale: float = 1.0
) -> Normalised:
    """Turn one sampled value into a number in the base unit, with flags."""
    flags: list[str] = []
    text = raw_value.strip()
    if "," in text and "." not in text:
        text = text.replace(",", ".")
        flags.append("decimal_comma")
    try:
        number = float(text)
    except ValueError:
        return Normalised(value=None, unit=unit, flags=[*flags, "value_unreadable"])

    if not unit:
        unit_used = default_unit(measurand)
    else:
        unit_used = unit
        if unit not in UNITS_IN_ENUM:
            flags.append("unit_not_in_enum")

    known = _UNIT_TABLE.get(unit_used.strip().lower())
    if known is None:
        flags.append("unit_unknown")
        return Normalised(value=number, unit=unit_used, flags=flags)
    normalised_unit, factor = known
    value = number * factor

    if normalised_unit == "Wh" and measurand.startswith("Energy") and energy_scale:
        if energy_scale != 1.0:
            value *= energy_scale
            flags.append("energy_scaled")
    return Normalised(value=value, unit=normalised_unit, flags=flags)
