"""``python -m nocrud.bench.child REQUEST``: one strategy's run for ``nocrud bench``.

Run by :func:`nocrud.bench.measure.measure` in a process of its own, so that its
peak memory is this strategy's alone. ``REQUEST`` is a JSON object (config, strategy,
flows, parallel, run_id, out); the results go to ``out``.
"""

from __future__ import annotations

import json
import sys

from nocrud.bench.measure import run_child

if __name__ == "__main__":
    run_child(json.loads(sys.argv[1]))
