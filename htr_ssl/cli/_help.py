"""`--help` of each command, built from its own config files and the comments in them.

Hydra's own help lists the same config groups for every command and no option; the configs
already say what each option means, in comments, so this reads them: the command's YAML file
(its header comment is the description), then each config group it selects, with the choices
the group offers. PyYAML gives each key's line; the comment is the rest of that line (or the
comment lines right above the key).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from htr_ssl.cli._paths import CONFIG_DIR, group_choices

SKIP = ("defaults", "hydra")


@dataclass
class Option:
    key: str  # dotted, as given on the command line
    value: str  # as written in the config
    comment: str


@dataclass
class Group:
    name: str  # e.g. "data", or "trainer@pretrain.trainer"
    prefix: str  # where its options live, e.g. "pretrain.trainer"
    choice: str
    choices: list[str]


def header(text: str) -> list[str]:
    """The comment lines a config file starts with, without `#` and `@package` lines."""
    out = []
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        if not line.startswith("# @package"):
            out.append(line[1:].rstrip()[1:] if line.startswith("# ") else line[1:].rstrip())
    return out


def _inline_comment(line: str, start: int) -> str:
    """The `# ...` comment of `line` after column `start` (a `#` inside quotes is not one)."""
    quote = None
    for i in range(start, len(line)):
        c = line[i]
        if quote:
            quote = None if c == quote else quote
        elif c in "'\"":
            quote = c
        elif c == "#" and (i == 0 or line[i - 1] in " \t"):
            return line[i + 1:].strip()
    return ""


def options(path: Path, prefix: str = "") -> list[Option]:
    """Every leaf option of one config file, with the package its header gives."""
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    package = re.match(r"#\s*@package\s+(\S+)", text)
    if package:
        prefix = "" if package.group(1) == "_global_" else package.group(1)
    top = len(header(text)) + (1 if package else 0)
    root = yaml.compose(text)
    out: list[Option] = []

    def walk(node: yaml.MappingNode, at: str) -> None:
        for key_node, value in node.value:
            key = f"{at}.{key_node.value}" if at else str(key_node.value)
            if node is root and key_node.value in SKIP:
                continue
            if isinstance(value, yaml.MappingNode) and value.value and not value.flow_style:
                walk(value, key)
                continue
            row = key_node.start_mark.line
            start = value.end_mark.column if value.end_mark.line == row else \
                key_node.end_mark.column
            comment = _inline_comment(lines[row], start)
            above = row - 1
            while not comment and above >= top and lines[above].strip().startswith("#"):
                comment = lines[above].strip()[1:].strip() + (" " + comment if comment else "")
                above -= 1
            shown = text[value.start_mark.index:value.end_mark.index].strip()
            out.append(Option(key, shown.splitlines()[0] + (" ..." if "\n" in shown else "")
                              if shown else "null", comment))

    if isinstance(root, yaml.MappingNode):
        walk(root, prefix)
    return out


def groups(config: str, chosen: dict[str, list[str]] | None = None
           ) -> list[tuple[Group, Path]]:
    """The config groups the command's file selects, or `chosen` on the command line
    (`data=pagexml`): (group, chosen file)."""
    data = yaml.safe_load((Path(CONFIG_DIR) / f"{config}.yaml").read_text(encoding="utf-8"))
    out = []
    for entry in (data or {}).get("defaults", []):
        if not isinstance(entry, dict):
            continue
        for name, choice in entry.items():
            name = name.removeprefix("override ").lstrip("/")
            group, _, package = name.partition("@")
            folder = Path(CONFIG_DIR) / group
            if group.startswith("hydra") or not folder.is_dir() or choice is None:
                continue
            choices = group_choices(group)
            choice = (chosen or {}).get(name, choice)
            for one in choice if isinstance(choice, list) else [choice]:
                if one not in choices:
                    continue
                out.append((Group(name, package or group, str(one), choices),
                            folder / f"{one}.yaml"))
    return out


def group_options(group: Group, path: Path) -> list[Option]:
    """A group file's options; a file that starts from others of its group (every data
    config from data/_common, cremma from tsv) has theirs under its own."""
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    merged: dict[str, Option] = {}
    for base in (d for d in data.get("defaults", []) if isinstance(d, str) and d != "_self_"):
        for opt in group_options(group, path.parent / f"{base}.yaml"):
            merged[opt.key] = opt
    for opt in options(path, group.prefix):
        merged[opt.key] = Option(opt.key, opt.value,
                                 opt.comment or merged.get(opt.key, opt).comment)
    return list(merged.values())


def command_help(config: str, prog: str, chosen: dict[str, list[str]] | None = None) -> str:
    """The text `prog --help` prints (`prog data=pagexml --help`: with that group's options)."""
    path = Path(CONFIG_DIR) / f"{config}.yaml"
    own = options(path)
    chosen = groups(config, chosen)
    sections: list[tuple[str, list[Option]]] = []
    for group, file in chosen:
        found = group_options(group, file)
        keys = {o.key for o in found}
        for opt in own:  # the command's own file may set a group's options
            if opt.key.startswith(f"{group.prefix}.") and opt.key not in keys:
                found.append(opt)
        overrides = {o.key: o for o in own}
        found = [Option(o.key, overrides[o.key].value, overrides[o.key].comment or o.comment)
                 if o.key in overrides else o for o in found]
        title = (f"{group.name}={group.choice}  (choices: {', '.join(group.choices)}; "
                 f"configs/{group.name.partition('@')[0]}/{group.choice}.yaml)")
        sections.append((title, found))
    grouped = {o.key for _, opts in sections for o in opts}
    lines = [*header(path.read_text(encoding="utf-8")), "",
             f"Usage: {prog} [key=value ...]   every option below can be set so; quote a "
             "value with commas, brackets or quotes: \"key='a, b [1]'\" (README, Commands). "
             "--version; -m runs a sweep (key=a,b); --cfg job prints the composed config; "
             f"{prog} GROUP=CHOICE --help shows that choice's options.", "",
             f"Options (configs/{config}.yaml):"]
    lines += _rows([o for o in own if o.key not in grouped])
    for title, opts in sections:
        lines += ["", title]
        lines += _rows(opts)
    required = [o.key for o in own if o.value == "???"]
    if required:
        lines += ["", "Required: " + ", ".join(f"{k}=..." for k in required)]
    return "\n".join(lines)


def _rows(opts: list[Option]) -> list[str]:
    rows = []
    for o in opts:
        left = f"  {o.key}={o.value}"
        rows.append(f"{left:<40} {o.comment}".rstrip() if o.comment else left)
    return rows


def comment_of(config: str, key: str) -> str:
    """What the config says about `key` (for the error naming a missing required option)."""
    for opt in options(Path(CONFIG_DIR) / f"{config}.yaml"):
        if opt.key == key:
            return opt.comment
    return ""
