/**
 * The OpenAPI 3 document of the API, generated from the router's route
 * specs: the same zod schemas that validate requests.
 */
import { z } from 'zod';
import type { RouteSpec } from './http.js';

interface RouteInfo {
  method: string;
  pattern: string;
  spec: RouteSpec;
}

const errorSchema = {
  type: 'object',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message'],
      properties: {
        code: {
          type: 'string',
          enum: [
            'not_found',
            'already_exists',
            'already_claimed',
            'conflict',
            'invalid',
            'too_large',
            'locked',
            'config',
            'unsupported',
            'unavailable',
            'unauthenticated',
            'forbidden',
            'rate_limited',
            'internal',
          ],
        },
        message: { type: 'string' },
        details: { type: 'object' },
        fix: { type: 'string' },
      },
    },
  },
};

function jsonSchema(schema: z.ZodType): Record<string, unknown> {
  const out = z.toJSONSchema(schema, {
    target: 'openapi-3.0',
    io: 'input',
    unrepresentable: 'any',
  }) as Record<string, unknown>;
  delete out.$schema;
  return out;
}

export function openApiDocument(
  routes: readonly RouteInfo[],
  info: { title: string; version: string },
): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of routes) {
    const path = r.pattern.replace(/:([A-Za-z_]+)/g, '{$1}');
    const parameters: Record<string, unknown>[] = [];
    for (const m of r.pattern.matchAll(/:([A-Za-z_]+)/g)) {
      parameters.push({ name: m[1], in: 'path', required: true, schema: { type: 'string' } });
    }
    if (r.spec.query) {
      const shape = r.spec.query.shape as Record<string, z.ZodType>;
      for (const [name, s] of Object.entries(shape)) {
        const js = jsonSchema(s);
        parameters.push({
          name,
          in: 'query',
          required: !s.safeParse(undefined).success,
          schema: js,
          ...(s.description ? { description: s.description } : {}),
        });
      }
    }
    if (r.method !== 'GET') {
      parameters.push({
        name: 'Idempotency-Key',
        in: 'header',
        required: false,
        description: 'Retry-safe writes: the same key and request get the first answer again.',
        schema: { type: 'string', maxLength: 255 },
      });
    }
    const op: Record<string, unknown> = {
      summary: r.spec.summary,
      operationId: `${r.method.toLowerCase()}${path
        .replace(/^\/v0/, '')
        .replace(/[{}]/g, '')
        .split(/[/-]/)
        .filter(Boolean)
        .map((p) => p[0]!.toUpperCase() + p.slice(1))
        .join('')}`,
      tags: [r.pattern.split('/')[2] ?? 'misc'],
      description: `Who may call: ${r.spec.who ?? (r.spec.allow ? r.spec.allow.join(', ') : 'any valid key')}.`,
      ...(parameters.length ? { parameters } : {}),
      ...(r.spec.body
        ? {
            requestBody: {
              required: true,
              content: { 'application/json': { schema: jsonSchema(r.spec.body) } },
            },
          }
        : {}),
      responses: {
        '200': r.spec.stream
          ? {
              description: 'Server-sent events; resume with Last-Event-ID.',
              content: { 'text/event-stream': { schema: { type: 'string' } } },
            }
          : { description: 'OK', content: { 'application/json': { schema: { type: 'object' } } } },
        default: {
          description: 'Error',
          content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
        },
      },
    };
    (paths[path] ??= {})[r.method.toLowerCase()] = op;
  }
  return {
    openapi: '3.0.3',
    info: {
      ...info,
      description:
        'Gas City API. Every request carries an API key (Authorization: Bearer). Errors are {"error":{code,message,details}}.',
    },
    servers: [{ url: '/' }],
    security: [{ bearer: [] }],
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
      schemas: { Error: errorSchema },
    },
    paths,
  };
}
