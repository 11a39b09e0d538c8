"""The worker side of the Celery backend: ``nocrud worker`` on each Docker host.

:mod:`~nocrud.worker.checkout` fingerprints a project checkout (flows, app, migrations)
so a worker can refuse tasks from a coordinator whose checkout differs;
:mod:`~nocrud.worker.service` prepares the worker's Docker host once (images from its
own checkout, the provisioner) and runs each task's flow through the same executor
as a local run; :mod:`~nocrud.worker.images` moves images between daemons without a
registry (``nocrud images export`` / ``import``).
"""

from nocrud.worker.checkout import compare, fingerprint

__all__ = ["compare", "fingerprint"]
