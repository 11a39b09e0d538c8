"""Docker plumbing: reaching the engine, labelled resources, PostgreSQL helpers, cleanup, reaper.

:mod:`~nocrud.docker.engine` connects and decides how this process reaches the
containers it starts; :mod:`~nocrud.docker.cleanup` labels every object and
removes what a run left; :mod:`~nocrud.docker.reaper` removes it even after a
SIGKILL. Nothing outside the runner's core (environment, images, workflow, the
CLI) imports from here.
"""
