/**
 * Shell completion: `gc completion bash|zsh|fish` prints a script that asks
 * the hidden `gc __complete <words...>` for the candidates after the words
 * typed so far (subcommands, then options), from the command tree itself,
 * so completion never drifts from the commands.
 */
import type { Command } from 'commander';
import { ValidationError } from '../core/index.js';
import { printLine } from './output.js';

const SCRIPTS: Record<string, (prog: string) => string> = {
  bash: (p) => `# ${p} completion for bash: eval "$(${p} completion bash)"
_${p}_complete() {
  local cur="\${COMP_WORDS[COMP_CWORD]}"
  local IFS=$'\\n'
  COMPREPLY=($(compgen -W "$(${p} __complete "\${COMP_WORDS[@]:1:$((COMP_CWORD-1))}" 2>/dev/null)" -- "$cur"))
}
complete -o default -F _${p}_complete ${p}
`,
  zsh: (p) => `#compdef ${p}
# ${p} completion for zsh: eval "$(${p} completion zsh)"
_${p}() {
  local -a candidates
  candidates=("\${(@f)$(${p} __complete "\${(@)words[2,CURRENT-1]}" 2>/dev/null)}")
  compadd -a candidates
}
compdef _${p} ${p}
`,
  fish: (p) => `# ${p} completion for fish: ${p} completion fish | source
complete -c ${p} -f -a '(${p} __complete (commandline -opc)[2..-1])'
`,
};

/** Candidates after `words`: the subcommands of the deepest command named, then its options. */
export function completions(program: Command, words: readonly string[]): string[] {
  let cmd = program;
  for (const w of words) {
    if (w.startsWith('-')) continue;
    const sub = cmd.commands.find((c) => c.name() === w || c.aliases().includes(w));
    if (sub) cmd = sub;
  }
  const subs = cmd.commands
    .filter((c) => !(c as unknown as { _hidden?: boolean })._hidden)
    .map((c) => c.name());
  const opts = [...cmd.options, ...(cmd === program ? [] : program.options)]
    .filter((o) => !o.hidden)
    .map((o) => o.long ?? o.short ?? '')
    .filter(Boolean);
  return [...subs, ...opts, ...(cmd !== program ? [] : ['--help'])];
}

/** Add `completion <shell>` and the hidden `__complete`. */
export function addCompletion(program: Command, prog: string): void {
  program
    .command('completion <shell>')
    .description('print a shell completion script: bash, zsh or fish')
    .action((shell: string) => {
      const script = SCRIPTS[shell];
      if (!script) {
        throw new ValidationError(`expected bash, zsh or fish, got ${JSON.stringify(shell)}`, {
          where: 'shell',
        });
      }
      process.stdout.write(script(prog));
    });
  program
    .command('__complete [words...]', { hidden: true })
    .allowUnknownOption()
    .helpOption(false)
    .action((words: string[] = []) => {
      for (const c of completions(program, words)) printLine(c);
    });
}
