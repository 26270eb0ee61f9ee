"""Template filters for session figures: durations and Wh shown as kWh."""

from datetime import timedelta

from django import template

register = template.Library()


@register.filter
def duration(value: timedelta | None) -> str:
    """'5 h 07 min' (or '42 min'); '–' when unknown."""
    if value is None:
        return "–"
    minutes = int(value.total_seconds() // 60)
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60:02d} min"


@register.filter
def kwh(value_wh: int | float | None, digits: int = 3) -> str:
    """Wh as kWh with ``digits`` decimals; '–' when unknown."""
    if value_wh is None:
        return "–"
    return f"{value_wh / 1000:,.{int(digits)}f}"
