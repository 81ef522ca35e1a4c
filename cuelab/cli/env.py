"""``cuelab env``: the environments of the families that run in their own (``create``, ``list``, ``check``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from cuelab.cli.common import json_line
from cuelab.cli.remedies import with_advice


def register(subparsers: Any) -> None:
    """Add the ``env`` parser and its sub-commands."""
    from cuelab.core.models import isolated_families as families

    parser = subparsers.add_parser(
        "env",
        help="build and inspect the environments of isolated model families",
        description=(
            "Families such as ms-clap or kimi-audio need packages that cannot live in "
            "CueLab's own environment; each runs as a worker in a virtual environment "
            "built from a pinned recipe shipped with CueLab."
        ),
    )
    sub = parser.add_subparsers(dest="env_command", metavar="ACTION", required=True)
    create = sub.add_parser("create", help="build FAMILY's environment from its recipe")
    create.add_argument("family", metavar="FAMILY", choices=families())
    create.add_argument("--dir", metavar="DIR", help="build here instead of the default place")
    create.set_defaults(func=run_create)
    listing = sub.add_parser("list", help="every family's environment: missing, ready or broken")
    listing.add_argument("--json", action="store_true", help="one JSON object per family")
    listing.set_defaults(func=run_list)
    check = sub.add_parser("check", help="check FAMILY's environment (its modules import)")
    check.add_argument("family", metavar="FAMILY", choices=families())
    check.add_argument("--json", action="store_true", help="print one JSON object")
    check.set_defaults(func=run_check)


def run_create(args: argparse.Namespace) -> int:
    """Build the environment, printing each step."""
    from cuelab.core.errors import ModelError
    from cuelab.core.models import create_env

    folder = Path(args.dir) if args.dir else None
    if args.dir is not None and not args.dir.strip():
        raise ModelError("--dir is empty (an unset shell variable?); name a folder")
    args.interrupt_note = (
        f"the unfinished environment is rebuilt from scratch by: cuelab env create {args.family}"
    )
    status = create_env(args.family, folder, lambda msg: print(f"[env] {msg}", file=sys.stderr))
    print(f"{status.family}: {status.state} at {status.path} (Python {status.python})")
    return 0


def run_list(args: argparse.Namespace) -> int:
    """One line (or JSON object) per family."""
    from cuelab.core.models import env_status
    from cuelab.core.models import isolated_families as families

    for family in families():
        status = env_status(family)
        status.reason = with_advice(status.reason, status.remedy)
        if args.json:
            print(json_line(status.as_json()))
        else:
            reason = f" ({status.reason})" if status.reason else ""
            print(f"{family:<18} {status.state:<8} {status.path}{reason}")
    return 0


def run_check(args: argparse.Namespace) -> int:
    """Import the recipe's modules inside the environment; exit 1 unless ready."""
    from cuelab.core.models import READY, env_status, get_recipe

    status = env_status(args.family, deep=True)
    status.reason = with_advice(status.reason, status.remedy)
    recipe = get_recipe(args.family)
    if args.json:
        out = status.as_json()
        out.update(recipe=status.recipe, code=recipe.code, packages=status.packages)
        print(json_line(out))
    else:
        print(f"{status.family}: {status.state} at {status.path}")
        if status.reason:
            print(f"  {status.reason}")
        if status.state == READY:
            for name in ("torch", "transformers", *_code_names(recipe.code)):
                if name in status.packages:
                    print(f"  {name} {status.packages[name]}")
        for note in recipe.notes:
            print(f"  note: {note}")
    return 0 if status.state == READY else 1


def _code_names(code: str) -> list[str]:
    if code.startswith("pypi:"):
        return [code[5:].split("==")[0].lower().replace("_", "-")]
    return []
