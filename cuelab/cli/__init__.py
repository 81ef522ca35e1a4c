"""The ``cuelab`` command and its sub-commands.

Each sub-command lives in its own module under :mod:`cuelab.cli` and exposes
``register(subparsers)``, which adds its parser and sets ``func``. The
dispatcher turns every :class:`~cuelab.core.errors.CueLabError` (and any
other exception) into one line on stderr and a non-zero exit; ``--debug``
shows the traceback instead. The full detail always goes to the log file.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import signal
import sys
import threading
from collections.abc import Sequence

from cuelab import __version__
from cuelab.logs import log_path, setup_logging

# Sub-command modules, imported on start (each keeps heavy imports inside its handler).
COMMAND_MODULES = [
    "cuelab.cli.tokens",
    "cuelab.cli.predict",
    "cuelab.cli.norms",
    "cuelab.cli.train_reference",
    "cuelab.cli.mix",
    "cuelab.cli.sseu",
    "cuelab.cli.eval",
    "cuelab.cli.gui",
    "cuelab.cli.importers",
    "cuelab.cli.env",
    "cuelab.cli.edit",
    "cuelab.cli.sweep",
    "cuelab.cli.annotations",
    "cuelab.cli.listing",
    "cuelab.cli.doctor",
]

log = logging.getLogger("cuelab")


def build_parser() -> argparse.ArgumentParser:
    """Return the top-level parser with every sub-command registered."""
    parser = argparse.ArgumentParser(
        prog="cuelab",
        description="CueLab: study how audio language models use acoustic cues.",
    )
    parser.add_argument("--version", action="version", version=f"cuelab {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


class Terminated(KeyboardInterrupt):
    """SIGTERM, turned into an exception so that runs stop as on Ctrl-C (marked, resumable)."""


def _on_sigterm(signum: int, frame: object) -> None:
    raise Terminated()


def _after_interrupt(args: argparse.Namespace) -> str:
    """What the user can do after an interrupt: a command may say (``interrupt_note``)."""
    return str(getattr(args, "interrupt_note", None) or "a run continues with --resume")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``cuelab`` script; returns the exit status."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(args_list)
    setup_logging(debug=args.debug)
    func = getattr(args, "func", None)
    if func is None:
        if "cuelab.cli.gui" in COMMAND_MODULES:
            args = parser.parse_args(["gui", *args_list])
            func = args.func
        else:
            parser.print_help()
            return 0
    previous = None
    if args.command != "gui" and threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _on_sigterm)  # the window has its own
    try:
        result = func(args)
    except Terminated:
        print(f"cuelab: terminated (SIGTERM); {_after_interrupt(args)}", file=sys.stderr)
        return 143
    except KeyboardInterrupt:
        print(f"cuelab: interrupted; {_after_interrupt(args)}", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:
        from cuelab.core.errors import CueLabError

        log.debug("command %s failed", args.command, exc_info=True)
        if args.debug:
            raise
        from cuelab.cli.remedies import cli_text
        from cuelab.core.errors import one_line

        if isinstance(exc, CueLabError):
            print(f"cuelab: error: {cli_text(exc)}", file=sys.stderr)
        elif isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
            # the system refused a file (full disk, permissions, quota): not a CueLab bug
            where = one_line(str(exc.filename))
            print(f"cuelab: error: {where}: {exc.strerror}", file=sys.stderr)
        else:
            print(
                f"cuelab: internal error: {type(exc).__name__}: {exc} (details in {log_path()})",
                file=sys.stderr,
            )
        return 1
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return int(result or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
