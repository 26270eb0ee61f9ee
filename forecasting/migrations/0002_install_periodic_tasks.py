"""Install the forecasting schedule in django-celery-beat (editable in the admin).

Retrain nightly at 02:30 UTC (after the day's sessions are in, before morning
planning in the Americas and Europe), predict every hour at :05 and evaluate
every hour at :15 (after the hourly prediction). Existing rows are left as
staff edited them: the migration only creates what is missing.
"""

from django.db import migrations

SCHEDULE = [
    ("forecasting: retrain nightly", "forecasting.retrain", "30", "2"),
    ("forecasting: predict hourly", "forecasting.predict", "5", "*"),
    ("forecasting: evaluate hourly", "forecasting.evaluate", "15", "*"),
]


def install(apps, schema_editor):
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTasks = apps.get_model("django_celery_beat", "PeriodicTasks")
    for name, task, minute, hour in SCHEDULE:
        if PeriodicTask.objects.filter(name=name).exists():
            continue
        crontab, _ = CrontabSchedule.objects.get_or_create(
            minute=minute,
            hour=hour,
            day_of_week="*",
            day_of_month="*",
            month_of_year="*",
            timezone="UTC",
        )
        PeriodicTask.objects.create(name=name, task=task, crontab=crontab)
    # Tell a running beat to reload its schedule.
    from django.utils import timezone

    PeriodicTasks.objects.update_or_create(
        ident=1, defaults={"last_update": timezone.now()}
    )


def uninstall(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(name__in=[s[0] for s in SCHEDULE]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("forecasting", "0001_model_registry_and_forecasts"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(install, uninstall)]
