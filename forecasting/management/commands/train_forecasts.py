"""Train forecasting models for every site (or some), promoting the winners."""

import time

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from forecasting.models import ForecastTask, ModelStatus, ModelVersion
from forecasting.services.training import models_train
from stations.models import Site


class Command(BaseCommand):
    help = (
        "Train XGBoost models on the session history, export them to ONNX, "
        "register them and promote those that beat the active model and the "
        "seasonal-naive baseline on the holdout."
    )

    def add_arguments(self, parser):
        parser.add_argument("--site", action="append", help="Site code (repeatable).")
        parser.add_argument(
            "--task",
            action="append",
            choices=ForecastTask.values,
            help="Task (repeatable); default: all.",
        )
        parser.add_argument(
            "--no-promote", action="store_true", help="Register candidates only."
        )
        parser.add_argument(
            "--only-missing",
            action="store_true",
            help="Train only sites that lack an active model for a task "
            "(what `make run` uses, so a restart does not retrain).",
        )

    def handle(self, *args, **options):
        sites = Site.objects.order_by("code")
        if options["site"]:
            sites = sites.filter(code__in=options["site"])
            missing = set(options["site"]) - set(sites.values_list("code", flat=True))
            if missing:
                raise CommandError(
                    f"Unknown site code(s): {', '.join(sorted(missing))}"
                )
        tasks = options["task"] or ForecastTask.values
        if options["only_missing"]:
            covered = ModelVersion.objects.filter(
                status=ModelStatus.ACTIVE, task__in=tasks
            ).values_list("site_id", "task")
            active = {}
            for site_id, task in covered:
                active.setdefault(site_id, set()).add(task)
            sites = [s for s in sites if active.get(s.pk, set()) != set(tasks)]
        started = time.perf_counter()
        bar = tqdm(
            total=len(sites) * len(tasks),
            desc="training",
            unit="model",
            disable=options["verbosity"] == 0,
        )

        def progress(outcome):
            bar.set_postfix_str(f"{outcome.site.code} {outcome.task}")
            bar.update(1)

        outcomes = models_train(
            sites=sites,
            tasks=tasks,
            promote=not options["no_promote"],
            progress=progress,
        )
        bar.close()

        self.stdout.write("")
        self.stdout.write(
            f"{'site':<12} {'task':<17} {'ver':>4} {'MAE':>8} {'baseline':>9} "
            f"{'cover%':>7} {'onnx diff':>10}  result"
        )
        for o in outcomes:
            v = o.version
            if v is None:
                self.stdout.write(
                    f"{o.site.code:<12} {o.task:<17} {'-':>4}  {o.message}"
                )
                continue
            result = "promoted" if o.promoted else f"kept as candidate ({o.message})"
            self.stdout.write(
                f"{o.site.code:<12} {o.task:<17} {v.version:>4} {v.mae:>8.3f} "
                f"{v.baseline_mae:>9.3f} {v.interval_coverage or 0:>7.1f} "
                f"{v.onnx_max_abs_diff:>10.2e}  {result}"
            )
        trained = sum(o.version is not None for o in outcomes)
        promoted = sum(o.promoted for o in outcomes)
        self.stdout.write(
            self.style.SUCCESS(
                f"Trained {trained} model(s), promoted {promoted}, skipped "
                f"{len(outcomes) - trained}, in {time.perf_counter() - started:.1f} s."
            )
        )
