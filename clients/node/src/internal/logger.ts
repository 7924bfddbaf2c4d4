/**
 * The logger the SDK writes to: pino-shaped (`logger.info(fields, message)`), so a
 * pino logger can be passed as is; `console` works too.
 */

/** A logger method: structured fields first, then the message. */
export type LogFn = (fields: Record<string, unknown>, message?: string) => void;

/** What the SDK logs to. */
export interface Logger {
  debug: LogFn;
  info: LogFn;
  warn: LogFn;
  error: LogFn;
}

const noop: LogFn = () => undefined;

/**
 * The default logger: warnings and errors on stderr (through `console`), nothing
 * else. Pass `logger` to see more, or a silent logger to see nothing.
 */
export const defaultLogger: Logger = {
  debug: noop,
  info: noop,
  warn: (fields, message) => console.warn(`[tasker] ${message ?? ''}`, fields),
  error: (fields, message) => console.error(`[tasker] ${message ?? ''}`, fields),
};

/** A logger that drops everything. */
export const silentLogger: Logger = { debug: noop, info: noop, warn: noop, error: noop };

/** `logger` with `fields` merged into every call (the step's ids for `ctx.log`). */
export function withFields(logger: Logger, fields: Record<string, unknown>): Logger {
  const wrap =
    (fn: LogFn): LogFn =>
    (more, message) =>
      fn.call(logger, { ...fields, ...more }, message);
  return { debug: wrap(logger.debug), info: wrap(logger.info), warn: wrap(logger.warn), error: wrap(logger.error) };
}
