/**
 * The order-fulfillment example in one command (`npm run example:orders`): starts
 * Tasker on the embedded database (PGlite, in memory, auth disabled as in development)
 * with the templates of config/templates/ecommerce, starts a Node SDK worker in this
 * process with the handlers of ./handlers.ts, submits one order, prints every update
 * of the task as `watchTask` delivers it, then the finished task, and stops everything.
 *
 *     npm run example:orders                              exit 0 when the task completed
 *     npm run example:orders -- --payment-declined        the card is declined: process_payment
 *                                                         fails permanently and the task ends in
 *                                                         error; exit 0 when it did
 */
import { parseArgs } from 'node:util';
import type { RunningTasker } from '../../src/app.js';
import { startExampleTasker } from '../embedded-tasker.js';
import { TaskerClient, Worker } from '../../clients/node/src/index.js';
import type { Task } from '../../clients/node/src/index.js';
import { orderHandlers, Warehouse } from './handlers.js';
import { declinedOrder, formatTask, formatUpdate, ORDER_TEMPLATE, runOrder, SAMPLE_ORDER } from './order.js';

const say = (text: string): void => void process.stdout.write(`${text}\n`);

/** Whether the task ended the way the chosen mode expects. */
function asExpected(task: Task, declined: boolean): boolean {
  if (!declined) return task.state === 'complete';
  const payment = task.steps.find((s) => s.name === 'process_payment');
  return task.state === 'error' && payment?.state === 'error' && payment.lastError?.code === 'CARD_DECLINED';
}

async function main(declined: boolean): Promise<number> {
  let tasker: RunningTasker | null = null;
  let worker: Worker | null = null;
  let client: TaskerClient | null = null;
  try {
    tasker = await startExampleTasker('config/templates/ecommerce');
    say(`Tasker listening on ${tasker.address} (PGlite, in memory)`);
    const warehouse = new Warehouse();
    worker = new Worker({ address: tasker.address, name: 'orders-node', concurrency: 4, handlers: orderHandlers(warehouse), labels: { example: 'orders' } });
    await worker.start();
    say(`worker ${worker.session?.sessionId ?? ''} connected, serving ${Object.keys(orderHandlers()).join(', ')}`);
    client = new TaskerClient({ address: tasker.address });
    const order = declined ? declinedOrder('ORD-1002') : SAMPLE_ORDER;
    say(`submitting ${ORDER_TEMPLATE.namespace}/${ORDER_TEMPLATE.name} for ${order.order_id} (payment token ${order.payment.token}); watching it:`);
    const { task } = await runOrder(client, order, (update) => say(formatUpdate(update)));
    say(formatTask(task));
    say(`stock left: ${order.items.map((i) => `${i.sku} ${warehouse.available(i.sku)}`).join(', ')}`);
    return asExpected(task, declined) ? 0 : 1;
  } finally {
    client?.close();
    await worker?.stop({ graceMs: 2_000 });
    await tasker?.stop();
    say('stopped');
  }
}

function options(): { declined: boolean } | null {
  try {
    const { values } = parseArgs({ options: { 'payment-declined': { type: 'boolean' } }, strict: true });
    return { declined: values['payment-declined'] === true };
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\nusage: npm run example:orders [-- --payment-declined]\n`);
    return null;
  }
}

const chosen = options();
if (chosen === null) process.exitCode = 64;
else {
  main(chosen.declined).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
