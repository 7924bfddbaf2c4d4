/**
 * The order-fulfillment example's task: the template it runs, the orders it submits,
 * how it follows a task live, and how updates and the finished task are shown.
 */
import { readFileSync } from 'node:fs';
import type { Task, TaskerClient, TaskUpdate } from '../../clients/node/src/index.js';
import type { OrderContext } from './handlers.js';
import { DECLINED_TOKEN } from './handlers.js';

/** The template, from config/templates/ecommerce/order_fulfillment.yaml. */
export const ORDER_TEMPLATE = { namespace: 'ecommerce', name: 'order_fulfillment' } as const;

/** The sample order of ./order.json (three products, four units; also the CLI's `--context-file`). */
export const SAMPLE_ORDER: OrderContext = JSON.parse(readFileSync(new URL('./order.json', import.meta.url), 'utf8')) as OrderContext;

/** The sample order under another id; `paymentToken` picks the card. */
export function sampleOrder(orderId: string, paymentToken = SAMPLE_ORDER.payment.token): OrderContext {
  return { ...SAMPLE_ORDER, order_id: orderId, payment: { ...SAMPLE_ORDER.payment, token: paymentToken } };
}

/** The same order paid with a card the gateway declines. */
export const declinedOrder = (orderId: string): OrderContext => sampleOrder(orderId, DECLINED_TOKEN);

/**
 * Creates a task of the template for `order`, calls `onUpdate` with every update of
 * `watchTask` (history first, so nothing is missed) until the task ends, and returns
 * the finished task. Rejects when it has not ended within `timeoutMs`.
 */
export async function runOrder(
  client: TaskerClient,
  order: OrderContext,
  onUpdate: (update: TaskUpdate) => void = () => undefined,
  timeoutMs = 60_000,
): Promise<{ task: Task; updates: TaskUpdate[] }> {
  const { task } = await client.createTask({ ...ORDER_TEMPLATE, context: { ...order }, initiator: 'orders example', correlationId: order.order_id });
  const updates: TaskUpdate[] = [];
  for await (const update of client.watchTask(task.taskId, { signal: AbortSignal.timeout(timeoutMs) })) {
    updates.push(update);
    onUpdate(update);
  }
  return { task: await client.getTask(task.taskId), updates };
}

const NAME_WIDTH = 17;
const LIVE_RESULT_CHARS = 100;

/** `value` as JSON, cut to `max` characters (the full result is printed with the finished task). */
function clipped(value: unknown, max: number): string {
  const text = JSON.stringify(value) ?? 'null';
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

/** One watch update as a line. */
export function formatUpdate(u: TaskUpdate): string {
  switch (u.kind) {
    case 'task_state_changed':
      return `  ${'task'.padEnd(NAME_WIDTH)}  ${u.fromState ?? 'new'} -> ${u.toState}${u.reason ? `  (${u.reason})` : ''}`;
    case 'step_state_changed':
      return `  ${u.stepName.padEnd(NAME_WIDTH)}  ${u.fromState ?? 'new'} -> ${u.toState}  attempt ${u.attempt}${u.reason ? `  (${u.reason})` : ''}`;
    case 'step_progress':
      return `  ${u.stepName.padEnd(NAME_WIDTH)}  progress ${JSON.stringify(u.payload)}`;
    case 'step_result':
      return `  ${u.stepName.padEnd(NAME_WIDTH)}  result   ${clipped(u.result, LIVE_RESULT_CHARS)}`;
  }
}

/** The finished task: its state, then each step's state and result (or last error). */
export function formatTask(task: Task): string {
  const lines = [`task ${task.taskId} (${task.template.namespace}/${task.template.name}@${task.template.version}): ${task.state}`];
  for (const s of task.steps) {
    const outcome = s.lastError && s.state !== 'complete'
      ? `${s.lastError.code ?? s.lastError.errorClass}: ${s.lastError.message}`
      : s.result === undefined ? '-' : JSON.stringify(s.result);
    lines.push(`  ${s.name.padEnd(NAME_WIDTH)}  ${s.state.padEnd(8)}  ${outcome}`);
  }
  return lines.join('\n');
}
