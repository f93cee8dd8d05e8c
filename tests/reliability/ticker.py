"""The beat job ``executions.tick``, every second, surviving the outages the suite injects.

(The real beat would also fire every other periodic job of the platform; the fault suite
only needs this one, and faster than its production period.)
"""

import time

import django

django.setup()

from django.db import connection  # noqa: E402

from executions.tasks import tick  # noqa: E402

while True:
    try:
        tick()
    except Exception:  # the database or the broker is down: try again in a second
        connection.close()
    time.sleep(1)
