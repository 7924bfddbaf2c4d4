/**
 * Resolving template references on both backends when several instances share the
 * database: a stored version resolves to the same template every time, the latest
 * version follows registrations made by another instance, and a version that is not
 * there yet is found once it is registered.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { TemplateRegistry } from '../../src/engine/template-registry.js';
import { backends } from '../support/databases.js';
import type { Harness } from './engine-fixtures.js';
import { createHarness, tmpl } from './engine-fixtures.js';

describe.each(backends)('template resolution on $name', (backend) => {
  let h: Harness;
  let other: TemplateRegistry;

  beforeAll(async () => {
    h = await createHarness(backend);
    other = new TemplateRegistry({ db: h.t.database.db, clock: h.clock });
  });
  afterAll(async () => {
    await h?.close();
  });

  test('an exact version resolves to its stored template on every call', async () => {
    const registered = await h.registry.register(tmpl('exact', [['a'], ['b', ['a']]]));
    const first = await h.registry.resolve({ namespace: 'test', name: 'exact', version: '1.0.0' });
    const again = await h.registry.resolve({ namespace: 'test', name: 'exact', version: ' 1.0.0 ' });
    expect(first.id).toBe(registered.id);
    expect(again).toBe(first);
    expect(first.template.steps.map((s) => s.name)).toEqual(['a', 'b']);
    await expect(other.register({ ...tmpl('exact', [['a']]) })).rejects.toMatchObject({ code: 'TEMPLATE_VERSION_CONFLICT' });
    expect((await h.registry.resolve({ namespace: 'test', name: 'exact', version: '1.0.0' })).template.steps).toHaveLength(2);
  });

  test('the latest version follows a newer version registered by another instance', async () => {
    await h.registry.register(tmpl('latest', [['a']]));
    expect((await h.registry.resolve({ namespace: 'test', name: 'latest' })).template.version).toBe('1.0.0');
    await other.register({ ...tmpl('latest', [['a'], ['b']]), version: '1.1.0' });
    const latest = await h.registry.resolve({ namespace: 'test', name: 'latest' });
    expect(latest.template.version).toBe('1.1.0');
    expect(latest.template.steps).toHaveLength(2);
    const { task } = await h.manager.createTask({ template: { namespace: 'test', name: 'latest' } });
    expect(task.version).toBe('1.1.0');
  });

  test('a version not registered yet is found once another instance registers it', async () => {
    await h.registry.register(tmpl('later', [['a']]));
    await expect(h.registry.resolve({ namespace: 'test', name: 'later', version: '2.0.0' })).rejects.toMatchObject({
      code: 'TEMPLATE_NOT_FOUND',
    });
    await other.register({ ...tmpl('later', [['a']]), version: '2.0.0' });
    expect((await h.registry.resolve({ namespace: 'test', name: 'later', version: '2.0.0' })).template.version).toBe('2.0.0');
  });
});
