/**
 * What `gc config validate` (and `gc start`) can check beyond the file
 * itself, before anything runs: every rig path is a git repository with its
 * target branch, every agent's command resolves on its PATH, every prompt
 * template can be read. Each problem is an issue at the key that causes it.
 */
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { errorMessage } from '../core/index.js';
import type { ConfigIssue, LoadedConfig, ValueSource } from '../config/index.js';
import { Git } from '../git/index.js';
import { checkCommand } from '../runtime/index.js';
import { citySpec } from './spec.js';

export interface Preflight {
  errors: ConfigIssue[];
  warnings: ConfigIssue[];
}

function at(loaded: LoadedConfig, key: string, message: string): ConfigIssue {
  const src: ValueSource | undefined = loaded.sources.get(key);
  return {
    file: loaded.file,
    path: key,
    message,
    ...(src?.kind === 'file' ? { line: src.line, col: src.col } : {}),
  };
}

export async function preflight(loaded: LoadedConfig): Promise<Preflight> {
  const errors: ConfigIssue[] = [];
  const warnings: ConfigIssue[] = [];
  const { config, root } = loaded;
  for (const [i, rig] of config.rigs.entries()) {
    const dir = path.resolve(root, rig.path);
    if (!existsSync(dir) || !statSync(dir).isDirectory()) {
      errors.push(at(loaded, `rigs[${i}].path`, `${dir} does not exist (rig ${rig.name})`));
      continue;
    }
    const git = new Git(dir);
    if (!(await isRepo(git))) {
      errors.push(
        at(loaded, `rigs[${i}].path`, `${dir} is not a git repository (rig ${rig.name})`),
      );
      continue;
    }
    if (!(await git.resolve(`refs/heads/${rig.target}`).catch(() => undefined))) {
      warnings.push(
        at(
          loaded,
          `rigs[${i}].target`,
          `branch ${rig.target} does not exist in ${dir} yet: the merge queue needs it`,
        ),
      );
    }
  }
  let spec;
  try {
    spec = citySpec(loaded);
  } catch (e) {
    const where = (e as { details?: { where?: string } }).details?.where ?? '';
    errors.push({ file: loaded.file, path: where, message: errorMessage(e) });
    return { errors, warnings };
  }
  for (const [i, agent] of spec.agents.entries()) {
    const rigOk = !agent.rig || !errors.some((x) => x.path.startsWith('rigs['));
    if (!rigOk) continue;
    try {
      await checkCommand(agent.start);
    } catch (e) {
      const key = config.agent[i]?.start_command !== undefined ? 'start_command' : 'provider';
      errors.push(at(loaded, `agent[${i}].${key}`, `agent ${agent.name}: ${errorMessage(e)}`));
    }
  }
  return { errors, warnings };
}

async function isRepo(git: Git): Promise<boolean> {
  try {
    await git.run(['rev-parse', '--git-dir']);
    return true;
  } catch {
    return false;
  }
}
