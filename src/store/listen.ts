/**
 * LISTEN/NOTIFY on PostgreSQL through one dedicated client kept outside the pool
 * (a pooled client would lose its LISTENs when returned). If that connection drops,
 * it is re-opened with jittered exponential backoff and every channel is listened to
 * again. Notifications sent while it was down are lost: consumers keep a polling
 * fallback (DESIGN §5).
 */
import pg from 'pg';
import type { Logger } from 'pino';

const CHANNEL_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/**
 * Channel names are plain lower-case identifiers (at most 63 characters), so that
 * `LISTEN name` and `pg_notify('name', ...)` agree on every backend without quoting rules.
 */
export function assertChannelName(channel: string): void {
  if (!CHANNEL_NAME.test(channel)) {
    throw new RangeError(`invalid notification channel name ${JSON.stringify(channel)}: use [a-z_][a-z0-9_]*, at most 63 characters`);
  }
}

/** Options of {@link PgNotificationListener}. */
export interface PgNotificationListenerOptions {
  /** How to open the dedicated connection (same server and credentials as the pool). */
  readonly clientConfig: pg.ClientConfig;
  readonly logger?: Logger;
  /** First reconnect delay; doubles per failed attempt up to `maxBackoffMs`. Default 100. */
  readonly minBackoffMs?: number;
  /** Default 5000. */
  readonly maxBackoffMs?: number;
}

interface Subscriber {
  readonly onPayload: (payload: string) => void;
}

interface ChannelState {
  readonly callbacks: Set<Subscriber>;
  /** Settles once `LISTEN` for this channel has been issued on the current connection. */
  ready: Promise<void>;
}

/** Owns the dedicated LISTEN connection of one PostgreSQL-backed Database. */
export class PgNotificationListener {
  readonly #options: PgNotificationListenerOptions;
  readonly #channels = new Map<string, ChannelState>();
  #client: pg.Client | null = null;
  #connecting: Promise<pg.Client> | null = null;
  #reconnectTimer: NodeJS.Timeout | null = null;
  #failedAttempts = 0;
  #closed = false;

  constructor(options: PgNotificationListenerOptions) {
    this.#options = options;
  }

  /** Subscribes `onPayload` to `channel`; resolves once LISTEN is active. Returns the unsubscribe function. */
  async listen(channel: string, onPayload: (payload: string) => void): Promise<() => Promise<void>> {
    assertChannelName(channel);
    if (this.#closed) throw new Error('the database has been closed');
    const entry: Subscriber = { onPayload };
    let state = this.#channels.get(channel);
    if (!state) {
      const created: ChannelState = { callbacks: new Set(), ready: Promise.resolve() };
      created.ready = this.#connect().then((client) => this.#listenOn(client, channel));
      this.#channels.set(channel, created);
      state = created;
    }
    state.callbacks.add(entry);
    try {
      await state.ready;
    } catch (err) {
      this.#remove(channel, state, entry);
      throw err;
    }
    let unsubscribed = false;
    return async () => {
      if (unsubscribed) return;
      unsubscribed = true;
      await this.#unsubscribe(channel, entry);
    };
  }

  /** Stops reconnecting and closes the dedicated connection. */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#reconnectTimer) clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = null;
    this.#channels.clear();
    const client = this.#client ?? (await this.#connecting?.catch(() => null)) ?? null;
    this.#client = null;
    if (client) await client.end().catch(() => undefined);
  }

  #remove(channel: string, state: ChannelState, entry: Subscriber): void {
    state.callbacks.delete(entry);
    if (state.callbacks.size === 0 && this.#channels.get(channel) === state) this.#channels.delete(channel);
  }

  async #unsubscribe(channel: string, entry: Subscriber): Promise<void> {
    const state = this.#channels.get(channel);
    if (!state) return;
    this.#remove(channel, state, entry);
    const client = this.#client;
    if (state.callbacks.size === 0 && client && !this.#closed) {
      await client.query(`UNLISTEN ${channel}`).catch((err: unknown) => {
        this.#options.logger?.debug({ err, channel }, 'UNLISTEN failed; the connection is being replaced');
      });
    }
  }

  async #listenOn(client: pg.Client, channel: string): Promise<void> {
    await client.query(`LISTEN ${channel}`);
  }

  #connect(): Promise<pg.Client> {
    if (this.#client) return Promise.resolve(this.#client);
    if (!this.#connecting) {
      this.#connecting = this.#openClient().finally(() => {
        this.#connecting = null;
      });
    }
    return this.#connecting;
  }

  async #openClient(): Promise<pg.Client> {
    const client = new pg.Client(this.#options.clientConfig);
    client.on('notification', (message) => this.#dispatch(message.channel, message.payload ?? ''));
    client.on('error', (err) => this.#onLost(client, err));
    client.on('end', () => this.#onLost(client, null));
    try {
      await client.connect();
    } catch (err) {
      await client.end().catch(() => undefined);
      throw err;
    }
    if (this.#closed) {
      await client.end().catch(() => undefined);
      throw new Error('the database has been closed');
    }
    this.#client = client;
    return client;
  }

  #dispatch(channel: string, payload: string): void {
    const state = this.#channels.get(channel);
    if (!state) return;
    for (const entry of [...state.callbacks]) {
      try {
        entry.onPayload(payload);
      } catch (err) {
        this.#options.logger?.error({ err, channel }, 'notification handler threw');
      }
    }
  }

  #onLost(client: pg.Client, err: Error | null): void {
    if (this.#client !== client) return;
    this.#client = null;
    client.end().catch(() => undefined);
    if (this.#closed) return;
    this.#options.logger?.warn({ err }, 'LISTEN connection lost; reconnecting');
    this.#scheduleReconnect();
  }

  #scheduleReconnect(): void {
    if (this.#closed || this.#reconnectTimer || this.#channels.size === 0) return;
    const min = this.#options.minBackoffMs ?? 100;
    const max = this.#options.maxBackoffMs ?? 5000;
    const ceiling = Math.min(max, min * 2 ** this.#failedAttempts);
    const delay = ceiling / 2 + Math.random() * (ceiling / 2);
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = null;
      void this.#reconnect();
    }, delay);
    this.#reconnectTimer.unref();
  }

  async #reconnect(): Promise<void> {
    if (this.#closed || this.#channels.size === 0) return;
    try {
      const client = await this.#connect();
      for (const channel of [...this.#channels.keys()]) await this.#listenOn(client, channel);
      this.#failedAttempts = 0;
      this.#options.logger?.info({ channels: [...this.#channels.keys()] }, 'LISTEN connection re-established');
    } catch (err) {
      this.#failedAttempts += 1;
      this.#options.logger?.warn({ err, attempt: this.#failedAttempts }, 'LISTEN reconnect failed');
      const client = this.#client;
      this.#client = null;
      await client?.end().catch(() => undefined);
      this.#scheduleReconnect();
    }
  }
}
