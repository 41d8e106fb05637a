/**
 * `gc build-image`: write the Docker build context of the agent and
 * controller images (server/image.ts) and, with --build, build them with
 * docker when it is installed.
 */
import path from 'node:path';
import { GcError, startProcess } from '../../core/index.js';
import { cityRoot, type GlobalOptions } from '../context.js';
import { printJson, printLine } from '../output.js';

export interface BuildImageArgs {
  out?: string;
  tag?: string;
  controllerTag?: string;
  cityPath?: string;
  base?: string;
  build?: boolean;
  json?: boolean;
}

export async function buildImage(g: GlobalOptions, o: BuildImageArgs): Promise<void> {
  const root = cityRoot(g);
  const { writeImageContext, gcPackageRoot } = await import('../../server/index.js');
  const { findExecutable } = await import('../../runtime/index.js');
  const ctx = await writeImageContext({
    city: root,
    out: path.resolve(o.out ?? path.join(root, '.gc', 'image')),
    gcRoot: gcPackageRoot(import.meta.dirname),
    cityPath: o.cityPath ?? '/city',
    base: o.base ?? 'node:20-bookworm-slim',
  });
  const tags = {
    agent: o.tag ?? 'gc-agent:latest',
    controller: o.controllerTag ?? 'gc-controller:latest',
  };
  const builds = (['agent', 'controller'] as const).map((role) => [
    'build',
    '-f',
    ctx.dockerfiles[role],
    '-t',
    tags[role],
    ctx.dir,
  ]);
  let built = false;
  if (o.build) {
    const docker = await findExecutable('docker', process.env.PATH ?? '', process.cwd());
    if (!docker) {
      throw new GcError('unavailable', 'docker is not installed here', {
        fix: `the context is written; build it where docker runs: docker ${builds[0]!.join(' ')}`,
      });
    }
    const info = await startProcess(docker, ['info'], { stdio: 'ignore' }).exited;
    if (info.code !== 0) {
      throw new GcError('unavailable', 'docker is installed but no Docker daemon answers', {
        fix: `start the daemon, or build the context elsewhere: docker ${builds[0]!.join(' ')}`,
      });
    }
    for (const args of builds) {
      const exit = await startProcess(docker, args, { stdio: 'inherit' }).exited;
      if (exit.code !== 0) {
        throw new GcError('unavailable', `docker ${args.join(' ')} failed (exit ${exit.code})`);
      }
    }
    built = true;
  }
  const commands = builds.map((b) => `docker ${b.join(' ')}`);
  if (o.json) {
    printJson({ context: ctx.dir, dockerfiles: ctx.dockerfiles, tags, built, commands });
    return;
  }
  printLine(`build context: ${ctx.dir}`);
  printLine(`  agent image:      ${ctx.dockerfiles.agent} -> ${tags.agent}`);
  printLine(`  controller image: ${ctx.dockerfiles.controller} -> ${tags.controller}`);
  if (built) printLine('built both images');
  else {
    printLine('build them with:');
    for (const c of commands) printLine(`  ${c}`);
  }
}
