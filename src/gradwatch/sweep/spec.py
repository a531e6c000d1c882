"""What a sweep is: swept knobs (each a list of values), fixed knobs and seeds → the list of run configs.

On the command line a swept knob is ``NAME=V1,V2,...`` for any field of :class:`gradwatch.lab.Config`, or a
range form for numbers:

- ``log:START:STOP:N`` — N log-spaced values from START to STOP (``lr=log:1e-4:1e-1:7``),
- ``lin:START:STOP:N`` — N evenly spaced values,
- ``range:START:STOP:STEP`` — START, START+STEP, … up to STOP inclusive (``depth=range:2:20:2``).

Integer fields round (and de-duplicate) the values of a range. List fields (``sizes``, ``tbptt``) separate
their values with ``;`` (``sizes=100,50;200``); ``none`` is the value None. A sweep file (TOML, or YAML when
PyYAML is installed) holds the same::

    seeds = 3
    [fixed]
    dataset = "digits"
    epochs = 2
    [params]
    depth = [2, 4, 8]
    lr = "log:1e-3:1e-1:3"

Every combination × seed is validated as a ``Config`` before anything runs.
"""

from __future__ import annotations

import itertools
import math
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gradwatch.errors import ConfigError

RANGE_FORMS = ("log", "lin", "range")
LIST_FIELDS = ("sizes", "tbptt")
NONE_WORDS = ("none", "null")
FILE_KEYS = ("seeds", "fixed", "params")
MAX_VALUES = 1_000_000  # values one range form may expand to
MAX_RUNS = 10_000  # runs a sweep may have without being confirmed (``--yes``, ``confirm=True``)


def _fields() -> dict[str, Any]:
    from gradwatch.lab.config import Config

    return Config.model_fields


def check_field(name: str, param: str = "param") -> str:
    """``name`` (dashes allowed) as a Config field name, or a ConfigError naming the allowed ones."""
    key = name.strip().replace("-", "_")
    if key not in _fields():
        raise ConfigError(
            param, name, "expected a field of lab.Config (the flags of `gradwatch train`): " + ", ".join(_fields())
        )
    return key


def _is_int_field(name: str) -> bool:
    import typing

    ann = _fields()[name].annotation
    return ann is int or int in typing.get_args(ann)


def _scalar(name: str, text: str) -> Any:
    """One value as typed text → the Python value Config will validate (numbers, booleans, None, lists)."""
    t = text.strip()
    if t.lower() in NONE_WORDS:
        return None
    if name in LIST_FIELDS:
        try:
            return [int(v) for v in t.split(",") if v.strip()]
        except ValueError:
            raise ConfigError(name, text, "expected comma-separated integers, e.g. 100,50") from None
    for cast in (int, float):
        try:
            return cast(t)
        except ValueError:
            pass
    if t.lower() in ("true", "false"):
        return t.lower() == "true"
    return t


def expand_range(name: str, text: str) -> list[Any]:
    """The values of one range form (see the module docstring)."""
    form, *parts = text.split(":")
    usage = {
        "log": "log:START:STOP:N with 0 < START, STOP and N ≥ 2",
        "lin": "lin:START:STOP:N with N ≥ 2",
        "range": "range:START:STOP:STEP with STEP > 0",
    }[form]
    try:
        start, stop, third = (float(p) for p in parts)
    except ValueError:
        raise ConfigError(name, text, "expected " + usage) from None
    if not all(math.isfinite(v) for v in (start, stop, third)):
        raise ConfigError(name, text, "expected finite numbers: " + usage)
    if form == "range":
        if third <= 0 or stop < start:
            raise ConfigError(name, text, "expected " + usage + " and STOP ≥ START")
        n = int(math.floor((stop - start) / third + 1e-9)) + 1
        if n > MAX_VALUES:
            raise ConfigError(name, text, f"expands to {n:,} values, more than {MAX_VALUES:,}; use a larger STEP")
        values = [start + i * third for i in range(n)]
    else:
        if third < 2 or third != int(third) or (form == "log" and (start <= 0 or stop <= 0)):
            raise ConfigError(name, text, "expected " + usage)
        if third > MAX_VALUES:
            raise ConfigError(name, text, f"N = {int(third):,} values, more than {MAX_VALUES:,}")
        space = np.geomspace if form == "log" else np.linspace
        values = space(start, stop, int(third)).tolist()
    if _is_int_field(name):
        return list(dict.fromkeys(int(round(v)) for v in values))
    return [float(f"{v:.12g}") for v in values]  # 0.1 + 2·0.1 prints as 0.3, not 0.30000000000000004


def parse_values(name: str, text: str) -> list[Any]:
    """The values of ``NAME=...`` after the ``=``: a range form or a list separated by ``,`` (``;`` for
    list fields)."""
    if text.split(":", 1)[0] in RANGE_FORMS and ":" in text:
        return expand_range(name, text)
    sep = ";" if name in LIST_FIELDS else ","
    values = [_scalar(name, v) for v in text.split(sep) if v.strip()]
    if not values:
        raise ConfigError(name, text, "expected at least one value, e.g. depth=2,4,8")
    return values


def parse_param(text: str) -> tuple[str, list[Any]]:
    """``NAME=V1,V2`` → (field name, values)."""
    if "=" not in text:
        raise ConfigError(
            "param", text, "expected NAME=V1,V2,... (or NAME=log:START:STOP:N, NAME=range:START:STOP:STEP)"
        )
    name, values = text.split("=", 1)
    key = check_field(name)
    return key, parse_values(key, values)


@dataclass
class SweepSpec:
    """Swept knobs (in order), fixed knobs and seeds. ``configs()`` is the product, seeds innermost."""

    params: dict[str, list[Any]] = field(default_factory=dict)
    fixed: dict[str, Any] = field(default_factory=dict)
    seeds: list[int] = field(default_factory=lambda: [0])

    def __post_init__(self) -> None:
        for name in list(self.params) + list(self.fixed):
            check_field(name)
        both = set(self.params) & set(self.fixed)
        if both:
            name = sorted(both)[0]
            raise ConfigError("param", name, "is both swept and fixed: give it once")
        if "seed" in self.params and len(self.seeds) > 1:
            raise ConfigError("seeds", len(self.seeds), "must be 1 when seed itself is swept (--param seed=...)")
        for name, values in self.params.items():
            if not values:
                raise ConfigError(name, values, "a swept knob needs at least one value")

    @property
    def size(self) -> int:
        """The number of runs: the product of the swept knobs' value counts × the seeds (without listing them)."""
        runs = math.prod(len(v) for v in self.params.values())
        return runs * (1 if "seed" in self.params else len(self.seeds))

    def check_size(self, confirmed: bool = False) -> int:
        """The number of runs; above :data:`MAX_RUNS` a :class:`ConfigError` unless ``confirmed``."""
        n = self.size
        if n > MAX_RUNS and not confirmed:
            seeds = 1 if "seed" in self.params else len(self.seeds)
            shape = " × ".join([f"{k}: {len(v):,} values" for k, v in self.params.items()] + [f"{seeds} seed(s)"])
            raise ConfigError(
                "param", shape, f"{n:,} runs, more than {MAX_RUNS:,}: pass --yes to run them all, or sweep fewer values"
            )
        return n

    @property
    def combos(self) -> list[dict[str, Any]]:
        """Every combination of the swept values (without the seed)."""
        names = list(self.params)
        return [dict(zip(names, vs)) for vs in itertools.product(*(self.params[n] for n in names))]

    def configs(self):
        """One validated :class:`Config` per combination and seed (ConfigError on the first invalid one)."""
        from gradwatch.lab.config import Config

        out = []
        for combo in self.combos:
            seeds = [combo["seed"]] if "seed" in combo else self.seeds
            for seed in seeds:
                out.append(Config(**{**self.fixed, **combo, "seed": seed}))
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"params": self.params, "fixed": self.fixed, "seeds": self.seeds}


def seed_list(n: int, first: int = 0) -> list[int]:
    if n < 1:
        raise ConfigError("seeds", n, "must be ≥ 1")
    return list(range(first, first + n))


def _load_file(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError("file", str(path), "no such sweep file")
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".toml":
        if sys.version_info >= (3, 11):
            import tomllib
        else:  # pragma: no cover - Python 3.10
            try:
                import tomli as tomllib
            except ImportError:
                raise ImportError('reading TOML on Python 3.10 needs tomli: pip install "gradwatch[sweep]"') from None
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError("file", str(path), f"is not valid TOML ({exc})") from None
    if path.suffix.lower() in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise ImportError('YAML sweep files need PyYAML: pip install "gradwatch[sweep]"') from None
        data = yaml.safe_load(text)
        if not isinstance(data, dict):
            raise ConfigError("file", str(path), "expected a mapping with seeds, fixed and params")
        return data
    raise ConfigError("file", str(path), "expected a .toml, .yaml or .yml file")


def _file_values(name: str, value: Any) -> list[Any]:
    if isinstance(value, str):
        return parse_values(name, value)
    if isinstance(value, list):
        return value
    return [value]


def from_file(path: str | Path) -> SweepSpec:
    """A :class:`SweepSpec` from a TOML or YAML sweep file (keys: seeds, fixed, params)."""
    data = _load_file(Path(path).expanduser())
    unknown = sorted(set(data) - set(FILE_KEYS))
    if unknown:
        raise ConfigError("file", unknown[0], "unknown key in the sweep file; allowed: " + ", ".join(FILE_KEYS))
    fixed = {check_field(k, "fixed"): v for k, v in (data.get("fixed") or {}).items()}
    params = {check_field(k): _file_values(check_field(k), v) for k, v in (data.get("params") or {}).items()}
    seeds = data.get("seeds", 1)
    seeds = seed_list(seeds, int(fixed.pop("seed", 0))) if isinstance(seeds, int) else list(seeds)
    fixed.pop("seed", None)  # the seeds list says which seeds run
    return SweepSpec(params=params, fixed=fixed, seeds=seeds)


def merge(
    base: SweepSpec | None, params: Iterable[str] = (), fixed: dict[str, Any] | None = None, seeds: int | None = None
) -> SweepSpec:
    """A file's spec (or an empty one) with command-line ``--param``, fixed flags and ``--seeds`` on top."""
    spec = base or SweepSpec()
    new_params = dict(spec.params)
    given: dict[str, str] = {}
    for text in params:
        name, values = parse_param(text)
        if name in given:
            raise ConfigError(
                "param",
                text,
                f"{name} is swept twice (also {given[name]!r}); give all its values once, e.g. {name}=2,3",
            )
        given[name] = text
        new_params[name] = values
    both = sorted(set(given) & set(fixed or {}))
    if both:
        raise ConfigError(
            "param",
            given[both[0]],
            f"{both[0]} is both swept here and fixed by --{both[0].replace('_', '-')}: give one of them",
        )
    for name in fixed or {}:  # a flag given here overrides the sweep file's values of that knob
        if name in new_params and name not in given:
            del new_params[name]
    new_fixed = {k: v for k, v in {**spec.fixed, **(fixed or {})}.items() if k not in new_params}
    seed_values = spec.seeds
    if seeds is not None:
        seed_values = seed_list(seeds, int(new_fixed.get("seed", 0)))
    elif fixed and "seed" in fixed:
        seed_values = [int(fixed["seed"])]
    new_fixed.pop("seed", None)
    return SweepSpec(params=new_params, fixed=new_fixed, seeds=seed_values)


def describe(combo: dict[str, Any], names: Sequence[str] | None = None) -> str:
    """``depth=4 lr=0.01``: a combination in one short line."""
    names = list(combo) if names is None else names
    return " ".join(f"{n}={combo[n]:g}" if isinstance(combo[n], float) else f"{n}={combo[n]}" for n in names)
