import type { Argument, Command, Option } from 'commander';

/**
 * Shell completion scripts generated from the commander program itself, so a
 * new subcommand or flag is completed without anyone editing a script.
 * Tenant ids, key family names, features and tiers are the dynamic values: the
 * scripts ask `tenantctl __complete tenants|families|features|tiers`, which reads
 * only the tenants directory (its `tiers.yaml` for features and tiers) and the
 * configuration (no registry, no Redis), so a TAB stays fast.
 */

/** What completes a value: a fixed list, the file system, or the project. */
export type ValueKind =
  | { kind: 'none' }
  | { kind: 'choices'; choices: string[] }
  | { kind: 'dir' }
  | { kind: 'file' }
  | { kind: 'dynamic'; source: DynamicSource }
  | { kind: 'commands' };

/** The values `tenantctl __complete <source>` prints, one per line. */
export const DYNAMIC_SOURCES = ['tenants', 'families', 'features', 'tiers'] as const;
export type DynamicSource = (typeof DYNAMIC_SOURCES)[number];

export interface CompletionOption {
  /** Every spelling: `-y`, `--yes`. */
  names: string[];
  description: string;
  takesValue: boolean;
  value: ValueKind;
}

export interface CompletionArgument {
  name: string;
  variadic: boolean;
  value: ValueKind;
}

export interface CompletionCommand {
  name: string;
  description: string;
  options: CompletionOption[];
  arguments: CompletionArgument[];
}

export interface CompletionSpec {
  program: string;
  globalOptions: CompletionOption[];
  commands: CompletionCommand[];
}

/** The hidden subcommand the scripts call for dynamic values. */
export const COMPLETE_COMMAND = '__complete';

/**
 * Arguments and option values completed from the project, by their name in
 * the program (`<tenant>`, `[ids...]`, `<business>`: a business id is the
 * tenant id; `--family <name>`; `<feature>`, `--tier <tier>`).
 */
const DYNAMIC_BY_NAME: Record<string, DynamicSource> = {
  tenant: 'tenants', tenants: 'tenants', ids: 'tenants', business: 'tenants', family: 'families', feature: 'features', tier: 'tiers',
};
/** Option values completed from the file system, by their placeholder (`--tenants-dir <dir>`; `--registry <where>` may be a directory). */
const PATH_BY_PLACEHOLDER: Record<string, 'dir' | 'file'> = { dir: 'dir', where: 'dir', file: 'file' };

function optionValue(option: Option): ValueKind {
  if (option.argChoices?.length) return { kind: 'choices', choices: [...option.argChoices] };
  const dynamic = DYNAMIC_BY_NAME[option.attributeName()];
  if (dynamic) return { kind: 'dynamic', source: dynamic };
  const placeholder = /[<[]([\w-]+)(?:\.\.\.)?[>\]]/.exec(option.flags)?.[1];
  const p = placeholder ? PATH_BY_PLACEHOLDER[placeholder] : undefined;
  return p ? { kind: p } : { kind: 'none' };
}

function describeOption(option: Option): CompletionOption {
  return {
    names: [option.short, option.long].filter((n): n is string => !!n),
    description: option.description,
    takesValue: option.required || option.optional,
    value: optionValue(option),
  };
}

function describeArgument(arg: Argument, command: Command): CompletionArgument {
  let value: ValueKind = { kind: 'none' };
  if (arg.argChoices?.length) value = { kind: 'choices', choices: [...arg.argChoices] };
  else if (DYNAMIC_BY_NAME[arg.name()]) value = { kind: 'dynamic', source: DYNAMIC_BY_NAME[arg.name()] };
  else if (command.name() === 'help' && arg.name() === 'command') value = { kind: 'commands' };
  return { name: arg.name(), variadic: arg.variadic, value };
}

/** The visible commands, options and arguments of the program (hidden ones stay out, as in --help). */
export function describeProgram(program: Command): CompletionSpec {
  const help = program.createHelp();
  return {
    program: program.name(),
    globalOptions: help.visibleOptions(program).map(describeOption),
    commands: help.visibleCommands(program).map((cmd) => ({
      name: cmd.name(),
      description: cmd.description(),
      options: help.visibleOptions(cmd).map(describeOption),
      arguments: cmd.registeredArguments.map((a) => describeArgument(a, cmd)),
    })),
  };
}

/** A shell function name made of the program name. */
const fn = (spec: CompletionSpec, suffix = '') => `_${spec.program.replace(/[^A-Za-z0-9_]/g, '_')}${suffix}`;
/** Words safe to print unquoted in a script: option names, command names, choices. */
const word = (w: string) => {
  if (!/^[A-Za-z0-9_.:,=+\/-]+$/.test(w)) throw new Error(`completion: "${w}" is not a plain word`);
  return w;
};
const singleQuoted = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
const oneLine = (s: string) => s.replace(/\s+/g, ' ').trim();

/**
 * A subcommand's options followed by the program's (commander reads those
 * after the subcommand too), each name once: the subcommand's own -h/--help wins.
 */
function withGlobals(spec: CompletionSpec, command: CompletionCommand): CompletionOption[] {
  const own = new Set(command.options.flatMap((o) => o.names));
  return [...command.options, ...spec.globalOptions.filter((o) => !o.names.some((n) => own.has(n)))];
}

function valueOptions(options: CompletionOption[]): string[] {
  return options.filter((o) => o.takesValue).flatMap((o) => o.names);
}

// ---------------------------------------------------------------- bash

/** bash: `COMPREPLY` from `compgen`, value kinds by the option before the cursor, tenant ids from `__complete`. */
export function bashScript(spec: CompletionSpec): string {
  const f = fn(spec);
  const commands = spec.commands.map((c) => word(c.name));
  const globalWords = spec.globalOptions.flatMap((o) => o.names.map(word));
  const valueCase = (options: CompletionOption[], indent: string) =>
    options
      .filter((o) => o.takesValue)
      .map((o) => `${indent}${o.names.map(word).join('|')}) ${bashValue(o.value, f)}; return 0 ;;`)
      .join('\n');
  const takesValueCase = spec.commands
    .filter((c) => valueOptions(c.options).length)
    .map((c) => `    ${word(c.name)}) case "$2" in ${valueOptions(c.options).map(word).join('|')}) return 0 ;; esac ;;`)
    .join('\n');
  const commandValues = spec.commands
    .filter((c) => c.options.some((o) => o.takesValue))
    .map((c) => `    ${word(c.name)})\n      case "$2" in\n${valueCase(c.options, '        ')}\n      esac ;;`)
    .join('\n');
  // A subcommand's own options; the program's are offered after it too (commander reads them anywhere).
  const globalNames = new Set(globalWords);
  const commandOptions = spec.commands
    .map((c) => ({ c, own: c.options.flatMap((o) => o.names).filter((n) => !globalNames.has(n)) }))
    .filter(({ own }) => own.length)
    .map(({ c, own }) => `      ${word(c.name)}) opts="${own.map(word).join(' ')}" ;;`)
    .join('\n');
  const argumentCases = spec.commands
    .filter((c) => c.arguments.some((a) => a.value.kind !== 'none'))
    .map((c) => {
      const tests = c.arguments.flatMap((a, i) =>
        a.value.kind === 'none' ? [] : [`      if (( $2 ${a.variadic ? '>=' : '=='} ${i} )); then ${bashValue(a.value, f)}; return 0; fi`],
      );
      return `    ${word(c.name)})\n${tests.join('\n')}\n      ;;`;
    })
    .join('\n');

  return `# bash completion for ${spec.program}, generated by \`${spec.program} completion bash\` from the program itself.
# Load it in this shell:   source <(${spec.program} completion bash)
# or for every shell:      ${spec.program} completion bash > ~/.local/share/bash-completion/completions/${spec.program}

${f}_commands="${commands.join(' ')}"
${f}_global_options="${globalWords.join(' ')}"

# A word as typed (COMP_WORDS keeps its quotes, backslashes and ~) as bash would pass it on:
# quotes and backslashes taken out, a leading ~ or ~/ made $HOME. No eval: nothing on the line is run.
${f}_word_value() {
  local w="$1" out="" c q="" i
  # After "=" (--tenants-dir=~/x) bash leaves the ~ as it is: so does this ($2 set).
  if [[ -z "$2" && ( "$w" == "~" || "$w" == "~/"* ) ]]; then out="$HOME"; w="\${w:1}"; fi
  for ((i = 0; i < \${#w}; i++)); do
    c="\${w:i:1}"
    if [[ "$q" == "'" ]]; then
      if [[ "$c" == "'" ]]; then q=""; else out+="$c"; fi
    elif [[ "$q" == '"' ]]; then
      if [[ "$c" == '"' ]]; then q=""
      elif [[ "$c" == '\\' && "\${w:i+1:1}" == [\\\\\\\"\\$\\\`] ]]; then i=$((i + 1)); out+="\${w:i:1}"
      else out+="$c"; fi
    elif [[ "$c" == "'" || "$c" == '"' ]]; then q="$c"
    elif [[ "$c" == '\\' ]]; then i=$((i + 1)); out+="\${w:i:1}"
    else out+="$c"; fi
  done
  printf '%s' "$out"
}

# Dynamic values (tenant ids, key families, features, tiers) from the project: the tenants
# directory and the configuration only, never the registry or Redis. A --tenants-dir on
# the line being completed is passed on (bash splits --tenants-dir=DIR at the "="), as bash
# would pass it (~, quotes and backslashes read).
${f}_dynamic() {
  local i args=()
  for ((i = 1; i < \${#COMP_WORDS[@]} - 1; i++)); do
    if [[ "\${COMP_WORDS[i]}" == --tenants-dir ]]; then
      if [[ "\${COMP_WORDS[i+1]}" == "=" ]]; then args=(--tenants-dir "$(${f}_word_value "\${COMP_WORDS[i+2]}" after-equals)")
      else args=(--tenants-dir "$(${f}_word_value "\${COMP_WORDS[i+1]}")"); fi
    fi
  done
  "\${COMP_WORDS[0]}" "\${args[@]}" ${COMPLETE_COMMAND} "$1" 2>/dev/null
}

# Options that take a value (so the next word is that value, not an argument): $1 command, $2 option.
${f}_takes_value() {
  case "$2" in ${valueOptions(spec.globalOptions).map(word).join('|')}) return 0 ;; esac
  case "$1" in
${takesValueCase}
  esac
  return 1
}

# COMPREPLY for the value of option $2 of command $1.
${f}_option_value() {
  local cur="$3"
  case "$1" in
${commandValues}
  esac
  case "$2" in
${valueCase(spec.globalOptions, '    ')}
  esac
  return 0
}

# COMPREPLY for positional argument number $2 (from 0) of command $1.
${f}_argument() {
  local cur="$3"
  case "$1" in
${argumentCases}
  esac
  return 0
}

${f}() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" prev="" cmd="" npos=0 i w opts=""
  (( COMP_CWORD > 0 )) && prev="\${COMP_WORDS[COMP_CWORD-1]}"
  # --opt=value: bash splits it at "=" (COMP_WORDBREAKS).
  if [[ "$cur" == "=" ]]; then cur=""; elif [[ "$prev" == "=" && COMP_CWORD -gt 1 ]]; then prev="\${COMP_WORDS[COMP_CWORD-2]}"; fi
  COMPREPLY=()
  # The subcommand is the first word that is neither an option nor an option's value.
  for ((i = 1; i < COMP_CWORD; i++)); do
    w="\${COMP_WORDS[i]}"
    case "$w" in
      -*) if ${f}_takes_value "$cmd" "$w"; then
            if [[ "\${COMP_WORDS[i+1]}" == "=" ]]; then i=$((i + 2)); else i=$((i + 1)); fi
          fi ;;
      =) ;;
      *) if [[ -z "$cmd" ]]; then cmd="$w"; else npos=$((npos + 1)); fi ;;
    esac
  done
  # Right after an option that takes a value: its values.
  if [[ "$prev" == -* && ( "$cur" != -* || -z "$cur" ) ]] && ${f}_takes_value "$cmd" "$prev"; then
    ${f}_option_value "$cmd" "$prev" "$cur"
    return 0
  fi
  if [[ -z "$cmd" ]]; then
    if [[ "$cur" == -* ]]; then COMPREPLY=($(compgen -W "\$${f}_global_options" -- "$cur"))
    else COMPREPLY=($(compgen -W "\$${f}_commands" -- "$cur")); fi
    return 0
  fi
  if [[ "$cur" == -* ]]; then
    case "$cmd" in
${commandOptions}
    esac
    COMPREPLY=($(compgen -W "$opts \$${f}_global_options" -- "$cur"))
    return 0
  fi
  ${f}_argument "$cmd" "$npos" "$cur"
}

complete -F ${f} ${spec.program}
`;
}

function bashValue(value: ValueKind, f: string): string {
  switch (value.kind) {
    case 'choices':
      return `COMPREPLY=($(compgen -W "${value.choices.map(word).join(' ')}" -- "$cur"))`;
    case 'dir':
      return 'compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -d -- "$cur"))';
    case 'file':
      return 'compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -f -- "$cur"))';
    case 'dynamic':
      return `COMPREPLY=($(compgen -W "$(${f}_dynamic ${value.source})" -- "$cur"))`;
    case 'commands':
      return `COMPREPLY=($(compgen -W "\$${f}_commands" -- "$cur"))`;
    case 'none':
      return ':';
  }
}

// ---------------------------------------------------------------- zsh

/** Text inside `'...'` of an `_arguments` spec's `[description]`. */
const zshDescription = (s: string) => oneLine(s).replace(/\\/g, '\\\\').replace(/\[/g, '\\[').replace(/\]/g, '\\]').replace(/'/g, `'\\''`);

function zshAction(value: ValueKind, f: string): string {
  switch (value.kind) {
    case 'choices':
      return `(${value.choices.map(word).join(' ')})`;
    case 'dir':
      return '_files -/';
    case 'file':
      return '_files';
    case 'dynamic':
      return `${f}_dynamic ${value.source}`;
    case 'commands':
      return `${f}_commands`;
    case 'none':
      return ' ';
  }
}

function zshOptionSpecs(options: CompletionOption[], f: string): string[] {
  return options.flatMap((o) => {
    const description = zshDescription(o.description);
    const placeholder = o.names[o.names.length - 1].replace(/^-+/, '');
    return o.names.map((n) => {
      const name = word(n);
      if (!o.takesValue) return `'${name}[${description}]'`;
      // `--opt=`: the value may follow as the next word or after "=", as commander reads it.
      const spelled = name.startsWith('--') ? `${name}=` : `${name}+`;
      return `'${spelled}[${description}]:${placeholder}:${zshAction(o.value, f).replace(/'/g, `'\\''`)}'`;
    });
  });
}

function zshArgumentSpecs(args: CompletionArgument[], f: string): string[] {
  return args.map((a, i) => `'${a.variadic ? '*' : i + 1}:${word(a.name)}:${zshAction(a.value, f)}'`);
}

/** zsh: native `_arguments` specs with descriptions; loads with `compdef` or from `$fpath`. */
export function zshScript(spec: CompletionSpec): string {
  const f = fn(spec);
  const globals = zshOptionSpecs(spec.globalOptions, f);
  const commandList = spec.commands.map((c) => `    ${singleQuoted(`${word(c.name)}:${oneLine(c.description)}`)}`).join('\n');
  const cases = spec.commands
    .map((c) => {
      const specs = [...zshOptionSpecs(withGlobals(spec, c), f), ...zshArgumentSpecs(c.arguments, f)];
      return `    ${word(c.name)})\n      _arguments -s : \\\n        ${specs.join(' \\\n        ')} && ret=0 ;;`;
    })
    .join('\n');
  return `#compdef ${spec.program}
# zsh completion for ${spec.program}, generated by \`${spec.program} completion zsh\` from the program itself.
# Load it in this shell:   source <(${spec.program} completion zsh)
# or for every shell:      ${spec.program} completion zsh > "\${fpath[1]}/_${spec.program}"

${f}_commands() {
  local -a commands
  commands=(
${commandList}
  )
  _describe -t commands '${spec.program} command' commands
}

# A word as typed (the line keeps its quotes, backslashes and ~) as zsh would pass it on:
# one level of quoting taken out, a leading ~ or ~/ made $HOME. No eval.
${f}_word_value() {
  local w=$1
  # After "=" (--tenants-dir=~/x) zsh leaves the ~ as it is: so does this ($2 set).
  if [[ -z $2 && ( $w == '~' || $w == '~/'* ) ]]; then print -rn -- "$HOME\${(Q)w[2,-1]}"; else print -rn -- "\${(Q)w}"; fi
}

# Dynamic values (tenant ids, key families, features, tiers) from the project: the tenants
# directory and the configuration only, never the registry or Redis.
${f}_dynamic() {
  local -a values args
  local i
  for (( i = 1; i < \${#${f}_words}; i++ )); do
    [[ \${${f}_words[i]} == --tenants-dir ]] && args=(--tenants-dir "$(${f}_word_value "\${${f}_words[i+1]}")")
    [[ \${${f}_words[i]} == --tenants-dir=* ]] && args=(--tenants-dir "$(${f}_word_value "\${\${${f}_words[i]}#--tenants-dir=}" after-equals)")
  done
  values=(\${(f)"$(_call_program $1 \${(q)${f}_words[1]} \${(q)args} ${COMPLETE_COMMAND} $1 2>/dev/null)"})
  _describe -t $1 $1 values
}

${f}() {
  local curcontext="$curcontext" state state_descr line ret=1
  typeset -A opt_args
  local -a ${f}_words
  ${f}_words=("\${words[@]}")
  _arguments -C -s : \\
    ${globals.join(' \\\n    ')} \\
    '1: :${f}_commands' '*:: :->args' && ret=0
  case $state in
    args)
      curcontext="\${curcontext%:*:*}:${spec.program}-\${words[1]}:"
      case \${words[1]} in
${cases}
      esac ;;
  esac
  return ret
}

if [[ "\${funcstack[1]}" == "${f}" ]]; then
  # autoloaded from $fpath
  ${f} "$@"
else
  compdef ${f} ${spec.program}
fi
`;
}

// ---------------------------------------------------------------- fish

const fishQuoted = (s: string) => `'${oneLine(s).replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;

function fishValue(value: ValueKind, f: string, commandNames: string): string {
  switch (value.kind) {
    case 'choices':
      return ` -x -a ${fishQuoted(value.choices.map(word).join(' '))}`;
    case 'dir':
      return ` -x -a '(__fish_complete_directories)'`;
    case 'file':
      return ' -r -F';
    case 'dynamic':
      return ` -x -a '(${f}_dynamic ${value.source})'`;
    case 'commands':
      return ` -x -a ${fishQuoted(commandNames)}`;
    case 'none':
      return ' -x';
  }
}

function fishOption(o: CompletionOption, condition: string | undefined, program: string, f: string, commandNames: string): string {
  const names = o.names.map((n) => (n.startsWith('--') ? `-l ${word(n.slice(2))}` : `-s ${word(n.slice(1))}`)).join(' ');
  const cond = condition ? ` -n ${fishQuoted(condition)}` : '';
  return `complete -c ${program}${cond} ${names}${o.takesValue ? fishValue(o.value, f, commandNames) : ''} -d ${fishQuoted(o.description)}`;
}

/** fish: `complete` lines, conditions on the subcommand seen so far. */
export function fishScript(spec: CompletionSpec): string {
  const f = fn(spec).replace(/^_/, '__');
  const names = spec.commands.map((c) => word(c.name)).join(' ');
  const p = spec.program;
  const lines: string[] = [];
  lines.push(`complete -c ${p} -f`);
  for (const c of spec.commands) {
    lines.push(`complete -c ${p} -n __fish_use_subcommand -a ${word(c.name)} -d ${fishQuoted(c.description)}`);
  }
  for (const o of spec.globalOptions) lines.push(fishOption(o, undefined, p, f, names));
  for (const c of spec.commands) {
    const seen = `__fish_seen_subcommand_from ${word(c.name)}`;
    for (const o of c.options) lines.push(fishOption(o, seen, p, f, names));
    // fish cannot tell argument positions apart cheaply: a command's arguments share one list.
    for (const a of c.arguments) {
      if (a.value.kind === 'none') continue;
      lines.push(`complete -c ${p} -n ${fishQuoted(seen)}${fishValue(a.value, f, names)} -d ${fishQuoted(a.name)}`);
    }
  }
  return `# fish completion for ${p}, generated by \`${p} completion fish\` from the program itself.
# Load it in this shell:   ${p} completion fish | source
# or for every shell:      ${p} completion fish > ~/.config/fish/completions/${p}.fish

# Dynamic values (tenant ids, key families, features, tiers) from the project: the tenants
# directory and the configuration only, never the registry or Redis.
function ${f}_dynamic
    set -l words (commandline -opc)
    set -l args
    # The last one given, as the command reads it (a review: the first was taken).
    for i in (seq (count $words))
        if test "$words[$i]" = --tenants-dir; and test $i -lt (count $words)
            set args --tenants-dir $words[(math $i + 1)]
        else if string match -q -- '--tenants-dir=*' $words[$i]
            set args $words[$i]
        end
    end
    # commandline -o takes the quotes out; a leading ~ is left as typed: made $HOME here where fish would
    # (typed bare: not quoted, not escaped, not after "="), as the last one on the line as typed shows.
    if test "$args[1]" = --tenants-dir
        and string match -rq -- '(^|\\s)--tenants-dir\\s+~(/|\\s|$)(?!.*\\s--tenants-dir[\\s=])' (commandline -pc)
        set args[2] (string replace -r -- '^~(?=/|$)' $HOME $args[2])
    end
    # A leading $HOME too, as fish expands it (bare or in double quotes, after "=" as well; not in single
    # quotes, not escaped): commandline -o leaves variables as typed.
    if string match -rq -- '(^|\\s)--tenants-dir(\\s+|=)"?\\$HOME(/|"|\\s|$)(?!.*\\s--tenants-dir[\\s=])' (commandline -pc)
        set args[-1] (string replace -r -- '^(--tenants-dir=)?\\$HOME(?=/|$)' '$1'$HOME $args[-1])
    end
    $words[1] $args ${COMPLETE_COMMAND} $argv[1] 2>/dev/null
end

${lines.join('\n')}
`;
}

/** The script for one shell. */
export function completionScript(shell: 'bash' | 'zsh' | 'fish', program: Command): string {
  const spec = describeProgram(program);
  if (shell === 'bash') return bashScript(spec);
  if (shell === 'zsh') return zshScript(spec);
  return fishScript(spec);
}
