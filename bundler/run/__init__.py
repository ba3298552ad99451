"""``fbundle run``: boot a bundle the way the service's container does, under the target's own
CPython, and prove that ``GET /readiness`` answers (and, with ``--invoke``, one request).

The stages, one module each: ``interpreter`` (which CPython), ``bundle`` (build or read the
zip, unpack it, the container's environment), ``session`` (start, readiness, invoke, stop),
``diagnose`` (why a boot failed, from the bundle's bytes and ``/proc``), ``request`` (the
request shapes ``fbundle invoke`` also sends).
"""
