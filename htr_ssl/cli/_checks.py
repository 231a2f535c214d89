"""The command line of every console command, read before Hydra sees it: `--help` from the
command's config, `--version`, a positional argument, values Hydra's grammar cannot read, and
a check of the options given.

Hydra answers `data.hieght=32` with `use +data.hieght=32` (which adds the typo as a new
option), an unknown group choice with a search-path dump, a missing required option with a
traceback, and a folder named `Écrits` with "token recognition error"; and by then it has
made the run folder. Here each is one line (exit 2) that names the valid choices, before
anything is written.
"""

from __future__ import annotations

import difflib
import re
import sys
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from htr_ssl.cli._paths import CONFIG_DIR, group_choices

FREE = ("reader_args", "oov_map")  # options whose keys the user chooses (reader options)
HYDRA_FLAGS = ("hydra_help", "info", "shell_completion", "config_path", "config_name",
               "config_dir", "experimental_rerun")


def version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("htr-ssl")
    except PackageNotFoundError:
        return "unknown (not installed)"


def command_line(config: str, prog: str, argv: list[str], positional: str | None = None
                 ) -> list[str]:
    """The arguments to hand to Hydra. `--version` and `--help` print and exit 0; a problem
    with the options prints one line and exits 2."""
    if "--version" in argv or "-V" in argv:
        print(f"{prog} (htr-ssl) {version()}")
        raise SystemExit(0)
    if positional:
        argv = as_option(argv, positional)
    if "--help" in argv or "-h" in argv:
        from htr_ssl.cli._help import command_help

        print(command_help(config, prog, chosen_groups(argv)))
        raise SystemExit(0)
    argv = [literal(a) for a in argv]
    problem = check_arguments(config, prog, argv)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        raise SystemExit(2)
    return argv


def quote(value: str) -> str:
    """`value` as a quoted Hydra string: every character kept as written."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def as_option(argv: list[str], key: str) -> list[str]:
    """`cmd FILE ...` -> `cmd key='FILE' ...` (Hydra only takes key=value)."""
    if argv and "=" not in argv[0] and not argv[0].startswith("-"):
        return [f"{key}={quote(argv[0])}", *argv[1:]]
    return argv


def literal(arg: str) -> str:
    """`key=value` whose value Hydra's grammar cannot read (letters beyond ASCII, `#`, `&`,
    `(`, `=`, ...) as that value quoted, so that a folder named `Écrits (1)` needs no quoting.
    Lists, dicts, quoted values and values Hydra reads (sweeps `a,b` included) are left as
    they are."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    key, eq, value = arg.partition("=")
    if not eq or arg.startswith("-") or not value or value[0] in "[{'\"" \
            or "'" in value or '"' in value:
        return arg
    parser = OverridesParser.create()
    try:
        parser.parse_override(arg)
        return arg
    except HydraException:
        pass
    quoted = f"{key}={quote(value)}"
    try:
        parser.parse_override(quoted)
    except HydraException:
        return arg  # the key itself is unreadable: the check below says so
    return quoted


def chosen_groups(argv: list[str]) -> dict[str, list[str]]:
    """Group choices on the command line (`data=pagexml`, `pretext=[a,b]`), for `--help`."""
    out = {}
    for arg in argv:
        m = re.fullmatch(r"\+?([\w/]+(?:@[\w.]+)?)=\[?([\w.,-]*)\]?", arg)
        if m and (Path(CONFIG_DIR) / m.group(1).partition("@")[0]).is_dir():
            out[m.group(1)] = [v for v in m.group(2).split(",") if v]
    return out


def check_arguments(config: str, prog: str, argv: list[str]) -> str | None:
    """What is wrong with the options given, in one line (None when nothing is). Hydra's own
    flags (--cfg, --info, ...) are left to Hydra; flags argparse does not know end here, as
    Hydra would end them."""
    from hydra._internal.utils import get_args_parser
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    parsed = get_args_parser().parse_args(argv)
    if any(getattr(parsed, flag) for flag in HYDRA_FLAGS):
        return None
    try:
        overrides = OverridesParser.create().parse_overrides(parsed.overrides)
    except HydraException as err:
        first = str(err).splitlines()[0]
        return (f"cannot read the options as given ({first}). Quote a value that holds "
                "commas, brackets or quotes: key='a, b [1].png' (on the shell: "
                "\"key='a, b [1].png'\"); list items alike: inputs=['a, b.png',c.png]. "
                f"{prog} --help lists every option; a list of files can be given as a file "
                "of paths where the command has one (inputs_file=FILE)")
    groups, keys = [], []
    for o in overrides:
        name = o.key_or_group
        if o.is_sweep_override() and not parsed.multirun:
            return (f"{o.input_line}: a comma outside quotes makes a sweep. Quote the value "
                    f"to keep it whole: \"{name}='{','.join(o.sweep_string_iterator())}'\" (or run "
                    f"the sweep: {prog} -m ...)")
        if name.startswith("hydra") or o.is_delete():
            continue
        if (Path(CONFIG_DIR) / name).is_dir():
            values = list(o.sweep_string_iterator()) if o.is_sweep_override() \
                else [o.get_value_element_as_str()]
            for value in values:
                problem = _group_choice(name, value)
                if problem:
                    return problem
            at = f"@{o.package}" if o.package else ""
            groups.append(f"{'+' if o.is_add() else ''}{name}{at}={values[0]}")
        elif not (o.is_add() or o.is_force_add()):
            keys.append(name)
    cfg = _compose(config, groups)
    if isinstance(cfg, str):
        return cfg
    for key in keys:
        problem = _unknown(cfg, key, prog)
        if problem:
            return problem
    given = set(keys)
    for key in _missing(cfg):
        if key not in given:
            from htr_ssl.cli._help import comment_of

            what = comment_of(config, key)
            return (f"{prog} needs {key}=..." + (f" ({what})" if what else "")
                    + f"; {prog} --help lists every option")
    return None


def _group_choice(group: str, value: str) -> str | None:
    """A choice of a config group that has no file: the choices, the closest first."""
    names = [value] if not value.startswith("[") else \
        [v.strip() for v in value.strip("[]").split(",") if v.strip()]
    choices = group_choices(group)
    for name in names:
        if name not in choices and name not in ("null", "None"):
            close = difflib.get_close_matches(name, choices, n=3, cutoff=0.5)
            hint = f"did you mean {group}={close[0]}? " if close else ""
            return f"{group}={name} is not a choice; {hint}choices: {', '.join(choices)}"
    return None


def _compose(config: str, groups: list[str]) -> DictConfig | str:
    """The command's config with the group choices given (Hydra's own composition), or what
    Hydra says is wrong with them."""
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    try:
        with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
            return compose(config, overrides=groups)
    except (HydraException, OmegaConfBaseException) as err:
        return str(err).splitlines()[0]


def _node(cfg: DictConfig, key: str) -> tuple[Any, str]:
    """The deepest node on `key`'s path that the config has, and its dotted key ("" for the
    root). A `???` value counts as there."""
    node: Any = cfg
    at: list[str] = []
    for part in key.split("."):
        if isinstance(node, DictConfig) and part in list(node):
            node = node._get_node(part)
        elif isinstance(node, ListConfig) and part.isdigit() and int(part) < len(node):
            node = node._get_node(int(part))
        else:
            break
        at.append(part)
    return node, ".".join(at)


def _unknown(cfg: DictConfig, key: str, prog: str) -> str | None:
    """`key` when the config has no such option: the closest valid names, or the valid
    names at that level."""
    node, found = _node(cfg, key)
    if found == key:
        return None
    parent, _, last = key.rpartition(".")
    everything = [k for k in _keys(cfg) if not key.startswith(f"{k}.")]  # not its ancestors
    close = difflib.get_close_matches(key, everything, n=3, cutoff=0.75)
    above, at = _node(cfg, parent) if parent else (cfg, "")
    siblings = [str(k) for k in above] \
        if at == parent and isinstance(above, DictConfig) else []
    join = f"{parent}." if parent else ""
    close += [f"{join}{k}" for k in difflib.get_close_matches(last, siblings, n=2, cutoff=0.6)
              if f"{join}{k}" not in close]
    if close:
        return (f"{key} is not an option of {prog}; did you mean "
                f"{' or '.join(dict.fromkeys(close))}? ({prog} --help lists every option)")
    free = isinstance(node, DictConfig) and (not list(node)
                                            or found.rpartition(".")[2] in FREE)
    if free:
        return (f"{key} is not set in {prog}'s config; {found} takes keys of your choice: "
                f"add one with +{key}=...")
    names = [str(k) for k in node] if isinstance(node, DictConfig) else []
    where = f"{found} has" if found else "the options are"
    shown = f"; {where}: {', '.join(names[:30])}" if names else ""
    return f"{key} is not an option of {prog}{shown} ({prog} --help lists every option)"


def _missing(node: Any, prefix: str = "") -> list[str]:
    """Every dotted key whose value is `???` (nothing is resolved on the way)."""
    out = []
    if isinstance(node, DictConfig):
        for k in node:
            if OmegaConf.is_missing(node, k):
                out.append(f"{prefix}{k}")
            else:
                out += _missing(node._get_node(k), f"{prefix}{k}.")
    return out


def _keys(node: Any, prefix: str = "") -> list[str]:
    """Every dotted key of a config, inner nodes included."""
    out = []
    if isinstance(node, DictConfig):
        for k in node:
            key = f"{prefix}{k}"
            out.append(key)
            out += _keys(node._get_node(k), f"{key}.")
    return out
