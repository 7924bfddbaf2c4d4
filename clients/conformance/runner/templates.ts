/**
 * Conformance templates: `clients/conformance/templates/*.yaml` are ordinary template
 * documents whose text holds two placeholders, replaced per language before parsing:
 * `${prefix}` (the worker's handler prefix, e.g. `conformance.ruby`, so
 * `${prefix}.echo` → `conformance.ruby.echo`) and `${language}` (used in the
 * namespace, `conformance_${language}`, so the languages' templates never collide).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TemplateDefaults } from '../../../src/domain/template-document.js';
import { parseTemplateYaml } from '../../../src/domain/template-document.js';
import type { TaskTemplate as DomainTaskTemplate } from '../../../src/domain/template.js';
import type { TaskTemplate } from '../../../src/gen/tasker/v1/template.js';
import { templateToProto } from '../../../src/grpc/mappers/template.js';
import type { Language } from './scenario.js';

/** The values substituted into a template's text. */
export interface TemplateBindings {
  readonly prefix: string;
  readonly language: Language;
}

const PLACEHOLDER = /\$\{([^}]*)\}/g;

/** The template text with its placeholders replaced; an unknown placeholder is an error naming it. */
export function bindTemplateText(source: string, bindings: TemplateBindings, file: string): string {
  return source.replace(PLACEHOLDER, (whole, key: string) => {
    if (key === 'prefix') return bindings.prefix;
    if (key === 'language') return bindings.language;
    throw new Error(`conformance template ${file}: unknown placeholder ${whole} (known: \${prefix}, \${language})`);
  });
}

/** A conformance template file bound for one language, parsed and validated (domain form). */
export function loadConformanceTemplate(dir: string, file: string, bindings: TemplateBindings, defaults: TemplateDefaults): DomainTaskTemplate {
  const text = bindTemplateText(readFileSync(join(dir, file), 'utf8'), bindings, file);
  return parseTemplateYaml(text, defaults);
}

/** The same template in wire form, ready for TemplateService.RegisterTemplate. */
export function conformanceTemplateProto(dir: string, file: string, bindings: TemplateBindings, defaults: TemplateDefaults): TaskTemplate {
  return templateToProto(loadConformanceTemplate(dir, file, bindings, defaults));
}
