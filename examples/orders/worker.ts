/**
 * The order-fulfillment handlers as a standalone worker process, for a Tasker started
 * with `npm start` (which registers config/templates/ecommerce/order_fulfillment.yaml):
 *
 *     npx tsx examples/orders/worker.ts
 *
 * Reads TASKER_ADDRESS (default 127.0.0.1:50051) and TASKER_TOKEN (a token with the
 * worker role; leave it unset when the server runs with auth disabled, as `npm start`
 * does). Logs `ready <session id>` once connected and one line per finished step.
 * SIGINT or SIGTERM stops it gracefully (in-flight steps finish first); a second
 * signal exits at once.
 */
import { Worker } from '../../clients/node/src/index.js';
import { orderHandlers, Warehouse } from './handlers.js';

const say = (text: string): void => void process.stdout.write(`${text}\n`);

const address = process.env.TASKER_ADDRESS || '127.0.0.1:50051';
const worker = new Worker({
  address,
  token: process.env.TASKER_TOKEN || undefined,
  name: 'orders-node',
  concurrency: 8,
  handlers: orderHandlers(new Warehouse()),
  labels: { example: 'orders' },
});

worker.on('ready', (info) => say(`ready ${info.sessionId} (${address}): ${Object.keys(orderHandlers()).join(', ')}`));
worker.on('step:completed', (step) => say(`${step.taskId} ${step.name} completed (attempt ${step.attempt})`));
worker.on('step:failed', (step, failure) => say(`${step.taskId} ${step.name} failed (attempt ${step.attempt}): ${failure.code || failure.errorClass}: ${failure.message}`));

let stopping = false;
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () => {
    if (stopping) process.exit(1);
    stopping = true;
    void worker.stop({ reason: signal }).then(() => process.exit(0));
  });
}
await worker.start();
