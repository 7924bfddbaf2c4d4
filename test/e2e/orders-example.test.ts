/**
 * The order-fulfillment example end to end: a real Tasker on PostgreSQL loading
 * config/templates/ecommerce/, a Node SDK Worker serving the example's handlers
 * (examples/orders/handlers.ts), and orders submitted and watched through
 * TaskerClient. Each step's result must be computed from its ancestors' results: the
 * charge equals the validated total, the shipment names the reservation, the
 * notification saw every ancestor. A declined card and an invalid order end the task
 * in error without retries.
 */
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningTasker } from '../../src/app.js';
import { startTasker } from '../../src/app.js';
import { loadConfig } from '../../src/config/load.js';
import { silentLogger, TaskerClient, Worker } from '../../clients/node/src/index.js';
import type { Task, TaskUpdate } from '../../clients/node/src/index.js';
import { CATALOG, orderHandlers, Warehouse } from '../../examples/orders/handlers.js';
import type { Notification, Payment, Reservation, Shipment, ValidatedOrder } from '../../examples/orders/handlers.js';
import { declinedOrder, formatTask, ORDER_TEMPLATE, runOrder, sampleOrder } from '../../examples/orders/order.js';
import { createPostgresTestDatabase } from '../support/databases.js';
import type { TestDatabase } from '../support/databases.js';
import { TOKENS } from './api-client.js';

const STEPS = ['validate_order', 'reserve_inventory', 'process_payment', 'ship_order', 'send_notification'];

/** Step name → states it went through, in the order `watchTask` delivered them. */
function statesSeen(updates: readonly TaskUpdate[]): Record<string, string[]> {
  const seen: Record<string, string[]> = {};
  for (const u of updates) if (u.kind === 'step_state_changed') (seen[u.stepName] ??= []).push(u.toState);
  return seen;
}

const step = (task: Task, name: string) => task.steps.find((s) => s.name === name);

describe('orders example: order_fulfillment with Node handlers (PostgreSQL)', () => {
  let target: TestDatabase;
  let tasker: RunningTasker;
  let client: TaskerClient;
  let worker: Worker;
  const warehouse = new Warehouse();

  beforeAll(async () => {
    target = await createPostgresTestDatabase();
    const config = loadConfig({
      env: { TASKER_ENV: 'test' },
      overrides: {
        server: { host: '127.0.0.1', port: 0, shutdown_grace_ms: 1000 },
        database: { url: target.url, pool_size: 6 },
        engine: { poll_interval_ms: 200 },
        templates: { dirs: ['config/templates/ecommerce'], register_on_start: true },
      },
    });
    tasker = await startTasker(config, pino({ level: 'silent' }));
    client = new TaskerClient({ address: tasker.address, token: TOKENS.client });
    worker = new Worker({ address: tasker.address, token: TOKENS.worker, name: 'orders-e2e', concurrency: 4, handlers: orderHandlers(warehouse), logger: silentLogger });
    await worker.start();
  }, 90_000);

  afterAll(async () => {
    client?.close();
    await worker?.stop({ graceMs: 1000 });
    await tasker?.stop();
    await target?.close();
  }, 30_000);

  it('completes an order, each result built from the ones before it', async () => {
    const order = sampleOrder('ORD-E2E-1');
    const { task, updates } = await runOrder(client, order);
    const report = formatTask(task);
    expect(task.state, report).toBe('complete');
    expect(task.steps.map((s) => s.name), report).toEqual(STEPS);
    for (const s of task.steps) expect(s.attempts, `${s.name}\n${report}`).toBe(1);

    const validated = task.results.validate_order as ValidatedOrder;
    const reservation = task.results.reserve_inventory as Reservation;
    const payment = task.results.process_payment as Payment;
    const shipment = task.results.ship_order as Shipment;
    const notification = task.results.send_notification as Notification;

    expect(validated).toMatchObject({ order_id: 'ORD-E2E-1', total: 138.99, item_count: 4 });
    expect(validated.lines.map((l) => [l.sku, l.quantity, l.line_total])).toEqual([
      ['KB-MECH-87', 1, 89],
      ['USB-C-2M', 2, 25],
      ['MOUSE-WL', 1, 24.99],
    ]);
    expect(reservation.reserved.map((r) => [r.sku, r.quantity, r.bin])).toEqual(validated.lines.map((l) => [l.sku, l.quantity, CATALOG[l.sku]?.bin]));
    expect(new Set(reservation.reserved.map((r) => r.hold_id)).size).toBe(3);

    expect(payment.amount_charged).toBe(validated.total);
    expect(payment).toMatchObject({ currency: 'USD', method: 'card' });

    expect(shipment.reservation_id).toBe(reservation.reservation_id);
    expect(shipment.hold_ids).toEqual(reservation.reserved.map((r) => r.hold_id));
    expect(shipment).toMatchObject({ carrier: 'standard', weight_grams: 950 + 2 * 60 + 110 });

    expect(notification.saw).toEqual(['process_payment', 'reserve_inventory', 'ship_order', 'validate_order']);
    expect(notification).toMatchObject({ to: 'ada@example.com', channel: 'email', template: 'order_shipped' });
    expect(notification.body).toContain(shipment.tracking_number);
    expect(notification.body).toContain('USD 138.99');

    // The watch stream saw every step run to completion, the handlers' progress, and the results.
    const seen = statesSeen(updates);
    for (const name of STEPS) expect(seen[name], name).toEqual(['enqueued', 'in_progress', 'complete']);
    const progress = updates.filter((u) => u.kind === 'step_progress');
    expect(progress.filter((u) => u.stepName === 'reserve_inventory').map((u) => u.payload)).toEqual(
      reservation.reserved.map((r, i) => ({ reserved: i + 1, of: 3, sku: r.sku, bin: r.bin })),
    );
    expect(progress.filter((u) => u.stepName === 'process_payment').map((u) => (u.payload as { stage: string }).stage)).toEqual(['authorizing', 'captured']);
    const results = Object.fromEntries(updates.flatMap((u) => (u.kind === 'step_result' ? [[u.stepName, u.result]] : [])));
    expect(results).toEqual(task.results);
    expect(updates.at(-1)).toMatchObject({ kind: 'task_state_changed', toState: 'complete' });

    expect(warehouse.available('KB-MECH-87')).toBe(CATALOG['KB-MECH-87']!.stock - 1);
  }, 90_000);

  it('returns the first task for the same order again (strict identity), charging nothing twice', async () => {
    const first = await client.createTask({ ...ORDER_TEMPLATE, context: { ...sampleOrder('ORD-E2E-1') } });
    expect(first.created).toBe(false);
    expect(first.task.state).toBe('complete');
    expect(warehouse.available('USB-C-2M')).toBe(CATALOG['USB-C-2M']!.stock - 2);
  }, 30_000);

  it('ends in error when the card is declined: no retry, nothing shipped', async () => {
    const { task, updates } = await runOrder(client, declinedOrder('ORD-E2E-2'));
    const report = formatTask(task);
    expect(task.state, report).toBe('error');
    const payment = step(task, 'process_payment');
    expect(payment, report).toMatchObject({ state: 'error', attempts: 1, maxAttempts: 5 });
    expect(payment?.lastError, report).toMatchObject({ code: 'CARD_DECLINED', retryable: false, errorClass: 'PermanentError' });
    expect(payment?.lastError?.message, report).toBe('card declined by the issuer for USD 138.99');
    expect(step(task, 'validate_order')?.state, report).toBe('complete');
    expect(step(task, 'reserve_inventory')?.state, report).toBe('complete');
    expect(step(task, 'ship_order'), report).toMatchObject({ state: 'pending', attempts: 0 });
    expect(step(task, 'send_notification'), report).toMatchObject({ state: 'pending', attempts: 0 });
    expect(statesSeen(updates).ship_order).toBeUndefined();
    expect(updates.at(-1)).toMatchObject({ kind: 'task_state_changed', toState: 'error' });
  }, 90_000);

  it('ends in error at validation for an unknown SKU, before any stock or payment', async () => {
    const order = { ...sampleOrder('ORD-E2E-3'), items: [{ sku: 'NO-SUCH-SKU', quantity: 1, price: 5 }] };
    const { task } = await runOrder(client, order);
    const report = formatTask(task);
    expect(task.state, report).toBe('error');
    expect(step(task, 'validate_order'), report).toMatchObject({ state: 'error', attempts: 1 });
    expect(step(task, 'validate_order')?.lastError, report).toMatchObject({ code: 'INVALID_ORDER', retryable: false });
    expect(step(task, 'validate_order')?.lastError?.message, report).toContain('unknown SKU NO-SUCH-SKU');
    for (const name of STEPS.slice(1)) expect(step(task, name)?.attempts, `${name}\n${report}`).toBe(0);
  }, 90_000);
});
