"""Prefect flows that wire item2vec's library stages together.

Importing this package sets quiet defaults for Prefect's embedded mode before
Prefect itself is imported: no telemetry (the network is often closed), and the
library's ``item2vec`` logger forwarded into the run logs. Any value already in
the environment wins.
"""

import logging
import os

for _name, _value in {
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_LOGGING_EXTRA_LOGGERS": "item2vec",
    # The first run in a new PREFECT_HOME migrates its database; on a busy 2-core
    # machine that has been seen to exceed Prefect's default 20 s start-up limit.
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
    # Library calls outside a flow run (tests, notebooks) have no run to log to.
    "PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW": "ignore",
}.items():
    os.environ.setdefault(_name, _value)

# Prefect forwards the library's records into run logs, but they inherit the root
# logger's WARNING level unless the library's logger says otherwise.
if logging.getLogger("item2vec").level == logging.NOTSET:  # --quiet/--verbose win
    logging.getLogger("item2vec").setLevel(logging.INFO)
