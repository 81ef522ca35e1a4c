"""``cuelab gui [AUDIO] [--screenshot PNG]``: the desktop window."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``gui`` sub-command."""
    p = subparsers.add_parser(
        "gui",
        help="open the desktop window (the default with no arguments)",
        description="Open the CueLab window on AUDIO, or on the bundled demo dataset.",
    )
    p.add_argument("audio", nargs="?", help="an audio file to open (default: the demo dataset)")
    p.add_argument(
        "--screenshot",
        metavar="PNG",
        help="save a PNG once every panel has drawn, then exit (0 on success)",
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=180.0,
        metavar="S",
        help="with --screenshot: give up after S seconds with exit status 3 (default 180)",
    )
    p.add_argument(
        "--model",
        default=None,
        metavar="SPEC",
        help="model loaded at start, family:location (default: the last session's model, else "
        "the shipped reference; 'none' for none)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Start the window (Qt is imported only here); without a display, one line and exit 1."""
    import sys

    from cuelab.cli.display import NO_DISPLAY_HINT, display_problem

    problem = display_problem()
    if problem:
        print(f"cuelab: error: {problem}; {NO_DISPLAY_HINT}", file=sys.stderr)
        return 1
    from cuelab.ui.app import run_gui

    if args.model is None:  # the last session's manifest, model and norms
        return run_gui(args.audio, args.screenshot, args.timeout, "reference", restore=True)
    model = None if args.model.strip().lower() == "none" else args.model
    return run_gui(args.audio, args.screenshot, args.timeout, model)
