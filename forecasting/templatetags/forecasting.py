"""``{% forecast_tomorrow %}``: the dashboard's tomorrow-per-site panel."""

from django import template

from forecasting.selectors import tomorrow_energy_by_site

register = template.Library()


@register.inclusion_tag("forecasting/partials/dashboard_tomorrow.html")
def forecast_tomorrow() -> dict:
    return {"tomorrow_rows": tomorrow_energy_by_site()}
