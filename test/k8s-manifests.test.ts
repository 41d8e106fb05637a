/**
 * deploy/k8s: every manifest parses, names a kind of the Kubernetes API
 * and uses only fields its type has (checked against the API types of
 * @kubernetes/client-node); the RBAC grants nothing beyond pods, pods/exec
 * and pods/log in the namespace.
 */
// Manifests are untyped YAML documents: read loosely on purpose.
/* eslint-disable @typescript-eslint/no-unsafe-member-access, @typescript-eslint/no-unsafe-assignment, @typescript-eslint/no-unsafe-argument, @typescript-eslint/no-unsafe-call, @typescript-eslint/no-unsafe-return */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';

const DIR = path.resolve(import.meta.dirname, '..', 'deploy', 'k8s');
type Obj = Record<string, unknown>;
type AttrMap = { name: string; baseName: string; type: string }[];
type Model = { getAttributeTypeMap(): AttrMap };

const KINDS: Record<string, string> = {
  Namespace: 'V1Namespace',
  ServiceAccount: 'V1ServiceAccount',
  Role: 'V1Role',
  RoleBinding: 'V1RoleBinding',
  Secret: 'V1Secret',
  StatefulSet: 'V1StatefulSet',
  Service: 'V1Service',
  Deployment: 'V1Deployment',
  NetworkPolicy: 'V1NetworkPolicy',
};

const PRIMITIVE = new Set(['string', 'number', 'boolean', 'Date', 'any', 'object', 'IntOrString']);

/** Every key of `value` is a field of `type`, all the way down; the paths that are not. */
function unknownFields(value: unknown, type: string, at: string): string[] {
  if (value === null || value === undefined) return [];
  const arr = /^Array<(.+)>$/.exec(type);
  if (arr) {
    if (!Array.isArray(value)) return [`${at}: expected a list`];
    return value.flatMap((v, i) => unknownFields(v, arr[1]!, `${at}[${i}]`));
  }
  const map = /^\{ \[key: string\]: (.+); \}$/.exec(type);
  if (map) {
    return Object.entries(value as Obj).flatMap(([k, v]) =>
      unknownFields(v, map[1]!, `${at}.${k}`),
    );
  }
  if (PRIMITIVE.has(type)) return [];
  const model = (k8s as unknown as Record<string, Model | undefined>)[type];
  if (!model?.getAttributeTypeMap) return [];
  if (typeof value !== 'object' || Array.isArray(value)) return [`${at}: expected an object`];
  const attrs = new Map(model.getAttributeTypeMap().map((a) => [a.baseName, a.type]));
  return Object.entries(value as Obj).flatMap(([k, v]) =>
    attrs.has(k)
      ? unknownFields(v, attrs.get(k)!, `${at}.${k}`)
      : [`${at}.${k}: no such field in ${type}`],
  );
}

const docs = readdirSync(DIR)
  .filter((f) => f.endsWith('.yaml'))
  .sort()
  .flatMap((f) =>
    (k8s.loadAllYaml(readFileSync(path.join(DIR, f), 'utf8')) as Obj[]).map((doc) => ({ f, doc })),
  );

const ofKind = (kind: string) => docs.filter((d) => d.doc.kind === kind).map((d) => d.doc as any); // eslint-disable-line @typescript-eslint/no-explicit-any

describe('deploy/k8s manifests', () => {
  it('parse, and every kind and field exists in the Kubernetes API types', () => {
    expect(docs.length).toBeGreaterThanOrEqual(10);
    const problems: string[] = [];
    for (const { f, doc } of docs) {
      const type = KINDS[doc.kind as string];
      if (!type) {
        problems.push(`${f}: unexpected kind ${String(doc.kind)}`);
        continue;
      }
      problems.push(...unknownFields(doc, type, `${f}:${String(doc.kind)}`));
      if (doc.kind !== 'Namespace') {
        expect((doc.metadata as Obj).namespace, `${f} ${String(doc.kind)}`).toBe('gc');
      }
    }
    expect(problems).toEqual([]);
    // The checker itself finds a field that is not there.
    expect(unknownFields({ spec: { replicaz: 2 } }, 'V1Deployment', 'x')).toEqual([
      'x.spec.replicaz: no such field in V1DeploymentSpec',
    ]);
  });

  it('RBAC: pods, pods/exec and pods/log in the namespace, nothing more', () => {
    expect(ofKind('ClusterRole')).toEqual([]);
    expect(ofKind('ClusterRoleBinding')).toEqual([]);
    const allowed: Record<string, string[]> = {
      pods: ['create', 'delete', 'get', 'list', 'watch'],
      'pods/exec': ['create', 'get'],
      'pods/log': ['get'],
    };
    const roles = ofKind('Role');
    expect(roles).toHaveLength(1);
    for (const rule of roles[0].rules) {
      expect(rule.apiGroups).toEqual(['']);
      for (const r of rule.resources) {
        expect(Object.keys(allowed)).toContain(r);
        for (const v of rule.verbs) expect(allowed[r]).toContain(v);
      }
    }
    const agentSa = ofKind('ServiceAccount').find((s) => s.metadata.name === 'gc-agent');
    expect(agentSa.automountServiceAccountToken).toBe(false);
    const binding = ofKind('RoleBinding')[0];
    expect(binding.subjects).toEqual([
      { kind: 'ServiceAccount', name: 'gc-city', namespace: 'gc' },
    ]);
  });

  it('the city: two replicas on the database, secrets by reference; agents reach only the API', () => {
    const [city] = ofKind('Deployment');
    expect(city.spec.replicas).toBe(2);
    const c = city.spec.template.spec.containers[0];
    const env = new Map(c.env.map((e: Obj) => [e.name, e]));
    expect(env.get('GC_DATABASE_URL')).toMatchObject({
      valueFrom: { secretKeyRef: { name: 'gc-database' } },
    });
    expect(env.get('GC_SESSION')).toMatchObject({ value: 'k8s' });
    expect(city.spec.template.spec.serviceAccountName).toBe('gc-city');
    const [pg] = ofKind('StatefulSet');
    expect(pg.spec.volumeClaimTemplates[0].spec.resources.requests.storage).toBeTruthy();
    const [np] = ofKind('NetworkPolicy');
    expect(np.spec.podSelector.matchLabels).toEqual({ app: 'gc-agent' });
    expect(np.spec.ingress).toEqual([]);
    const apiPort = c.ports.find((p: Obj) => p.name === 'api').containerPort;
    expect(np.spec.egress[0]).toEqual({
      to: [{ podSelector: { matchLabels: { app: 'gc-city' } } }],
      ports: [{ protocol: 'TCP', port: apiPort }],
    });
    // Beyond the API only DNS.
    for (const rule of np.spec.egress.slice(1)) {
      for (const p of rule.ports) expect(p.port).toBe(53);
    }
  });
});
