"""Command line of the suite: ``python -m bench COMMAND``, one module per command in bench/commands/.

User mistakes (a bad spec, a bad option, missing data) end as one line on stderr and exit status 2, never a
traceback.
"""

from __future__ import annotations

import argparse
import difflib
import sys
import tempfile
from pathlib import Path

import variants

from . import stopping
from .commands import commands
from .commands.common import SPEC_EPILOG
from .errors import OutOfSpace, UserError


class _CommandListFormatter(argparse.RawDescriptionHelpFormatter):
    """Each command's help on one line beside its name: argparse measures the command names without the
    indentation it then prints them at, so the longest (`dashboard`) would push its help to the next line."""

    def __init__(self, prog: str):
        super().__init__(prog, max_help_position=16, width=130)
        self._action_max_length = 16


class _Formatter(argparse.HelpFormatter):
    """Descriptions wrapped to the terminal's width; a text with line breaks of its own (an epilog's list of
    spec keys, a torchrun example) is kept as written."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if "\n" in text.strip():
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)


def build_parser() -> argparse.ArgumentParser:
    """The parser of `python -m bench`; its `commands` maps each command's name to its own parser."""
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmark suite for ResNet variants (He et al. 2015, Bag of Tricks).",
        epilog=SPEC_EPILOG,
        formatter_class=_CommandListFormatter,
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    parser.commands = {}
    for command in commands():
        sub = subparsers.add_parser(command.name, help=command.help, description=command.description or command.help,
                                    epilog=command.epilog, formatter_class=_Formatter)
        command.configure(sub)
        sub.set_defaults(run=command.run)
        parser.commands[command.name] = sub
    return parser


# Options other training tools have, and where their setting lives here.
ELSEWHERE_NAMES = {
    "--epochs": "a run's length is its recipe's, times --scale: --recipe smoke for a short one, --scale 0.1 for a tenth",
    "--iterations": "a run's length is its recipe's, times --scale",
    "--lr": "the learning rate is the recipe's (--recipe; docs/training.md); a suite file can define its own",
    "--gpus": "one run uses one device (--device cuda:I); torchrun --nproc-per-node N for data parallelism",
}


def _options(parser: argparse.ArgumentParser) -> list[str]:
    return [name for action in parser._actions for name in action.option_strings if name.startswith("--")]


def unknown_arguments(parser: argparse.ArgumentParser, command: str, unknown: list[str]) -> str:
    """What argparse leaves unparsed, as two lines: the command's short usage, then each unknown option with the
    command's closest ones (difflib) and the other commands that take it; argparse alone prints the top-level
    usage and names no option of the command."""
    sub = parser.commands[command]
    positionals = " ".join((action.metavar or action.dest.upper()) + (" ..." if action.nargs in ("+", "*") else "")
                           for action in sub._actions if not action.option_strings)
    usage = f"usage: {sub.prog} [OPTIONS] {positionals}".rstrip() + f"  ({sub.prog} --help lists the options)"
    own = _options(sub)
    problems, previous = [], ""
    for given in unknown:
        if not given.startswith("-"):
            if not previous.startswith("-") or "=" in previous:  # else the value of the unknown option before it
                problems.append(f"unexpected argument {given!r}")
            previous = given
            continue
        previous = given
        name = given.split("=", 1)[0]
        words = f"{sub.prog} has no option {name}"
        close = difflib.get_close_matches(name, own, n=3, cutoff=0.7)
        if close:
            words += f"; did you mean {' or '.join(close)}?"
        elsewhere = [other for other, its in parser.commands.items() if other != command and name in _options(its)]
        if elsewhere:
            words += f" ({name} is an option of {', '.join(elsewhere)})"
        elif name in ELSEWHERE_NAMES:
            words += f" ({ELSEWHERE_NAMES[name]})"
        problems.append(words)
    return f"{usage}\nerror: {'; '.join(problems)}"


def _check_writable(results_dir: str) -> None:
    """Before any work: a results folder that cannot be written is named as the option it came from."""
    try:
        Path(results_dir).mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=results_dir):
            pass
    except OSError as error:
        raise UserError(f"--results-dir {results_dir} is not writable ({error.strerror or error})") from None


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    given = list(sys.argv[1:] if argv is None else argv)
    if not given:  # `python -m bench` alone: what there is to do, a line each
        parser.print_help()
        return 2
    args, unknown = parser.parse_known_args(given)
    if unknown:
        print(unknown_arguments(parser, args.command, unknown), file=sys.stderr)
        return 2
    args.argv = given
    try:
        if getattr(args, "results_dir", None) is not None:
            _check_writable(args.results_dir)
        return args.run(args)
    except (variants.SpecError, UserError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except OutOfSpace as error:  # what was recorded is intact; the same command resumes once there is room
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as stopped:  # Ctrl-C or a stopping signal before a command's own handling
        print("\ninterrupted", file=sys.stderr)
        return stopping.exit_status(stopped)
    except OSError as error:  # an unwritable results folder, a full disk: the environment, not the code
        print(f"error: {error}", file=sys.stderr)
        return 2
