"""Settings of the B5 benchmark's q2 cluster: the product's, on a queue of its own.

The cluster is a real ``manage.py qcluster`` with the product settings; only its queue name
differs (tasks of the shared company's own queue are never run by the benchmark) and its
scheduler is off (the company's schedules — the minute tick — must not send the demo's
campaigns while the benchmark measures).
"""

from config.settings import *  # noqa: F403
from config.settings import Q_CLUSTER as _PRODUCT_Q_CLUSTER

Q_CLUSTER = {**_PRODUCT_Q_CLUSTER, "cluster_name": "b5_dispatch", "scheduler": False}
