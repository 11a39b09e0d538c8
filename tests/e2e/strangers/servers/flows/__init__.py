"""Flows of the tiny app: each asks which process serves it (its health path says)."""

from nocrud.flows import flow

for _i in range(2):

    def _make(i):
        @flow(name=f"served_{i}")
        def served(ctx):
            answer = ctx.api.get("/health").json()
            assert answer["served"] >= 1 and answer["pid"] > 0

        globals()[f"served_{i}"] = served

    _make(_i)
