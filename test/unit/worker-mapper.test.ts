/**
 * Worker reports are checked before they reach a shared transaction, and
 * cancellations cross instances in NOTIFY-sized payloads.
 */
import { randomUUID } from 'node:crypto';
import { describe, expect, test } from 'vitest';
import { decodeCancelPayload, encodeCancelPayloads } from '../../src/engine/worker-hub.js';
import type { StepReport } from '../../src/gen/tasker/v1/worker.js';
import { submissionFromReports } from '../../src/grpc/mappers/worker.js';

const step = randomUUID();
const json = (text: string) => Buffer.from(text, 'utf8');
const report = (kind: StepReport['kind'], extra: Partial<StepReport> = {}): StepReport => ({
  reportId: 1,
  stepId: step,
  attempt: 1,
  kind,
  ...extra,
});
const completed = (bytes: Buffer) => report({ $case: 'completed', value: { resultJson: bytes } });

function refusals(reports: StepReport[], maxBytes = 1024) {
  const s = submissionFromReports({ reports, batches: [] }, maxBytes);
  return { accepted: s.reports.length, refused: s.refused.map((r) => r.reason) };
}

describe('submissionFromReports', () => {
  test.each([
    ['a completion with a JSON result', completed(json('{"a":[1,2]}')), null],
    ['an empty result (JSON null)', completed(Buffer.alloc(0)), null],
    ['a start', report({ $case: 'started', value: {} }), null],
    ['no kind', report(undefined), 'invalid_payload'],
    ['invalid JSON', completed(json('{"a":')), 'invalid_payload'],
    ['invalid UTF-8', completed(Buffer.from([0x22, 0xff, 0x22])), 'invalid_payload'],
    ['a NUL escape PostgreSQL refuses', completed(json('{"k":"a\\u0000"}')), 'invalid_payload'],
    ['progress seq 0', report({ $case: 'progress', value: { seq: 0, payloadJson: json('1') } }), 'invalid_payload'],
    ['a failure without an error', report({ $case: 'failed', value: {} }), 'invalid_payload'],
    ['a payload over the limit', completed(json(JSON.stringify('x'.repeat(2000)))), 'payload_too_large'],
    ['a step id that is not a UUID', report({ $case: 'started', value: {} }, { stepId: 'step-1' }), 'unknown_step'],
    ['attempt 0', report({ $case: 'started', value: {} }, { attempt: 0 }), 'stale_attempt'],
  ])('%s', (_name, r, reason) => {
    expect(refusals([r])).toEqual(reason === null ? { accepted: 1, refused: [] } : { accepted: 0, refused: [reason] });
  });

  test('an escaped backslash before u0000 is an ordinary string', () => {
    expect(refusals([completed(json('"\\\\u0000"'))])).toEqual({ accepted: 1, refused: [] });
  });

  test('failures keep their fields, minus NUL characters, and keep the worker retry delay', () => {
    const s = submissionFromReports(
      {
        reports: [
          report({
            $case: 'failed',
            value: {
              error: { errorClass: 'Boom\0', message: 'bad', backtrace: ['a', 'b'], retryable: true, retryAfterMs: 250, code: 'X', detailsJson: Buffer.alloc(0) },
            },
          }),
        ],
        batches: [{ batchId: 'not-a-uuid', completed: 1, failed: 0 }],
      },
      1024,
    );
    expect(s.reports[0]).toMatchObject({
      reportId: '1',
      kind: 'failed',
      error: { errorClass: 'Boom', message: 'bad', backtrace: ['a', 'b'], retryable: true, retryAfterMs: 250, code: 'X', details: null },
    });
    expect(s.batches).toEqual([]);
  });

  test('a failure keeps its details object; details that are not a JSON object are refused', () => {
    const failed = (detailsJson: Buffer) =>
      report({ $case: 'failed', value: { error: { errorClass: 'E', message: 'm', backtrace: [], retryable: false, code: '', detailsJson } } });
    const s = submissionFromReports({ reports: [failed(json('{"card":{"last4":"4242"},"n":[1,2]}'))], batches: [] }, 1024);
    expect(s.reports[0]).toMatchObject({ kind: 'failed', error: { details: { card: { last4: '4242' }, n: [1, 2] } } });
    expect(refusals([failed(json('[1,2]'))])).toEqual({ accepted: 0, refused: ['invalid_payload'] });
    expect(refusals([failed(json('{"a":'))])).toEqual({ accepted: 0, refused: ['invalid_payload'] });
  });
});

describe('tasker_cancel payloads', () => {
  test('round-trip, split below the NOTIFY limit', () => {
    const steps = Array.from({ length: 300 }, (_, i) => ({ stepId: randomUUID(), attempt: i + 1, sessionId: randomUUID() }));
    const payloads = encodeCancelPayloads(steps, 'stop');
    expect(payloads.length).toBeGreaterThan(1);
    for (const p of payloads) expect(Buffer.byteLength(p)).toBeLessThan(8000);
    const decoded = payloads.map((p) => decodeCancelPayload(p));
    expect(decoded.flatMap((d) => d?.steps ?? [])).toEqual(steps);
    expect(decoded.every((d) => d?.reason === 'stop')).toBe(true);
  });

  test('anything else is not a cancel payload', () => {
    for (const p of ['', 'nope', '{"r":1,"s":[]}', '{"r":"x","s":[["a",1]]}']) expect(decodeCancelPayload(p)).toBeNull();
  });
});
