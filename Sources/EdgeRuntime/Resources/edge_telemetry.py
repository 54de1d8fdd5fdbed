"""Custom telemetry from a module the edge runtime runs.

    from edge_telemetry import emit
    emit({"temp": 21.5})

records ``{"temp": 21.5}`` as a ``custom`` telemetry record of this module: it is
posted to the device's local API (``POST /v1/modules/<MODULE_NAME>/telemetry``),
which answers only once the record is stored in the telemetry buffer, so when
``emit`` returns the record survives a crash and will be uploaded exactly once.
That takes a disk sync (milliseconds); emit from ``run`` sparingly.

The runtime sets ``EDGE_TELEMETRY_URL`` and ``MODULE_NAME`` for its modules, and
puts this file next to the scoring host, so ``score.py`` can import it as it is.
"""

import json
import os
import urllib.parse
import urllib.request

# Loopback only: never through an HTTP proxy from the environment.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class TelemetryError(Exception):
    """The runtime did not take the record; the message says why."""


def emit(data, module=None, timeout=10):
    """Stores ``data`` (anything ``json.dumps`` takes) as a custom telemetry record.

    ``module`` defaults to the module this code runs in. Raises ``TelemetryError``
    when the runtime is unreachable or refused the record.
    """
    base = os.environ.get("EDGE_TELEMETRY_URL")
    if not base:
        raise TelemetryError("EDGE_TELEMETRY_URL is not set: emit() works inside a module the edge runtime runs")
    module = module or os.environ.get("MODULE_NAME")
    if not module:
        raise TelemetryError("MODULE_NAME is not set: pass module= or run inside the edge runtime")
    url = "%s/v1/modules/%s/telemetry" % (base.rstrip("/"), urllib.parse.quote(module, safe=""))
    request = urllib.request.Request(
        url, data=json.dumps(data).encode("utf-8"), headers={"Content-Type": "application/json"}, method="POST")
    try:
        with _opener.open(request, timeout=timeout) as response:
            response.read()
    except urllib.error.HTTPError as error:
        raise TelemetryError("%s answered %d: %s" % (url, error.code, error.read().decode("utf-8", "replace"))) from None
    except OSError as error:
        raise TelemetryError("cannot reach the edge runtime at %s: %s" % (url, error)) from None
