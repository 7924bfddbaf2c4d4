#!/usr/bin/env node
// Makes sure what `npm start` / `npm test` need is installed, quickly when it already is.
//
//   node scripts/ensure-deps.mjs --node   node_modules present and matching package-lock.json
//                                         (else `npm ci`)                     [prestart]
//   node scripts/ensure-deps.mjs --all    also the system tools the tests use: PostgreSQL
//                                         server binaries, protoc, Ruby with the grpc gem,
//                                         /usr/bin/python3 with grpc and pytest  [pretest]
//
// Missing system tools are installed with apt-get when running as root; otherwise
// the exact command is printed and the script exits 1. Plain Node, no dependencies.
import { spawn, spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const APT_PACKAGES = [
  'postgresql',
  'protobuf-compiler',
  'protobuf-compiler-grpc',
  'libprotobuf-dev',
  'ruby',
  'ruby-grpc',
  'ruby-grpc-tools',
  'ruby-google-protobuf',
  'python3-grpcio',
  'python3-grpc-tools',
  'python3-protobuf',
  'python3-pytest',
];

function log(message) {
  console.log(`ensure-deps: ${message}`);
}

/** Whether the installed tree (npm's hidden lockfile) matches package-lock.json. */
function nodeModulesCurrent() {
  const lockFile = join(ROOT, 'package-lock.json');
  const hiddenFile = join(ROOT, 'node_modules', '.package-lock.json');
  if (!existsSync(hiddenFile)) return false;
  if (!existsSync(lockFile) || statSync(hiddenFile).mtimeMs >= statSync(lockFile).mtimeMs) return true;
  // The lock file is newer (a checkout touches it): compare what it pins with what is installed.
  const wanted = JSON.parse(readFileSync(lockFile, 'utf8')).packages ?? {};
  const installed = JSON.parse(readFileSync(hiddenFile, 'utf8')).packages ?? {};
  return Object.entries(wanted).every(([path, entry]) => {
    if (path === '' || !path.startsWith('node_modules/') || entry.optional || entry.link) return true;
    return installed[path]?.version === entry.version;
  });
}

function ensureNode() {
  if (nodeModulesCurrent()) return;
  log('node_modules is missing or older than package-lock.json: running npm ci');
  const result = spawnSync('npm', ['ci'], { cwd: ROOT, stdio: 'inherit' });
  if (result.status !== 0) {
    console.error('ensure-deps: npm ci failed');
    process.exit(result.status ?? 1);
  }
}

function onPath(command) {
  return (process.env.PATH ?? '').split(delimiter).some((dir) => {
    try {
      accessSync(join(dir, command), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

function postgresInstalled() {
  const base = '/usr/lib/postgresql';
  if (!existsSync(base)) return false;
  return readdirSync(base).some((v) => existsSync(join(base, v, 'bin', 'postgres')) && existsSync(join(base, v, 'bin', 'initdb')));
}

/** Resolves true when `command args` exits 0 (false if it cannot start). */
function succeeds(command, args) {
  return new Promise((resolve) => {
    const child = spawn(command, args, { stdio: 'ignore' });
    child.on('error', () => resolve(false));
    child.on('close', (code) => resolve(code === 0));
  });
}

/** Names of the missing system tools (the probes that start processes run in parallel). */
async function missingSystemTools() {
  const checks = [
    ['PostgreSQL server binaries (/usr/lib/postgresql/*/bin)', Promise.resolve(postgresInstalled())],
    ['protoc', Promise.resolve(onPath('protoc'))],
    ['grpc_tools_ruby_protoc', Promise.resolve(onPath('grpc_tools_ruby_protoc'))],
    ['grpc_python_plugin', Promise.resolve(existsSync('/usr/bin/grpc_python_plugin'))],
    ['ruby with the grpc gem', succeeds('ruby', ['-e', 'require "grpc"; require "google/protobuf"'])],
    ['/usr/bin/python3 with grpc and pytest', succeeds('/usr/bin/python3', ['-c', 'import grpc, google.protobuf, pytest'])],
  ];
  const results = await Promise.all(checks.map(([, ok]) => ok));
  return checks.filter((_, i) => !results[i]).map(([name]) => name);
}

async function ensureSystem() {
  const missing = await missingSystemTools();
  if (missing.length === 0) return;
  const install = `apt-get install -y --no-install-recommends ${APT_PACKAGES.join(' ')}`;
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (!isRoot || !onPath('apt-get')) {
    console.error(`ensure-deps: missing for the tests: ${missing.join(', ')}`);
    console.error(`ensure-deps: install them with:\n  sudo apt-get update && sudo ${install}`);
    process.exit(1);
  }
  log(`missing: ${missing.join(', ')}; installing with apt-get`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  for (const args of [['update'], install.split(' ').slice(1)]) {
    const result = spawnSync('apt-get', args, { stdio: 'inherit', env });
    if (result.status !== 0) {
      console.error(`ensure-deps: apt-get ${args[0]} failed`);
      process.exit(result.status ?? 1);
    }
  }
  const still = await missingSystemTools();
  if (still.length > 0) {
    console.error(`ensure-deps: still missing after apt-get install: ${still.join(', ')}`);
    process.exit(1);
  }
}

const mode = process.argv[2];
if (mode !== '--node' && mode !== '--all') {
  console.error('usage: node scripts/ensure-deps.mjs --node | --all');
  process.exit(64);
}
ensureNode();
if (mode === '--all') await ensureSystem();
