/**
 * Node step handlers for ecommerce/order_fulfillment
 * (config/templates/ecommerce/order_fulfillment.yaml):
 *
 *   validate_order → reserve_inventory ∥ process_payment → ship_order → send_notification
 *
 * Each handler computes its result from the task context, its handler_config and the
 * results of its ancestors. The warehouse and the payment gateway are in-process and
 * deterministic: identifiers are derived from the order, so running the same order
 * again gives the same results, and a retried attempt reserves or charges nothing twice.
 *
 * Failures follow the template's contract: an invalid order, an unknown or
 * out-of-stock SKU and a declined card are permanent (`PermanentError`, the step goes
 * to `error` at once); anything else thrown is retried per the template.
 */
import { createHash } from 'node:crypto';
import { PermanentError } from '../../clients/node/src/index.js';
import type { Step, StepHandler } from '../../clients/node/src/index.js';

/** One order line of the task context. */
export interface OrderItem {
  readonly sku: string;
  readonly quantity: number;
  readonly price: number;
}

/** The task context the template's context_schema describes. */
export interface OrderContext {
  readonly order_id: string;
  readonly customer: { readonly email: string; readonly name: string };
  readonly items: readonly OrderItem[];
  readonly payment: { readonly method: string; readonly token: string };
}

/** validate_order's result. */
export interface ValidatedOrder {
  readonly order_id: string;
  /** Sum of quantity × price over every line, in the order's currency. */
  readonly total: number;
  /** Units ordered (sum of quantities). */
  readonly item_count: number;
  /** The order's lines, one per SKU (repeated SKUs merged). */
  readonly lines: ReadonlyArray<{ readonly sku: string; readonly quantity: number; readonly unit_price: number; readonly line_total: number }>;
}

/** reserve_inventory's result. */
export interface Reservation {
  readonly reservation_id: string;
  readonly reserved: ReadonlyArray<{ readonly sku: string; readonly quantity: number; readonly hold_id: string; readonly bin: string }>;
}

/** process_payment's result. */
export interface Payment {
  readonly payment_id: string;
  readonly amount_charged: number;
  readonly currency: string;
  readonly method: string;
}

/** ship_order's result. */
export interface Shipment {
  readonly shipment_id: string;
  readonly tracking_number: string;
  readonly carrier: string;
  readonly reservation_id: string;
  readonly hold_ids: readonly string[];
  readonly weight_grams: number;
}

/** send_notification's result. */
export interface Notification {
  readonly message_id: string;
  readonly channel: string;
  readonly template: string;
  readonly to: string;
  readonly body: string;
  /** The ancestor results the handler received, by step name. */
  readonly saw: readonly string[];
}

/** A product the warehouse stocks. */
export interface Product {
  readonly title: string;
  readonly stock: number;
  readonly bin: string;
  readonly weightGrams: number;
}

/** The example's catalogue, with the stock the warehouse starts with. */
export const CATALOG: Readonly<Record<string, Product>> = {
  'KB-MECH-87': { title: 'Mechanical keyboard, 87 keys', stock: 5, bin: 'A-03-2', weightGrams: 950 },
  'USB-C-2M': { title: 'USB-C cable, 2 m', stock: 40, bin: 'C-11-4', weightGrams: 60 },
  'MOUSE-WL': { title: 'Wireless mouse', stock: 12, bin: 'B-07-1', weightGrams: 110 },
  'DESK-MAT-XL': { title: 'Desk mat, XL', stock: 8, bin: 'D-01-1', weightGrams: 720 },
};

/** The payment token the gateway declines (as card test tokens do). */
export const DECLINED_TOKEN = 'tok_card_declined';

/** A deterministic identifier: `prefix_` and 12 hex digits of a hash of the parts. */
export function idFor(prefix: string, ...parts: ReadonlyArray<string | number>): string {
  return `${prefix}_${createHash('sha256').update(parts.join('|')).digest('hex').slice(0, 12)}`;
}

const cents = (amount: number): number => Math.round(amount * 100);
const fromCents = (value: number): number => value / 100;

/**
 * Stock and reservations of one warehouse. Reservations are keyed by order: reserving
 * an order again (a retried attempt) returns the first reservation and takes no stock.
 */
export class Warehouse {
  readonly #stock = new Map<string, number>();
  readonly #reservations = new Map<string, Reservation>();

  constructor(readonly catalog: Readonly<Record<string, Product>> = CATALOG) {
    for (const [sku, product] of Object.entries(catalog)) this.#stock.set(sku, product.stock);
  }

  /** Units of `sku` not reserved. */
  available(sku: string): number {
    return this.#stock.get(sku) ?? 0;
  }

  /** Reserves every line of `order` or nothing; throws a PermanentError OUT_OF_STOCK when a line cannot be met. */
  reserve(order: ValidatedOrder): Reservation {
    const existing = this.#reservations.get(order.order_id);
    if (existing) return existing;
    const short = order.lines.filter((line) => this.available(line.sku) < line.quantity);
    if (short.length > 0) {
      throw new PermanentError(`out of stock: ${short.map((l) => `${l.sku} (want ${l.quantity}, have ${this.available(l.sku)})`).join(', ')}`, {
        code: 'OUT_OF_STOCK',
        details: { order_id: order.order_id, skus: short.map((l) => l.sku) },
      });
    }
    const reservationId = idFor('rsv', order.order_id);
    const reserved = order.lines.map((line) => {
      this.#stock.set(line.sku, this.available(line.sku) - line.quantity);
      return { sku: line.sku, quantity: line.quantity, hold_id: idFor('hold', reservationId, line.sku), bin: (this.catalog[line.sku] as Product).bin };
    });
    const reservation = { reservation_id: reservationId, reserved };
    this.#reservations.set(order.order_id, reservation);
    return reservation;
  }
}

/** The result of ancestor `name`; a PermanentError when it is missing (the template guarantees it). */
function ancestor<T>(step: Step, name: string): T {
  const result = step.ancestorResults[name];
  if (result === null || typeof result !== 'object') {
    throw new PermanentError(`${step.name} needs the result of ${name}`, { code: 'MISSING_ANCESTOR_RESULT', details: { missing: name } });
  }
  return result as T;
}

function configString(step: Step, key: string): string {
  const value = step.handlerConfig[key];
  if (typeof value !== 'string' || value === '') {
    throw new PermanentError(`handler_config.${key} must be a non-empty string`, { code: 'BAD_HANDLER_CONFIG', details: { key } });
  }
  return value;
}

/** Checks an order against the catalogue and computes its lines and total (in cents, so 3 × 0.1 is 0.3). */
export function validateOrder(order: OrderContext, catalog: Readonly<Record<string, Product>> = CATALOG): ValidatedOrder {
  const problems: string[] = [];
  const merged = new Map<string, { quantity: number; priceCents: number }>();
  for (const [i, item] of order.items.entries()) {
    const priceCents = cents(item.price);
    if (!catalog[item.sku]) problems.push(`items[${i}]: unknown SKU ${item.sku}`);
    if (Math.abs(priceCents - item.price * 100) > 1e-6) problems.push(`items[${i}]: price ${item.price} has fractions of a cent`);
    const line = merged.get(item.sku);
    if (line && line.priceCents !== priceCents) problems.push(`items[${i}]: ${item.sku} appears with two prices`);
    merged.set(item.sku, { quantity: (line?.quantity ?? 0) + item.quantity, priceCents });
  }
  const lines = [...merged].map(([sku, { quantity, priceCents }]) => ({
    sku,
    quantity,
    unit_price: fromCents(priceCents),
    line_total: fromCents(priceCents * quantity),
  }));
  const totalCents = lines.reduce((sum, l) => sum + cents(l.line_total), 0);
  if (totalCents === 0 && problems.length === 0) problems.push('the order total is 0');
  if (problems.length > 0) throw new PermanentError(`invalid order ${order.order_id}: ${problems.join('; ')}`, { code: 'INVALID_ORDER', details: { problems } });
  return { order_id: order.order_id, total: fromCents(totalCents), item_count: lines.reduce((n, l) => n + l.quantity, 0), lines };
}

/** The handlers of order_fulfillment, by handler name, serving one warehouse. */
export function orderHandlers(warehouse: Warehouse = new Warehouse()): Record<string, StepHandler> {
  return {
    'ecommerce.validate_order': (step) => validateOrder(step.context as unknown as OrderContext, warehouse.catalog),

    'inventory.reserve': async (step, ctx) => {
      const order = ancestor<ValidatedOrder>(step, 'validate_order');
      const reservation = warehouse.reserve(order);
      for (const [i, line] of reservation.reserved.entries()) {
        await ctx.progress({ reserved: i + 1, of: reservation.reserved.length, sku: line.sku, bin: line.bin });
      }
      return reservation;
    },

    'payments.charge': async (step, ctx) => {
      const order = ancestor<ValidatedOrder>(step, 'validate_order');
      const { method, token } = (step.context as unknown as OrderContext).payment;
      const currency = configString(step, 'currency');
      await ctx.progress({ stage: 'authorizing', amount: order.total, currency });
      if (token === DECLINED_TOKEN) {
        throw new PermanentError(`card declined by the issuer for ${currency} ${order.total.toFixed(2)}`, {
          code: 'CARD_DECLINED',
          details: { order_id: order.order_id, amount: order.total, currency },
        });
      }
      const payment: Payment = { payment_id: idFor('pay', order.order_id, token, cents(order.total)), amount_charged: order.total, currency, method };
      await ctx.progress({ stage: 'captured', payment_id: payment.payment_id });
      return payment;
    },

    'shipping.ship': async (step, ctx) => {
      const order = ancestor<ValidatedOrder>(step, 'validate_order');
      const reservation = ancestor<Reservation>(step, 'reserve_inventory');
      const payment = ancestor<Payment>(step, 'process_payment');
      if (cents(payment.amount_charged) !== cents(order.total)) {
        throw new PermanentError(`charged ${payment.amount_charged} but the order totals ${order.total}`, { code: 'PAYMENT_MISMATCH' });
      }
      const carrier = configString(step, 'carrier');
      const weight = reservation.reserved.reduce((grams, line) => grams + line.quantity * (warehouse.catalog[line.sku]?.weightGrams ?? 0), 0);
      const shipmentId = idFor('shp', reservation.reservation_id, carrier);
      const digits = BigInt(`0x${shipmentId.slice(4)}`).toString().padStart(16, '0').slice(0, 16);
      await ctx.progress({ stage: 'label_printed', carrier, parcels: 1, weight_grams: weight });
      const shipment: Shipment = {
        shipment_id: shipmentId,
        tracking_number: `TSK${digits}`,
        carrier,
        reservation_id: reservation.reservation_id,
        hold_ids: reservation.reserved.map((line) => line.hold_id),
        weight_grams: weight,
      };
      return shipment;
    },

    'notifications.send': (step) => {
      const { customer } = step.context as unknown as OrderContext;
      const order = ancestor<ValidatedOrder>(step, 'validate_order');
      const payment = ancestor<Payment>(step, 'process_payment');
      const shipment = ancestor<Shipment>(step, 'ship_order');
      const channel = configString(step, 'channel');
      const template = configString(step, 'template');
      const body =
        `Hi ${customer.name}, your order ${order.order_id} (${order.item_count} items, ${payment.currency} ${payment.amount_charged.toFixed(2)}) ` +
        `has shipped with ${shipment.carrier}: tracking ${shipment.tracking_number}.`;
      const notification: Notification = {
        message_id: idFor('msg', shipment.shipment_id, channel, template),
        channel,
        template,
        to: customer.email,
        body,
        saw: Object.keys(step.ancestorResults).sort(),
      };
      return notification;
    },
  };
}
