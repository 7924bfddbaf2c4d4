/** The `tasker` executable (bin/tasker.js, `npm start`): runs the CLI and exits with its code. */
import { runCli } from './run.js';

const code = await runCli(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr });
// Exit explicitly (a stray handle must not keep a finished command alive), once stdout has flushed.
process.stdout.write('', () => process.exit(code));
