"""The one config mechanism: a dataclass whose fields are a command's settings.

    @dataclasses.dataclass
    class TrainConfig:
        output: str = setting("", "where the result goes (required)", old_names=("output_dir",))
        learning_rate: float = setting(3e-4, "peak learning rate")
        resume: bool = setting(False, "continue an interrupted run")

        def __post_init__(self):
            check_fields(self)               # types and choices of every field
            ...                              # checks between fields

    parser = build_parser(TrainConfig, prog="python -m train", description="...")
    cfg, extras = parse_config(TrainConfig, parser, argv)

What every command built on it gets:

- one flag per field, `--learning-rate`, whose help shows the default; booleans are switches
  (`--resume`, `--no-resume`); lists are comma-separated; dicts are JSON objects, or, for a
  field declared with `pairs=True` (family options), repeatable `NAME=VALUE` flags;
- `--config FILE.yaml`: defaults from a YAML mapping whose keys are field names; flags override it;
- an unknown key (YAML, preset or `check_values`) is a ConfigError listing the valid names;
- renamed settings keep working: a field's `old_names` are accepted as YAML keys and flags,
  each use printing one deprecation line to stderr;
- every bad value is a one-line ConfigError naming the field, the value and what is expected.

Values given as text (flags, `NAME=VALUE`) are converted to the field's type here; values given
in Python must already have it (`check_fields` says so otherwise).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off")
_MISSING = dataclasses.MISSING


class ConfigError(ValueError):
    """A setting is invalid; the message (one line) names the setting, the value and the fix."""


def setting(
    default: Any,
    help: str,
    *,
    choices: Sequence[Any] | None = None,
    old_names: Sequence[str] = (),
    pairs: bool = False,
    flag: str | None = None,
    positional: bool = False,
    repeatable: bool = False,
) -> Any:
    """A dataclass field that is a setting. `default` may be a list or dict (copied per instance).

    choices: the valid values. old_names: former names of the setting (YAML keys and `--flags`),
    still accepted with a deprecation line. pairs: a dict filled by repeatable `NAME=VALUE` flags.
    flag: the flag's spelling if not `--field-name`. positional: a positional argument instead.
    repeatable: a list whose flag may be given several times (`--model A --model B` = `--model A,B`).
    """
    metadata = {
        "help": help,
        "choices": tuple(choices) if choices else None,
        "old_names": tuple(old_names),
        "pairs": pairs,
        "flag": flag,
        "positional": positional,
        "repeatable": repeatable,
    }
    if isinstance(default, (list, dict)):
        factory = type(default)
        return dataclasses.field(default_factory=lambda: factory(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def parse_bool(value: Any) -> bool:
    """True/False from a bool or a word (true/false, yes/no, on/off, 1/0); ValueError otherwise."""
    if isinstance(value, bool):
        return value
    word = str(value).strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ValueError(f"expected true or false, got {value!r}")


def parse_pairs(items: Sequence[str], flag: str = "--family-option") -> dict[str, str]:
    """`NAME=VALUE` strings -> {NAME: VALUE}; a JSON object (the older form) is merged as it is."""
    values: dict[str, Any] = {}
    for item in items:
        if item.lstrip()[:1] in ("{", "["):
            try:
                parsed = json.loads(item)
            except json.JSONDecodeError:
                parsed = None
            if not isinstance(parsed, dict):
                raise ConfigError(f"{flag} {item!r} is not a JSON object; give NAME=VALUE (e.g. num_facts=20)")
            values.update(parsed)
            continue
        name, separator, value = item.partition("=")
        if not separator or not name.strip():
            raise ConfigError(f"{flag} {item!r}: expected NAME=VALUE (e.g. num_facts=20)")
        values[name.strip()] = value
    return values


# --- field types --------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Kind:
    base: type  # bool, int, float, str, list or dict
    item: type = str  # element type of a list
    optional: bool = False


def _kinds(cls: type) -> dict[str, _Kind]:
    kinds = {}
    for name, hint in typing.get_type_hints(cls).items():
        args = typing.get_args(hint)
        optional = type(None) in args
        if optional:
            hint = next(a for a in args if a is not type(None))
        origin = typing.get_origin(hint) or hint
        item = (typing.get_args(hint) or (str,))[0] if origin is list else str
        kinds[name] = _Kind(origin, item, optional)
    return kinds


def fields_of(cls: type) -> dict[str, dataclasses.Field]:
    return {field.name: field for field in dataclasses.fields(cls)}


def default_of(field: dataclasses.Field) -> Any:
    return field.default_factory() if field.default_factory is not _MISSING else field.default


def _expected(kind: _Kind, choices: tuple | None) -> str:
    if choices:
        return f"one of {list(choices)}"
    text = {list: f"a list of {kind.item.__name__} (comma-separated)", dict: "a JSON object"}.get(
        kind.base, kind.base.__name__
    )
    return text + (" or nothing" if kind.optional else "")


def coerce(cls: type, name: str, value: Any) -> Any:
    """`value` (text from a flag or YAML's value) given field `name`'s type; ConfigError if it has none."""
    kind, field = _kinds(cls)[name], fields_of(cls)[name]
    choices = field.metadata.get("choices")
    try:
        converted = _convert(kind, value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name}={value!r} is not valid; expected {_expected(kind, choices)}") from None
    if choices and converted not in choices and not (converted is None and kind.optional):
        raise ConfigError(f"{name}={value!r} is not valid; choose one of {list(choices)}")
    return converted


def _convert(kind: _Kind, value: Any) -> Any:
    if value is None or (kind.optional and isinstance(value, str) and value.strip().lower() in ("", "none")):
        if kind.optional:
            return None
        raise ValueError
    if kind.base is bool:
        return parse_bool(value)
    if kind.base is list:
        items = [item.strip() for item in value.split(",") if item.strip()] if isinstance(value, str) else value
        if not isinstance(items, (list, tuple)):
            raise ValueError
        return [_convert(_Kind(kind.item), item) for item in items]
    if kind.base is dict:
        parsed = json.loads(value) if isinstance(value, str) else value
        if not isinstance(parsed, dict):
            raise ValueError
        return dict(parsed)
    if isinstance(value, bool):  # a bool is an int to Python, never to a setting
        raise ValueError
    if kind.base is int:
        if isinstance(value, float) and not value.is_integer():
            raise ValueError
        return int(value)
    if kind.base is float:
        return float(value)
    if not isinstance(value, (str, int, float)):
        raise ValueError
    return str(value)


def check_fields(config: Any) -> None:
    """Every field of a config instance has its declared type and one of its choices.

    Call it first in `__post_init__`. Ints are accepted (and converted) for float fields.
    """
    cls = type(config)
    for name, kind in _kinds(cls).items():
        value = getattr(config, name)
        choices = fields_of(cls)[name].metadata.get("choices")
        if value is None and kind.optional:
            continue
        if kind.base is float and isinstance(value, int) and not isinstance(value, bool):
            setattr(config, name, float(value))
            continue
        valid = isinstance(value, kind.base) and not (isinstance(value, bool) and kind.base is not bool)
        if valid and kind.base is list:
            valid = all(isinstance(item, kind.item) and not isinstance(item, bool) for item in value)
        if not valid:
            raise ConfigError(f"{name}={value!r} is not valid; expected {_expected(kind, None)}")
        if choices and value not in choices:
            raise ConfigError(f"{name}={value!r} is not valid; choose one of {list(choices)}")


# --- names, old names and value mappings ---------------------------------------------------------


def _old_names(cls: type) -> dict[str, str]:
    """Former setting name -> current name."""
    return {old: name for name, field in fields_of(cls).items() for old in field.metadata.get("old_names", ())}


def current_names(cls: type, values: Mapping[str, Any]) -> dict[str, Any]:
    """`values` (e.g. a config saved by an earlier version) with former setting names renamed, silently."""
    old_names = _old_names(cls)
    return {old_names.get(key, key): value for key, value in values.items()}


def deprecation(prog: str, old: str, new: str) -> None:
    """One line on stderr: `old` still works but is on its way out (command-line output)."""
    print(f"{prog}: warning: {old} is deprecated; use {new}", file=sys.stderr)


def check_values(cls: type, values: Mapping[str, Any], where: str, prog: str | None = None) -> dict[str, Any]:
    """Setting values of `cls` from a mapping (a YAML file, a preset), typed.

    Keys may use `-` for `_`; a former name is renamed (with a deprecation line when `prog` is
    given); an unknown key is a ConfigError naming `where` and the valid keys.
    """
    fields, old_names = fields_of(cls), _old_names(cls)
    checked: dict[str, Any] = {}
    unknown = []
    for key, value in values.items():
        name = str(key).replace("-", "_")
        if name in old_names:
            if prog:
                deprecation(prog, f"{where} key {name!r}", repr(old_names[name]))
            name = old_names[name]
        if name not in fields:
            unknown.append(str(key))
            continue
        try:
            checked[name] = coerce(cls, name, value)
        except ConfigError as err:
            raise ConfigError(f"{where}: {err}") from None
    if unknown:
        raise ConfigError(f"{where} has unknown key(s) {sorted(unknown)}; valid keys: {sorted(fields)}")
    return checked


def load_yaml(path: str | Path) -> dict[str, Any]:
    """The mapping in a YAML file; ConfigError (naming the file) if it cannot be read or is no mapping."""
    import yaml

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        reason = err.strerror if isinstance(err, OSError) and err.strerror else type(err).__name__
        raise ConfigError(f"config={str(path)!r} cannot be read ({reason}); give an existing YAML file") from None
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        raise ConfigError(f"config={str(path)!r} is not valid YAML{where}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"config={str(path)!r} must be a mapping of setting: value, not {type(loaded).__name__}")
    return loaded


# --- the command line ----------------------------------------------------------------------------


class _Store(argparse.Action):
    """Stores the raw text; a deprecated spelling says so once."""

    def __init__(self, *args, prog: str = "", new: str = "", **kwargs):
        self.prog, self.new = prog, new
        super().__init__(*args, **kwargs)

    def announce(self, option_string: str | None) -> None:
        if self.new and option_string:
            deprecation(self.prog, option_string, self.new)

    def __call__(self, parser, namespace, values, option_string=None):
        self.announce(option_string)
        setattr(namespace, self.dest, values)


class _Append(_Store):
    def __call__(self, parser, namespace, values, option_string=None):
        self.announce(option_string)
        setattr(namespace, self.dest, [*(getattr(namespace, self.dest, None) or []), values])


class _Extend(_Store):
    """A repeatable list flag: the given values join into one comma-separated list."""

    def __call__(self, parser, namespace, values, option_string=None):
        self.announce(option_string)
        earlier = getattr(namespace, self.dest, None)
        setattr(namespace, self.dest, f"{earlier},{values}" if earlier else values)


class _Switch(_Store):
    """`--name` sets True, `--no-name` False."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, nargs=0, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        self.announce(option_string)
        setattr(namespace, self.dest, not option_string.startswith("--no-"))


def _bool_flags(cls: type) -> set[str]:
    flags = set()
    for name, kind in _kinds(cls).items():
        if kind.base is bool:
            field = fields_of(cls)[name]
            flags |= {flag_of(field), *(f"--{old.replace('_', '-')}" for old in field.metadata.get("old_names", ()))}
    return flags


def rewrite_bool_values(cls: type, argv: Sequence[str], prog: str) -> list[str]:
    """`--switch true|false` (the older form) -> `--switch` / `--no-switch`, with a deprecation line."""
    flags, rewritten, tokens = _bool_flags(cls), [], list(argv)
    index = 0
    while index < len(tokens):
        token = tokens[index]
        value = tokens[index + 1] if index + 1 < len(tokens) else None
        if token in flags and value is not None and value.lower() in (*TRUE_WORDS, *FALSE_WORDS):
            switch = token if parse_bool(value) else "--no-" + token[2:]
            deprecation(prog, f"{token} {value}", switch)
            rewritten.append(switch)
            index += 2
            continue
        rewritten.append(token)
        index += 1
    return rewritten


def flag_of(field: dataclasses.Field) -> str:
    return field.metadata.get("flag") or "--" + field.name.replace("_", "-")


def _help(field: dataclasses.Field, kind: _Kind) -> str:
    text = field.metadata.get("help", "")
    default = default_of(field)
    if field.metadata.get("positional") or default in ("", None) or (kind.base is dict and not default):
        return text
    if kind.base is list:
        default = ",".join(map(str, default)) or "none"
    return f"{text} [default: {default}]"


def add_arguments(parser: argparse.ArgumentParser, cls: type, prog: str, config_file: bool = True) -> None:
    """One argument per field of `cls` (plus `--config` unless `config_file=False`) on `parser`.

    Flags that are not given stay absent from the parsed namespace, so YAML values under them survive.
    """
    if config_file:
        parser.add_argument(
            "--config",
            default=argparse.SUPPRESS,
            metavar="FILE.yaml",
            help="YAML file of setting: value defaults; flags override it",
        )
    kinds = _kinds(cls)
    for name, field in fields_of(cls).items():
        kind, metadata = kinds[name], field.metadata
        if metadata.get("positional"):
            nargs = "+" if kind.base is list else None
            parser.add_argument(name, nargs=nargs, metavar=name.upper(), help=_help(field, kind))
            continue
        flag = flag_of(field)
        old_flags = [
            f"--{old.replace('_', '-')}"
            for old in metadata.get("old_names", ())
            if f"--{old.replace('_', '-')}" != flag
        ]
        common: dict[str, Any] = {"dest": name, "default": argparse.SUPPRESS, "prog": prog}
        if kind.base is bool:
            parser.add_argument(flag, "--no-" + flag[2:], action=_Switch, help=_help(field, kind), **common)
            for old in old_flags:
                parser.add_argument(old, "--no-" + old[2:], action=_Switch, help=argparse.SUPPRESS, new=flag, **common)
            continue
        if metadata.get("pairs"):
            action, metavar = _Append, "NAME=VALUE"
            help_text = _help(field, kind) + " (repeatable)"
            # The field name as a flag is the older JSON-object spelling of the same setting.
            if flag != "--" + name.replace("_", "-"):
                old_flags.append("--" + name.replace("_", "-"))
        else:
            choices = metadata.get("choices")
            action, help_text = _Store, _help(field, kind)
            if metadata.get("repeatable") and kind.base is list:
                action, help_text = _Extend, help_text + " (repeatable)"
            metavar = "{" + ",".join(map(str, choices)) + "}" if choices else kind.base.__name__.upper()
            if kind.base is list:
                metavar = f"{kind.item.__name__.upper()}[,...]"
        parser.add_argument(flag, action=action, metavar=metavar, help=help_text, **common)
        for old in old_flags:
            parser.add_argument(old, action=action, metavar=metavar, help=argparse.SUPPRESS, new=flag, **common)


def build_parser(cls: type, prog: str, description: str, config_file: bool = True, **kwargs) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=description, **kwargs)
    add_arguments(parser, cls, prog, config_file=config_file)
    return parser


def values_from_namespace(cls: type, namespace: argparse.Namespace, prog: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(setting values: YAML under flags, typed; everything else the parser holds, e.g. `verbose`)."""
    given = dict(vars(namespace))
    fields = fields_of(cls)
    values: dict[str, Any] = {}
    if "config" in given and "config" not in fields:
        path = given.pop("config")
        values = check_values(cls, load_yaml(path), where=f"config={str(path)!r}", prog=prog)
    extras = {key: value for key, value in given.items() if key not in fields}
    for name, value in given.items():
        if name not in fields:
            continue
        field = fields[name]
        if field.metadata.get("pairs"):
            merged = {**values.get(name, {}), **parse_pairs(value, flag_of(field))}
            values[name] = merged
        else:
            values[name] = coerce(cls, name, value)
    return values, extras


def parse_config(cls: type, parser: argparse.ArgumentParser, argv: Sequence[str] | None = None):
    """(config, extras) from the command line: `--config` YAML first, flags over it, then the dataclass's checks."""
    argv = sys.argv[1:] if argv is None else argv
    namespace = parser.parse_args(rewrite_bool_values(cls, argv, parser.prog))
    values, extras = values_from_namespace(cls, namespace, parser.prog)
    return cls(**values), extras
