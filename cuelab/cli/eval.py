"""``cuelab eval``, ``cuelab merge`` and ``cuelab report``: batch runs from the shell.

``cuelab eval CONFIG.toml`` or ``cuelab eval --manifest M --model SPEC
--conditions LIST --out DIR``; flags given with a CONFIG override its keys.
``--resume`` continues a cancelled or killed run; ``--shard I/N`` runs one
part of the clips, and ``cuelab merge DIR... -o OUT`` joins the parts.

Speech / scene / event runs: ``cuelab eval --manifest SSEU_MANIFEST --model
SPEC --tasks asr,asc,at [--joint] [--cot] --out DIR`` (no ``--conditions``);
answers are greedy unless ``--sample`` (``--temperature``, ``--top-p``), which
draws one answer per ``--seeds`` entry.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from cuelab.cli.common import add_label_score_argument, add_remote_arguments
from cuelab.cli.listing import CONDITION_FORMS

log = logging.getLogger(__name__)


def register(sub: Any) -> None:
    """Add the ``eval``, ``merge`` and ``report`` sub-commands."""
    p = sub.add_parser(
        "eval",
        help="run a dataset under token conditions and write a run folder",
        description="Batch evaluation: predictions and statistics in a run folder (plots with "
        "--plots).",
    )
    p.add_argument("config", nargs="?", metavar="CONFIG.toml", help="run configuration file")
    p.add_argument(
        "--preset",
        metavar="NAME",
        help="a paper's settings: sseu-bench or concept-tokens (flags given override them; "
        "run.json records both)",
    )
    p.add_argument(
        "--explain",
        action="store_true",
        help="with --preset: print each setting and where it comes from in the paper, then stop",
    )
    p.add_argument("--manifest", metavar="CSV", help="manifest of the clips")
    p.add_argument("--split", help="manifest split to use (default: all rows)")
    p.add_argument("--model", action="append", metavar="SPEC", help="model spec (repeatable)")
    p.add_argument(
        "--conditions",
        metavar="LIST",
        help="comma-separated, any of: " + ", ".join(CONDITION_FORMS) + " (cuelab list conditions)",
    )
    p.add_argument("--corrupt-grid", metavar="P,P", help="adds corrupt:P for each P")
    p.add_argument(
        "--seeds", metavar="LIST", help="seeds of shuffle/corrupt or of --sample draws (default 0)"
    )
    p.add_argument("--labels", help="label set: iemocap, aibo or a,b,c (default: the manifest's)")
    p.add_argument("--task", help="prompt task (default ser)")
    p.add_argument("--norms", metavar="JSON", help="norms profile (default: shipped)")
    p.add_argument("--quant", help="nf4, 8bit, bf16, fp16, fp32 or auto")
    p.add_argument("--device", help="auto, cuda or cpu")
    p.add_argument(
        "--limit",
        type=int,
        help="use only the first N clips of the split (labels still come from the whole split)",
    )
    p.add_argument("--bootstrap", type=int, help="bootstrap resamples (default 1000)")
    p.add_argument("--bootstrap-seed", type=int, help="bootstrap seed (default 0)")
    p.add_argument("--out", metavar="DIR", help="run folder")
    p.add_argument("--shard", metavar="I/N", help="run only shard I of N")
    p.add_argument(
        "--workers", type=int, help="feature processes (default: from the job and the idle cores)"
    )
    p.add_argument(
        "--threads",
        type=int,
        metavar="N",
        help="torch threads (default: $CUELAB_THREADS, $OMP_NUM_THREADS, else the idle cores "
        "less the feature workers)",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --out (alone, `--out DIR --resume` reads the rest from run.json)",
    )
    p.add_argument(
        "--print-config",
        action="store_true",
        help="print the run's configuration as TOML and exit (with only --out: the run in DIR)",
    )
    p.add_argument(
        "--fail-fast",
        action="store_true",
        default=None,
        help="stop at the first clip whose audio or features fail (default: record it in "
        "errors.csv, go on, and exit with status 3)",
    )
    p.add_argument(
        "--allow-pickle", action="store_true", default=None, help="accept .bin/.pt/.pth weights"
    )
    p.add_argument(
        "--trust-remote-code", action="store_true", default=None, help="run a model's own code"
    )
    g = p.add_argument_group("speech / scene / event (SSEU) runs")
    g.add_argument(
        "--tasks", metavar="LIST", help="SSEU tasks answered one by one: asr,asc,at (independent)"
    )
    g.add_argument("--joint", action="store_true", default=None, help="add the joint mode")
    g.add_argument("--cot", action="store_true", default=None, help="add the chain-of-thought mode")
    g.add_argument(
        "--matcher",
        metavar="SPEC",
        help="scene/event text to classes: lexical (default), embeddings:FOLDER or "
        "openai-embeddings:URL[,URL...][#MODEL] (an OpenAI-compatible /v1/embeddings server)",
    )
    g.add_argument(
        "--max-new-tokens", type=int, metavar="N", help="answer length limit (default 256)"
    )
    g.add_argument(
        "--cot-max-new-tokens", type=int, metavar="N", help="CoT answer length limit (default 1024)"
    )
    g.add_argument(
        "--sample",
        action="store_true",
        default=None,
        help="draw one answer per seed (temperature/top-p sampling) instead of one greedy answer",
    )
    g.add_argument(
        "--greedy",
        action="store_const",
        const=False,
        dest="sample",
        help="one greedy answer per clip (repeated for every seed; std 0); overrides a preset",
    )
    g.add_argument(
        "--answers",
        choices=("open", "closed"),
        help="prompts list the classes (closed, the default) or ask in the model's own words "
        "(open, sseu-bench's; needs an embedding --matcher)",
    )
    g.add_argument("--temperature", type=float, metavar="T", help="with --sample (default 0.7)")
    g.add_argument("--top-p", type=float, metavar="P", help="with --sample (default 0.9)")
    add_label_score_argument(p)
    add_remote_arguments(p)
    add_analysis_arguments(p, tables_default=True)
    e = p.add_argument_group("audio edits (the audio channel against the token channel)")
    e.add_argument(
        "--edits",
        metavar="LIST",
        help="audio edits separated by ';', e.g. 'pitch=+2st;pitch=-2st;tempo=1.2' (resynth is "
        "added as the control); writes channels.csv",
    )
    e.add_argument("--edit-engine", choices=("world", "praat"), help="resynthesis engine")
    _plot_arguments(p)
    p.add_argument("--json", action="store_true", help="print summary rows as JSON lines")
    p.set_defaults(func=run_eval_command)

    m = sub.add_parser(
        "merge",
        help="merge shard run folders into one",
        description="Merge run folders made with --shard I/N and report the whole run.",
    )
    m.add_argument("dirs", nargs="+", metavar="DIR", help="shard run folders")
    m.add_argument("-o", "--output", required=True, metavar="OUT", help="merged run folder")
    add_analysis_arguments(m, tables_default=True)
    _plot_arguments(m)
    m.add_argument("--json", action="store_true", help="print summary rows as JSON lines")
    m.set_defaults(func=run_merge_command)

    r = sub.add_parser(
        "report",
        help="rebuild a run folder's tables (and plots with --plots)",
        description="Recompute summary, tests, confusion and Spearman tables (and, with "
        "--plots, the plots).",
    )
    r.add_argument("dir", metavar="DIR", help="run folder")
    add_analysis_arguments(r, tables_default=False)
    _plot_arguments(r)
    r.add_argument("--json", action="store_true", help="print summary rows as JSON lines")
    r.set_defaults(func=run_report_command)

    f = sub.add_parser(
        "repair",
        help="move damaged records of a run's predictions.csv aside",
        description=(
            "Keep every complete record of DIR/predictions.csv and move malformed ones "
            "(and a torn last one) to predictions.quarantine.csv; then --resume redoes them."
        ),
    )
    f.add_argument("dir", metavar="DIR", help="run folder")
    f.set_defaults(func=run_repair_command)


def add_analysis_arguments(p: argparse.ArgumentParser, *, tables_default: bool) -> None:
    """``--holm``, ``--calibrate`` and ``--tables`` / ``--no-tables`` (README "Analysis")."""
    a = p.add_argument_group("analysis (README: Analysis)")
    a.add_argument(
        "--holm",
        choices=("family", "all"),
        help="Holm within the paper's test families (default) or over all of a model's tests",
    )
    a.add_argument(
        "--calibrate",
        metavar="LIST",
        help="calibrated rows beside the raw ones: batch and/or contextual (comma-separated)",
    )
    a.add_argument(
        "--tables",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="write tables/ in the papers' shape (CSV, Markdown, LaTeX)"
        + (" (default: on)" if tables_default else ""),
    )
    p.set_defaults(tables_default=tables_default)


def _calibrate_choices(args: argparse.Namespace) -> list[str] | None:
    text = getattr(args, "calibrate", None)
    if text is None:
        return None
    from cuelab.core.errors import ReportError

    out = [c.strip() for c in text.split(",") if c.strip()]
    bad = [c for c in out if c not in ("batch", "contextual", "none")]
    if bad:
        raise ReportError(f"--calibrate: '{bad[0]}' is not batch, contextual or none")
    return [c for c in out if c != "none"]


def _content_free(folder: Path) -> None:
    """Score the run's content-free inputs once (content_free.csv) for --calibrate contextual."""
    from cuelab.core.runs import CONTENT_FREE_CSV, RunFolder, score_content_free

    if (folder / CONTENT_FREE_CSV).is_file():
        return
    if RunFolder(folder).read_record().is_sseu:
        return
    print(f"scoring the content-free inputs of {folder}", file=sys.stderr)
    score_content_free(folder)


def _plot_arguments(parser: Any) -> None:
    """``--plots`` draws the PNG figures; without it the report writes its tables only.

    Plots were half of a report's time, so the default report (and with it the end of
    every ``eval``) is the tables; ``--no-plots`` is kept for the scripts that pass it.
    """
    parser.add_argument(
        "--plots", action="store_true", help="also draw the PNG plots (slower; default: tables)"
    )
    parser.add_argument("--no-plots", action="store_true", help=argparse.SUPPRESS)


_KEYS = {
    "manifest": "manifest", "split": "split", "model": "models", "conditions": "conditions",
    "corrupt_grid": "corrupt_grid", "seeds": "seeds", "labels": "labels", "task": "task",
    "norms": "norms", "quant": "quant", "device": "device", "limit": "limit",
    "bootstrap": "bootstrap", "bootstrap_seed": "bootstrap_seed", "out": "out",
    "shard": "shard", "workers": "workers", "threads": "threads", "tasks": "sseu_tasks", "joint": "joint",
    "cot": "cot", "matcher": "matcher", "max_new_tokens": "max_new_tokens",
    "cot_max_new_tokens": "cot_max_new_tokens", "sample": "sample",
    "temperature": "temperature", "top_p": "top_p", "scoring": "scoring",
    "prompt_family": "prompt_family", "concurrency": "concurrency", "label_score": "label_score",
    "fail_fast": "fail_fast", "allow_pickle": "allow_pickle",
    "trust_remote_code": "trust_remote_code",
    "preset": "preset", "answers": "answers",
}  # fmt: skip
_KEYS.update({"edits": "edits", "edit_engine": "edit_engine"})
_PATHS = ("manifest", "norms", "out")


def config_from_args(args: argparse.Namespace) -> Any:
    """The run configuration from a CONFIG file and/or flags (flags win)."""
    from cuelab.core.runs import RunConfigError, config_from_mapping, load_config

    given = {
        key: getattr(args, attr) for attr, key in _KEYS.items() if getattr(args, attr) is not None
    }
    for key in _PATHS:
        if isinstance(given.get(key), str) and "\0" in given[key]:
            raise RunConfigError(f"--{key.replace('_', '-')}: the path contains a NUL byte")
        if isinstance(given.get(key), str) and not given[key].strip():
            raise RunConfigError(
                f"--{key.replace('_', '-')} is empty (an unset shell variable?); name a path"
            )
        if key in given:
            given[key] = str(Path(given[key]).resolve())
    if args.config:
        return load_config(args.config, **given)
    if _from_run_folder(args):
        from cuelab.core.runs import RunFolder

        data = {**RunFolder(args.out).read_record().config, **given}
        data.pop("out", None)
        return config_from_mapping({**data, "out": given["out"]}, base_dir=None)
    from cuelab.core.runs import with_preset

    return config_from_mapping(with_preset(given), base_dir=Path.cwd())


def _from_run_folder(args: argparse.Namespace) -> bool:
    """``--out DIR`` with ``--resume`` or ``--print-config`` and no manifest or model: use run.json."""
    wants = bool(getattr(args, "resume", False) or getattr(args, "print_config", False))
    return bool(wants and args.out and not args.config and not args.manifest and not args.model)


def _print_summary(files: Any, as_json: bool) -> None:
    from cuelab.cli.common import json_line
    from cuelab.core.reports import SseuReportFiles

    if isinstance(files, SseuReportFiles):
        _print_sseu(files, as_json)
        return
    for r in files.rows:
        if as_json:
            print(json_line({
                "model": r.model, "condition": r.condition, "seed": r.seed, "n": r.n,
                "uar": r.uar, "uar_ci_low": r.uar_ci_low, "uar_ci_high": r.uar_ci_high,
                "wa": r.wa, "unparsed": r.unparsed,
            }))  # fmt: skip
        else:
            seed = f" seed={r.seed}" if r.seed else ""
            print(
                f"{r.model:<24} {r.condition + seed:<22} n={r.n:<5} UAR {r.uar:.3f} "
                f"[{r.uar_ci_low:.3f}, {r.uar_ci_high:.3f}]  WA {r.wa:.3f}  "
                f"unparsed {r.unparsed:g}"
            )


def _print_sseu(files: Any, as_json: bool) -> None:
    from cuelab.cli.common import json_line

    names = ("wer", "wer_std", "macc", "macc_std", "map", "map_std")
    for r in files.rows:
        if as_json:
            print(json_line({
                "model": r.model, "mode": r.mode, "snr_db": r.snr_db, "n": r.n,
                "n_seeds": r.n_seeds, **{k: r.value(k) for k in names}, **r.counts,
            }))  # fmt: skip
            continue
        cells = []
        for metric, label in (("wer", "WER"), ("macc", "mACC"), ("map", "mAP")):
            value, std = r.value(metric), r.value(f"{metric}_std")
            text = "-" if value != value else f"{value:.1f}"
            cells.append(f"{label} {text}" + (f"±{std:.1f}" if std == std else ""))
        print(f"{r.model:<24} {r.mode:<12} snr={r.snr_db:<5} n={r.n:<5} " + "  ".join(cells))


def _report(folder: Path, args: argparse.Namespace) -> int:
    from cuelab.core.reports import build_report

    calibrate = _calibrate_choices(args)
    if calibrate and "contextual" in calibrate:
        _content_free(folder)
    asked_tables = getattr(args, "tables", None)
    tables = asked_tables if asked_tables is not None else getattr(args, "tables_default", False)
    plots = bool(getattr(args, "plots", False)) and not args.no_plots
    files = build_report(
        folder,
        plots=plots,
        holm=getattr(args, "holm", None),
        calibrate=calibrate,
        tables=bool(tables),
        # a figure of an analysis asked for by name is drawn without --plots
        analysis_plots=plots or asked_tables is True or bool(calibrate),
    )
    _print_summary(files, args.json)
    print(f"report in {folder} ({len(files.plots)} plots)", file=sys.stderr)
    return 0


def run_eval_command(args: argparse.Namespace) -> int:
    """Run (or resume) a batch evaluation, then write its report."""
    from cuelab.cli.common import progress_control
    from cuelab.core.runs import run_eval

    if args.explain:
        return _explain(args)
    config = config_from_args(args)
    if getattr(args, "print_config", False):
        from cuelab.core.runs import config_to_toml

        print(config_to_toml(config, "cuelab run configuration; run it with: cuelab eval FILE"),
              end="")  # fmt: skip
        return 0
    outcome = run_eval(
        config,
        resume=args.resume,
        control=progress_control("eval"),
        command=sys.argv,
        stream_features=True,
    )
    print(
        f"{outcome.folder}: {outcome.rows_written} rows written"
        + (f", {outcome.rows_kept} kept from before" if outcome.rows_kept else ""),
        file=sys.stderr,
    )
    for note in outcome.notes:
        print(f"note: {note}", file=sys.stderr)
    code = 0
    if outcome.failed:
        print(
            f"cuelab: {outcome.failed} clip(s) could not be scored; see "
            f"{outcome.folder / 'errors.csv'} (--resume tries them again)",
            file=sys.stderr,
        )
        code = 3
    if config.shard is not None:
        return code  # statistics of a part mean little; merge the shards for the report
    if getattr(args, "holm", None) is None and config.preset:  # the preset's test families
        from cuelab.core.runs import report_setting

        args.holm = report_setting(config.preset, "holm")
    return _report(outcome.folder, args) or code


def _explain(args: argparse.Namespace) -> int:
    """Print the preset's settings and their sources (explicit flags shown as overrides)."""
    from cuelab.core.runs import RunConfigError, explain

    given: dict[str, Any] = {}
    if args.config:  # a run file's keys (and its preset) count as given, under the flags
        from cuelab.core.runs import read_run_file

        given.update(read_run_file(args.config))
    given.update({key: getattr(args, attr) for attr, key in _KEYS.items()
                  if getattr(args, attr) is not None})  # fmt: skip
    if getattr(args, "holm", None):
        given["holm"] = args.holm
    name = given.pop("preset", None)
    if not name or not isinstance(name, str):
        raise RunConfigError('--explain needs --preset NAME (or preset = "NAME" in CONFIG.toml)')
    print(explain(name, given))
    return 0


def run_merge_command(args: argparse.Namespace) -> int:
    """Merge shard folders and report the merged run."""
    from cuelab.core.runs import merge_runs

    folder, missing = merge_runs(args.dirs, args.output)
    if missing:
        print(f"warning: shards missing: {', '.join(missing)}", file=sys.stderr)
    return _report(folder, args)


def run_report_command(args: argparse.Namespace) -> int:
    """Rebuild the report of a run folder."""
    return _report(Path(args.dir), args)


def run_repair_command(args: argparse.Namespace) -> int:
    """Quarantine the malformed records of a run's predictions.csv."""
    from cuelab.core.errors import CueLabError, one_line
    from cuelab.core.runs import RunFolder, RunRecord

    folder = RunFolder(args.dir)
    path = folder.predictions
    if not path.is_file():
        print(f"cuelab: error: {path} does not exist", file=sys.stderr)
        return 1
    with folder.lock():
        record: RunRecord | None
        try:
            record = folder.read_record()
        except CueLabError as exc:  # repair what can be repaired without the record
            log.warning("%s: %s; repairing the CSV structure only", folder, exc)
            print(f"cuelab: note: {one_line(str(exc))}; checking the CSV structure only",
                  file=sys.stderr)  # fmt: skip
            record = None
        kept, moved, quarantine = folder.repair(record)
    where = f"; moved to {quarantine}" if quarantine else ""
    print(f"{path}: {kept} records kept, {moved} moved aside{where}", file=sys.stderr)
    return 0
