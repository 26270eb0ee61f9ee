"""Score finished forecast hours against what happened."""

import time

from django.core.management.base import BaseCommand
from tqdm import tqdm

from forecasting.services.evaluation import forecasts_evaluate
from stations.models import Site


class Command(BaseCommand):
    help = (
        "Compare past forecasts with what happened, update the daily scores per "
        "model version and open (or resolve) worse-than-baseline alerts."
    )

    def add_arguments(self, parser):
        parser.add_argument("--site", action="append", help="Site code (repeatable).")

    def handle(self, *args, **options):
        sites = Site.objects.order_by("code")
        if options["site"]:
            sites = sites.filter(code__in=options["site"])
        started = time.perf_counter()
        summaries = [
            forecasts_evaluate(site=site)
            for site in tqdm(
                list(sites),
                desc="evaluating",
                unit="site",
                disable=options["verbosity"] == 0,
            )
        ]
        for s in summaries:
            flag = "ALERT: model worse than baseline" if s.alert_open else "ok"
            self.stdout.write(
                f"{s.site:<12} {s.evaluated:>6} hours evaluated, "
                f"{s.days_scored:>4} day scores updated  {flag}"
            )
        self.stdout.write(
            self.style.SUCCESS(
                f"Evaluated {len(summaries)} site(s) in "
                f"{time.perf_counter() - started:.1f} s."
            )
        )
