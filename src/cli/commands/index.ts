/**
 * The command registry: `tasker <name>` runs the command with that name. A new
 * command is one file in this directory plus one entry here; order is help order.
 */
import type { Command } from '../command.js';
import { configCommand } from './config.js';
import { migrateCommand } from './migrate.js';
import { serveCommand } from './serve.js';
import { stepCommand } from './step.js';
import { taskCommand } from './task.js';
import { templateCommand } from './template.js';
import { workersCommand } from './workers.js';

/** Every command, in the order `tasker --help` lists them. */
export const commands: readonly Command[] = [
  serveCommand,
  migrateCommand,
  configCommand,
  templateCommand,
  taskCommand,
  stepCommand,
  workersCommand,
];

/** The command run when none is named. */
export const DEFAULT_COMMAND = 'serve';
