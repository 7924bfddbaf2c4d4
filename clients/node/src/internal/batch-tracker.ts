/** Which steps of each StepBatch still lack a final report, for BatchCompleted. */
import type { BatchCompleted } from '../gen/tasker/v1/worker.js';

/** How a step of a batch settled. `dropped`: cancelled or taken away, so no final report was sent. */
export type StepOutcome = 'completed' | 'failed' | 'dropped';

interface OpenBatch {
  readonly open: Set<string>;
  completed: number;
  failed: number;
}

/** Counts the outcomes of every open batch until each of its steps has settled. */
export class BatchTracker {
  readonly #batches = new Map<string, OpenBatch>();
  readonly #batchOf = new Map<string, string>();

  /** Starts tracking a batch and the step keys it assigned. */
  open(batchId: string, keys: readonly string[]): void {
    if (keys.length === 0) return;
    this.#batches.set(batchId, { open: new Set(keys), completed: 0, failed: 0 });
    for (const key of keys) this.#batchOf.set(key, batchId);
  }

  /** Records a step's outcome; returns the BatchCompleted once its batch has no open step. */
  settle(key: string, outcome: StepOutcome): BatchCompleted | null {
    const batchId = this.#batchOf.get(key);
    if (batchId === undefined) return null;
    this.#batchOf.delete(key);
    const batch = this.#batches.get(batchId);
    if (!batch) return null;
    batch.open.delete(key);
    if (outcome === 'completed') batch.completed += 1;
    else if (outcome === 'failed') batch.failed += 1;
    if (batch.open.size > 0) return null;
    this.#batches.delete(batchId);
    return { batchId, completed: batch.completed, failed: batch.failed };
  }

  /** Forgets every batch (their session is gone). */
  clear(): void {
    this.#batches.clear();
    this.#batchOf.clear();
  }

  /** Batches with at least one unsettled step. */
  get openBatches(): number {
    return this.#batches.size;
  }
}
