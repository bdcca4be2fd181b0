"""``python -m sto_analytics [api|relay|migrate|worker]``: the shared runtime runs the API,
relay and migrations (``bootstrap.DEFINITION``); ``worker`` is the Faust worker, built by
``bootstrap.worker_app`` and run by ``streams.worker``."""

import sys

from sto_analytics.bootstrap import DEFINITION
from sto_analytics.config import AnalyticsSettings
from stolive_shared.runtime import main

if len(sys.argv) > 1 and sys.argv[1] == "worker":
    from sto_analytics.streams.worker import run_worker

    sys.argv = [sys.argv[0], "worker"]
    run_worker(AnalyticsSettings())
else:
    main(DEFINITION)
