"""Command-line options as data: each declared once, with its flag, help, default and allowed values.

An `Option` adds itself to an argparse parser (`add`) and writes its value back as arguments (`argv`), so the
declaration that parses `bench train --seed 3` is also the one that passes a seed on to a training child:
nothing is serialised by hand. A `Group` is options that go together (under a heading of `--help`). The
commands' shared options are declared in bench/commands/common.py; a launcher declares its own (launch.py).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence


@dataclass(frozen=True)
class Option:
    flag: str
    help: str
    dest: str | None = None  # the attribute of the parsed arguments (default: the flag's words, underscored)
    default: Any = None
    type: Callable | None = None
    choices: Sequence | None = None
    metavar: str | None = None
    switch: bool = False  # takes no value: present means true
    path: bool = False  # a file or folder: passed on to a child process as an absolute path
    nargs: str | None = None

    @property
    def name(self) -> str:
        return self.dest or self.flag.lstrip("-").replace("-", "_")

    def add(self, parser) -> None:
        if self.switch:
            parser.add_argument(self.flag, dest=self.name, action="store_true", help=self.help)
            return
        parser.add_argument(self.flag, dest=self.name, default=self.default, type=self.type,
                            choices=list(self.choices) if self.choices is not None else None,
                            metavar=self.metavar, nargs=self.nargs, help=self.help)

    def argv(self, value) -> list[str]:
        """The arguments that give this option `value` to a command that declares it (none for an unset value)."""
        if self.switch:
            return [self.flag] if value else []
        if value is None:
            return []
        if self.path:
            return [self.flag, str(Path(value).expanduser().resolve())]
        return [self.flag, repr(value) if isinstance(value, float) else str(value)]


@dataclass(frozen=True)
class Group:
    """Options shown together in `--help`, under `title` (None: among the command's own options)."""

    options: tuple[Option, ...]
    title: str | None = None
    description: str | None = None

    def add(self, parser: argparse.ArgumentParser) -> None:
        target = parser.add_argument_group(self.title, self.description) if self.title else parser
        for option in self.options:
            option.add(target)

    def values(self, args: argparse.Namespace) -> dict[str, Any]:
        """This group's options as parsed: {name: value}, for those the command declared."""
        return {option.name: getattr(args, option.name) for option in self.options if hasattr(args, option.name)}

    def argv(self, values: dict[str, Any]) -> list[str]:
        """Arguments giving each option of the group the value `values` holds for it (absent ones: none)."""
        return [part for option in self.options if option.name in values for part in option.argv(values[option.name])]
