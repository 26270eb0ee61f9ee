"""The log the ocpp package writes for one charger, at the level each line deserves.

The package logs ``logger.exception`` (ERROR, with a traceback) whenever a CALL
from a charger ends in a CallError, including the everyday case of a charger's
frame being refused: a required field missing, an action nobody handles. That
is a WARNING about one charger, and one line is enough: the frame itself is in
the frame log. A fault of our own handler (any exception that is not an
``OCPPError``, or an ``InternalError`` raised on purpose) keeps its ERROR and
traceback.
"""

import logging
import sys
from typing import Any

from ocpp.exceptions import InternalError, OCPPError
from ocpp.messages import Call

from ocpp_bridge.parsing import ERROR_CODE_SPELLING_16

logger = logging.getLogger(__name__)

# OCPP-J message ids are at most 36 characters; an action name has no limit,
# and a charger's junk should not make a log line long.
_ID_CHARS = 36
_ACTION_CHARS = 64


class PackageLog(logging.LoggerAdapter):
    """Passed to the package's ChargePoint as its ``logger``.

    Every line carries the charger's identity in ``charge_point``. Frame lines
    (INFO) still go to the ``ocpp`` logger, whose level settings apply.
    """

    def __init__(self, package_logger: logging.Logger, *, charge_point: str) -> None:
        super().__init__(package_logger, {"charge_point": charge_point})

    def exception(self, msg: object, *args: Any, **kwargs: Any) -> None:
        error = sys.exc_info()[1]
        if not isinstance(error, OCPPError) or isinstance(error, InternalError):
            super().exception(msg, *args, **kwargs)
            return

        call = next((arg for arg in args if isinstance(arg, Call)), None)
        code = getattr(error, "code", type(error).__name__)
        logger.warning(
            "Refused %s %s from the charger with %s: %s",
            str(call.action)[:_ACTION_CHARS] if call else "a frame",
            str(call.unique_id)[:_ID_CHARS] if call else "-",
            ERROR_CODE_SPELLING_16.get(code, code),
            error.description,
            extra=self.extra,
        )
