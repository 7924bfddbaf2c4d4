/** `tasker workers`: the worker sessions the server knows (AdminService.ListWorkers). */
import { sessionStateToJSON, WorkerSession } from '../../gen/tasker/v1/admin.js';
import { call, CLIENT_OPTIONS, CLIENT_USAGE, connectionFor, createClients } from '../client.js';
import type { CliIo, Command } from '../command.js';
import { COMMON_USAGE, loadCliConfig, parseCommandArgs, println, UsageError } from '../command.js';

const OPTIONS = {
  ...CLIENT_OPTIONS,
  all: { type: 'boolean' },
  namespace: { type: 'string' },
  handler: { type: 'string' },
} as const;

/** One session as a line. */
function formatSession(s: WorkerSession): string {
  const state = sessionStateToJSON(s.state).replace(/^SESSION_STATE_/, '').toLowerCase();
  const seen = s.lastHeartbeatAt?.toISOString() ?? '-';
  return [
    `${s.sessionId}  ${s.workerName} (${s.language} ${s.sdkVersion})  ${state}${s.connected ? `, connected to ${s.serverInstance}` : ', disconnected'}`,
    `  in flight ${s.inFlight}/${s.maxInFlight}, last heartbeat ${seen}`,
    `  handlers: ${s.handlers.join(', ') || '-'}${s.namespaces.length > 0 ? `; namespaces: ${s.namespaces.join(', ')}` : ''}`,
  ].join('\n');
}

/** The `workers` command. */
export const workersCommand: Command = {
  name: 'workers',
  summary: 'list worker sessions with their handlers and steps in flight',
  usage: `Usage: tasker workers [--all] [--namespace ns] [--handler name] [options]

Lists worker sessions, newest first: connected ones and disconnected ones that
can still resume (--all adds expired sessions). Needs a token with the admin role.

Options:
      --all             include expired sessions
      --namespace <ns>  only sessions serving this namespace
      --handler <name>  only sessions declaring this handler
${CLIENT_USAGE}
${COMMON_USAGE}`,
  async run(args: readonly string[], io: CliIo): Promise<number> {
    const { values, positionals } = parseCommandArgs(args, OPTIONS);
    if (values.help) {
      println(io.stdout, this.usage);
      return 0;
    }
    if (positionals.length > 0) throw new UsageError(`workers takes no arguments, got ${positionals.join(' ')}`);
    const config = loadCliConfig(values.config, io);
    const c = createClients(connectionFor(config, values, 'admin'));
    try {
      const res = await call(
        c.admin.listWorkers.bind(c.admin),
        { namespace: values.namespace ?? '', handler: values.handler ?? '', includeExpired: values.all === true },
        c.metadata(),
      );
      if (values.json) {
        for (const s of res.sessions) println(io.stdout, JSON.stringify(WorkerSession.toJSON(s)));
        return 0;
      }
      if (res.sessions.length === 0) println(io.stdout, 'No worker sessions.');
      for (const s of res.sessions) println(io.stdout, formatSession(s));
      return 0;
    } finally {
      c.close();
    }
  },
};
