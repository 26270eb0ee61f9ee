"""Write the next-48-hour forecasts (and the two-week backtest) of every site."""

import time

from django.core.management.base import BaseCommand
from tqdm import tqdm

from forecasting.services.evaluation import forecasts_evaluate
from forecasting.services.predicting import (
    BACKTEST_DAYS,
    FORECAST_HOURS,
    forecasts_backtest,
    forecasts_predict,
)
from stations.models import Site


class Command(BaseCommand):
    help = (
        "Forecast the hours after each site's latest data with the active models "
        "(or the seasonal-naive baseline where none is active), and re-make the "
        "backtest of the last two weeks."
    )

    def add_arguments(self, parser):
        parser.add_argument("--site", action="append", help="Site code (repeatable).")
        parser.add_argument("--hours", type=int, default=FORECAST_HOURS)
        parser.add_argument("--backtest-days", type=int, default=BACKTEST_DAYS)
        parser.add_argument(
            "--no-evaluate",
            action="store_true",
            help="Do not score the finished hours (evaluate_forecasts does it).",
        )

    def handle(self, *args, **options):
        sites = Site.objects.order_by("code")
        if options["site"]:
            sites = sites.filter(code__in=options["site"])
        started = time.perf_counter()
        totals = {}
        for site in tqdm(
            list(sites),
            desc="predicting",
            unit="site",
            disable=options["verbosity"] == 0,
        ):
            live = forecasts_predict(site=site, hours=options["hours"])
            back = (
                forecasts_backtest(site=site, days=options["backtest_days"])
                if options["backtest_days"] > 0
                else 0
            )
            # Scoring the backtest right away gives the forecasts page its
            # two weeks of "forecast against what happened" on first start.
            scored = 0
            if not options["no_evaluate"]:
                scored = forecasts_evaluate(site=site).evaluated
            totals[site.code] = (live, back, scored)
        for code, (live, back, scored) in totals.items():
            self.stdout.write(
                f"{code:<12} {live:>6} forecast rows, {back:>6} backtest rows, "
                f"{scored:>6} hours scored"
            )
        self.stdout.write(
            self.style.SUCCESS(
                f"Forecast {len(totals)} site(s) in "
                f"{time.perf_counter() - started:.1f} s."
            )
        )
