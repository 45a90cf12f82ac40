"""The ``vrgv`` command line: one sub-command per module in this package, mirroring the Python API.

Each module ``vrgv.cli.<name>`` defines ``HELP`` (one line), ``add_arguments(parser)`` and
``run(args) -> int``; heavy imports happen inside ``run`` so ``vrgv --help`` is instant and torch-free.
Errors derived from :class:`vrgv.errors.VrgvError` print as one message without a traceback
(``--debug`` shows it) and exit non-zero.
"""
from __future__ import annotations

import argparse
import logging
import sys
from importlib import import_module

from vrgv.errors import VrgvError

COMMANDS = ("demo", "ground", "extract", "batch", "eval", "synth", "train", "export", "bench")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vrgv",
        description="Visual relation grounding in videos: find when subject-predicate-object holds and where.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors on stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = import_module(f"vrgv.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"vrgv.cli.{name}":
                continue  # sub-command not part of this build
            raise
        p = sub.add_parser(name, help=module.HELP, description=getattr(module, "DESCRIPTION", module.HELP),
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(p)
        p.set_defaults(_module=module)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.DEBUG if args.debug else (logging.WARNING if args.quiet else logging.INFO)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    if not getattr(args, "command", None):
        parser.print_help()
        return 1
    try:
        return int(args._module.run(args) or 0)
    except VrgvError as exc:
        if args.debug:
            raise
        print(f"vrgv {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"vrgv {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except (OSError, MemoryError) as exc:
        if args.debug:
            raise
        print(f"vrgv {args.command}: error: {exc} (rerun with --debug for details)", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
