"""Domain metrics exported on /metrics, all named giu_...

Counters and histograms are updated where things happen. Label values come
from small fixed sets (OCPP actions, outcomes, site codes): never a session,
token or transaction id.
"""

from prometheus_client import Counter, Histogram

FRAMES = Counter(
    "giu_ocpp_frames_total",
    "OCPP frames handled, by direction (in/out) and action.",
    ["direction", "action"],
)
CALL_ERRORS = Counter(
    "giu_ocpp_call_errors_total",
    "OCPP CallErrors, by direction (sent/received) and error code.",
    ["direction", "code"],
)
COMMANDS = Counter(
    "giu_commands_total",
    "Remote commands sent to chargers, by action and outcome.",
    ["action", "outcome"],
)
COMMAND_LATENCY = Histogram(
    "giu_command_latency_seconds",
    "Time from sending a remote command to the charger's answer.",
    ["action"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
ENERGY_DELIVERED = Counter(
    "giu_energy_delivered_wh_total",
    "Energy delivered in finished sessions reported by chargers, by site.",
    ["site"],
)
CELERY_TASKS = Counter(
    "giu_celery_tasks_total",
    "Celery task runs, by task name and outcome.",
    ["task", "outcome"],
)
CELERY_TASK_DURATION = Histogram(
    "giu_celery_task_duration_seconds",
    "Celery task run time, by task name.",
    ["task"],
    buckets=(0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600),
)
