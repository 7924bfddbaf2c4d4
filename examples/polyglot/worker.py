"""Python worker of the polyglot example: the `extract` and `report` steps.

    PYTHONPATH=clients/python /usr/bin/python3 examples/polyglot/worker.py

Reads TASKER_ADDRESS (default 127.0.0.1:50051) and TASKER_TOKEN (unset when the
server runs with auth disabled). Prints ``ready <session id>`` on stdout once
connected; logs go to stderr. SIGTERM stops it gracefully.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any, Dict

from tasker import SessionInfo, Step, StepContext, Worker

LANGUAGE = "python"

worker = Worker(
    os.environ.get("TASKER_ADDRESS", "127.0.0.1:50051"),
    token=os.environ.get("TASKER_TOKEN") or None,
    name="polyglot-python",
    concurrency=2,
    labels={"example": "polyglot", "language": LANGUAGE},
)


def languages_seen(step: Step) -> Dict[str, Any]:
    """The language of every ancestor result this step received, by step name."""
    return {name: result.get("language") for name, result in sorted(step.ancestor_results.items())}


@worker.on_session
def announce(info: SessionInfo) -> None:
    if not info.resumed:
        print(f"ready {info.session_id}", flush=True)


@worker.handler("polyglot.python.extract")
def extract(step: Step, ctx: StepContext) -> Any:
    values = sorted(step.context["readings"])
    return {"language": LANGUAGE, "values": values, "count": len(values), "saw": languages_seen(step)}


@worker.handler("polyglot.python.report")
def report(step: Step, ctx: StepContext) -> Any:
    extracted = step.ancestor_results["extract"]
    transformed = step.ancestor_results["transform"]
    scored = step.ancestor_results["score"]
    summary = (
        f"{scored['above_threshold']} of {extracted['count']} readings above {step.context['threshold']}; "
        f"mean {scored['mean']}; range {transformed['min']}..{transformed['max']}"
    )
    return {"language": LANGUAGE, "summary": summary, "saw": languages_seen(step)}


if __name__ == "__main__":
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    worker.run()
