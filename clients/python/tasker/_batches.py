"""Which steps of each StepBatch still lack a final report (for BatchCompleted).

Not thread-safe on its own: the worker calls it under its state lock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Iterable, Optional, Set, Tuple

from tasker.v1 import worker_pb2

StepKey = Tuple[str, int]

#: Outcomes a step of a batch can settle with.
COMPLETED = "completed"
FAILED = "failed"
#: Cancelled by the server or taken away from this worker: no final report is sent.
DROPPED = "dropped"


@dataclass
class _Batch:
    open_steps: Set[StepKey]
    completed: int = 0
    failed: int = 0


@dataclass
class BatchTracker:
    """Counts the outcomes of every open batch until each of its steps has settled."""

    _batches: Dict[str, _Batch] = field(default_factory=dict)
    _batch_of: Dict[StepKey, str] = field(default_factory=dict)

    def open(self, batch_id: str, steps: Iterable[StepKey]) -> None:
        """Starts tracking a batch and the (step_id, attempt) pairs it assigned."""
        keys = set(steps)
        if not keys:
            return
        self._batches[batch_id] = _Batch(open_steps=keys)
        for key in keys:
            self._batch_of[key] = batch_id

    def settle(self, key: StepKey, outcome: str) -> Optional[worker_pb2.BatchCompleted]:
        """Records a step's outcome; returns the BatchCompleted once its batch is done."""
        batch_id = self._batch_of.pop(key, None)
        if batch_id is None:
            return None
        batch = self._batches[batch_id]
        batch.open_steps.discard(key)
        if outcome == COMPLETED:
            batch.completed += 1
        elif outcome == FAILED:
            batch.failed += 1
        if batch.open_steps:
            return None
        del self._batches[batch_id]
        return worker_pb2.BatchCompleted(
            batch_id=batch_id, completed=batch.completed, failed=batch.failed
        )

    def clear(self) -> None:
        """Forgets every batch (their session is gone)."""
        self._batches.clear()
        self._batch_of.clear()

    def open_batches(self) -> int:
        """Number of batches with at least one unsettled step."""
        return len(self._batches)
