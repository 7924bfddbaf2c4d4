/**
 * gRPC server reflection (v1 and v1alpha, package @grpc/reflection), built from the
 * proto files in `proto/` plus the health and reflection protos, so stock tools can
 * `list` the services and `describe` every message.
 */
import { readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import * as protoLoader from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import { protoPath as healthProtoPath } from 'grpc-health-check';
import { protoDir } from '../config/paths.js';

/** Fully-qualified names of the reflection services themselves. */
export const REFLECTION_SERVICE_NAMES = ['grpc.reflection.v1.ServerReflection', 'grpc.reflection.v1alpha.ServerReflection'];

function protoFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.proto'))
    .map((f) => f.split('\\').join('/'))
    .sort();
}

function reflectionProtoDir(): string {
  const entry = createRequire(import.meta.url).resolve('@grpc/reflection');
  // build/src/index.js -> build/proto
  return join(dirname(entry), '..', 'proto');
}

/**
 * The reflection service. `serviceNames` are the services `list` shows (the ones
 * actually registered); every message and enum of every loaded file can be described.
 */
export function createReflection(serviceNames: readonly string[]): ReflectionService {
  const healthDir = join(dirname(healthProtoPath), '..', '..');
  const reflectionDir = reflectionProtoDir();
  const files = [
    ...protoFiles(protoDir),
    relative(healthDir, healthProtoPath).split('\\').join('/'),
    'grpc/reflection/v1/reflection.proto',
    'grpc/reflection/v1alpha/reflection.proto',
  ];
  const definition = protoLoader.loadSync(files, {
    includeDirs: [protoDir, healthDir, reflectionDir],
    keepCase: true,
  });
  return new ReflectionService(definition, { services: [...serviceNames, ...REFLECTION_SERVICE_NAMES] });
}
