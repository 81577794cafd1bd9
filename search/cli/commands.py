"""The sweep subcommands: ``run``, ``resume``, ``reproduce`` and ``report``."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from models import FAMILIES
from search import console, storage
from search.data.facts import describe_dataset
from search.errors import UserError
from search.experiment import Experiment, list_presets, load_experiment, redact, with_output_dir
from search.results import read_trials
from search.vocabulary import ANYTIME_OF

if TYPE_CHECKING:
    from search.sweep import SweepResult

__all__ = ["register"]


def register(subparsers: Any) -> None:
    """Add ``run``, ``resume``, ``reproduce``, ``confirm`` and ``report`` to the ``paretotune``
    parser."""
    run = subparsers.add_parser(
        "run",
        help="run a sweep",
        description="Run a sweep. EXPERIMENT is a YAML file or a preset: "
        + ", ".join(list_presets()),
    )
    run.add_argument("experiment", nargs="?", default="default", metavar="EXPERIMENT")
    run.add_argument("--output", "-o", metavar="DIR", help="output dir (default results/<name>)")
    run.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a field, e.g. --set num_trials=8 --set resources.gpus_per_trial=0.25",
    )
    run.add_argument("--address", help="Ray cluster address (default: RAY_ADDRESS or local)")
    run.add_argument(
        "--dry-run",
        action="store_true",
        help="print the plan, make every check the run makes before its first trial, and exit "
        "(nothing is written)",
    )
    run.add_argument("--no-report", action="store_true", help="skip report.html")
    run.set_defaults(func=_run)

    resume = subparsers.add_parser("resume", help="continue an interrupted sweep")
    resume.add_argument("output_dir", metavar="DIR")
    resume.add_argument("--address", help="Ray cluster address (default: RAY_ADDRESS or local)")
    resume.add_argument("--no-report", action="store_true", help="skip report.html")
    resume.set_defaults(func=_resume)

    again = subparsers.add_parser(
        "reproduce",
        help="retrain one trial from its stored configuration and seed; compare the metrics",
    )
    again.add_argument("output_dir", metavar="DIR")
    again.add_argument("trial_id", metavar="TRIAL_ID", help="Tune trial id or study trial number")
    again.add_argument(
        "--seed",
        type=int,
        metavar="R",
        help="a trial trained with replicates: retrain its seed R (0-based) alone",
    )
    again.set_defaults(func=_reproduce)

    sure = subparsers.add_parser(
        "confirm",
        help="re-train with fresh seeds the configurations whose place on the front is uncertain",
    )
    sure.add_argument("output_dir", metavar="DIR")
    sure.add_argument(
        "--seeds", type=int, default=2, metavar="K", help="new seeds per configuration (2)"
    )
    sure.add_argument(
        "--max-trainings", type=int, default=8, metavar="M", help="trainings in all (8)"
    )
    sure.add_argument("--no-report", action="store_true", help="skip report.html")
    sure.set_defaults(func=_confirm)

    report = subparsers.add_parser("report", help="write report.html for a results dir")
    report.add_argument("output_dir", metavar="DIR")
    report.add_argument("--png", action="store_true", help="also write PNGs (kaleido + Chromium)")
    report.set_defaults(func=_report)


def _run(args: argparse.Namespace) -> int:
    from search.sweep import preflight, resolve_ray_address, run

    # the address first: its form and that it answers; the sweep (or the dry run's preflight)
    # is handed the resolved address and checks it no second time
    ray_address = resolve_ray_address(args.address)
    exp = load_experiment(args.experiment, args.overrides)  # validated here, once
    if args.output is not None:  # checked like the output_dir field ('' is refused, not ignored)
        exp = with_output_dir(exp, args.output)
    args.where = exp.output_location()
    _print_plan(exp, log=not args.debug)
    with console.libraries_to_log("run", enabled=not args.debug):
        if args.dry_run:  # the run's own checks, up to its first trial
            with preflight(exp, ray_address, dry_run=True) as ready:
                pass
        else:
            result = run(exp, address=ray_address, report=not args.no_report)
    if args.dry_run:
        later = " (the run downloads the data)" if ready.data is None else ""
        console.say(f"Preflight: every check passed{later}; nothing was written")
        return 0
    _print_outcome(result, log=not args.debug)
    return 0


def _resume(args: argparse.Namespace) -> int:
    from search.sweep import resume, stored_experiment

    args.where = args.output_dir
    exp = stored_experiment(args.output_dir)  # read and validated here, once
    _print_plan(exp, resuming=True, log=not args.debug)
    with console.libraries_to_log("resume", enabled=not args.debug):
        result = resume(
            args.output_dir, address=args.address, report=not args.no_report, experiment=exp
        )
    _print_outcome(result, log=not args.debug)
    return 0


def _results_dir(command: str, output_dir: str) -> tuple[storage.Where, dict[str, Any]]:
    """A results folder (or object-store URI) and its ``trials.json``, read and checked once
    (:func:`search.results.read_trials`)."""
    if "\0" in output_dir:
        raise UserError(f"{command} {output_dir!r}: not a folder path (it holds a NUL byte)")
    out: storage.Where
    if storage.is_uri(output_dir):
        out = storage.normalize(output_dir)
        if not storage.is_dir(out):
            what = "a file, not a results folder" if storage.exists(out) else "nothing there"
            raise UserError(f"{command} {out}: {what}")
    else:
        try:
            out = Path(output_dir).expanduser()
        except RuntimeError as exc:  # ~someone without a home here
            raise UserError(f"{command} {output_dir}: cannot expand the path ({exc})") from None
        if not out.is_dir():
            what = "a file, not a results folder" if out.exists() else "no such folder"
            raise UserError(f"{command} {out}: {what}")
    path = storage.join(out, "trials.json")
    if not storage.is_file(path):
        raise UserError(f"{command} {out}: no trials.json there; run a sweep first")
    try:
        return out, read_trials(out)
    except UserError as exc:
        raise UserError(f"{command} {exc}") from None


def _confirm(args: argparse.Namespace) -> int:
    import optuna

    from search.results import export_results
    from search.sweep import open_study
    from search.sweep.confirm import check_confirmable, confirm

    out, trials = _results_dir("confirm", args.output_dir)
    args.where = out
    if not isinstance(out, Path):
        raise UserError(f"confirm {out}: works on a local results folder")
    try:
        exp = load_experiment(out / "experiment.yaml")  # read and validated here, once
    except UserError as exc:
        raise UserError(f"confirm {out}: experiment.yaml: {exc}") from None
    with console.libraries_to_log("confirm", enabled=not args.debug):
        study = open_study(exp, create=False)
        running = sum(t.state == optuna.trial.TrialState.RUNNING for t in study.trials)
        check_confirmable(trials["trials"], running, out, args.max_trainings, args.seeds)
        console.keep_log_in(out)
        try:
            outcome = confirm(
                out,
                experiment=exp,
                rows=list(trials["trials"]),
                objectives=trials["objectives"],
                seeds=args.seeds,
                max_trainings=args.max_trainings,
                say=console.say,
            )
        except KeyboardInterrupt:
            export_results(study, out, experiment=exp.to_dict())
            console.say(
                f"confirm: interrupted; every finished seed is kept in {out}/confirmations.json "
                f"(run `paretotune confirm {out}` again to continue)",
                err=True,
            )
            return 130
        export_results(study, out, experiment=exp.to_dict())
    console.say(
        f"confirm: {len(outcome.trained)} seed(s) trained; stopped: {outcome.stopped_because}"
    )
    left = ", ".join(f"{t} ({outcome.probability[t]:.2f})" for t in outcome.uncertain)
    console.say(f"  still uncertain: {left}" if left else "  no configuration is uncertain")
    if not args.no_report:
        from search.report import write_report

        console.say(f"report: {write_report(out)}")
    return 0


def _report(args: argparse.Namespace) -> int:
    out, trials = _results_dir("report", args.output_dir)
    args.where = out
    from search.report import write_report

    written = write_report(out, png=args.png, trials=trials)
    print(f"report: {written}")
    for path in written.pngs.values():
        print(f"png:    {path}")
    return 0


def _reproduce(args: argparse.Namespace) -> int:
    out, trials = _results_dir("reproduce", args.output_dir)
    args.where = out
    if not isinstance(out, Path):
        raise UserError(
            f"reproduce {out}: reads a local results folder; copy experiment.yaml and "
            "trials.json from the object store into one first"
        )
    if not (out / "experiment.yaml").is_file():
        raise UserError(f"reproduce {out}: no experiment.yaml there")
    try:
        exp = load_experiment(out / "experiment.yaml")  # read and validated here, once
    except UserError as exc:
        raise UserError(f"reproduce {out}: experiment.yaml: {exc}") from None
    from search.reproduce import COMPARED, check_seed_index, find_trial, reproduce

    row = find_trial(trials["trials"], args.trial_id, out)  # refused before anything else
    check_seed_index(row, args.seed)
    print(f"Retraining trial {args.trial_id} of {args.output_dir} ...", flush=True)
    with console.libraries_to_log("reproduce", enabled=not args.debug):
        console.keep_log_in(out)  # DeepSpeed's and torch's lines: appended to the sweep's log
        result = reproduce(out, args.trial_id, experiment=exp, trials=trials, seed=args.seed)
    print(f"trial {result.trial_id} ({result.family}): {json.dumps(result.config)}")
    print(f"  {'metric':<14} {'stored':>12} {'reproduced':>12} {'difference':>12}")
    for metric in COMPARED:
        stored, again = result.stored.get(metric), result.reproduced.get(metric)
        diff = result.difference(metric)
        print(f"  {metric:<14} {_fmt(stored):>12} {_fmt(again):>12} {_fmt(diff):>12}")
    return 0


def _print_plan(exp: Experiment, *, resuming: bool = False, log: bool) -> None:
    from search.experiment.estimate import estimate_sweep
    from spaces import SPACES

    ds = exp.dataset
    res = exp.resources
    lines = [
        f"{'Resuming' if resuming else 'Plan'}: experiment {exp.name!r}",
        f"  dataset     {describe_dataset(dataclasses.asdict(ds))}"
        + (f" from {ds.data_dir}" if ds.data_dir else ""),
        f"  families    {', '.join(exp.families)}",
        f"  trials      {exp.num_trials} x up to {exp.epochs} epochs"
        + (f" x {exp.replicates} seeds (objective: their mean)" if exp.replicates > 1 else "")
        + f"; sampler {exp.sampler}, "
        f"families {_allocation(exp)}, early stopping {exp.scheduler.name}",
        f"  recipe      augment {exp.augment_policy()}, precision {exp.training.precision}, "
        f"ZeRO stage {exp.training.zero_stage}"
        + (f", anytime Perceiver ({exp.training.anytime_loss})" if exp.training.anytime else ""),
        "  objectives  " + ", ".join(f"{k} ({v})" for k, v in exp.objectives.items()),
    ]
    lines.append(f"  cost        {estimate_sweep(exp).describe()}")
    if exp.budget.max_flops or exp.budget.max_params:
        lines.append(
            f"  budget      max_flops={exp.budget.max_flops} max_params={exp.budget.max_params}"
        )
    lines.append(
        f"  resources   {res.cpus_per_trial:g} CPU + {res.gpus_per_trial:g} GPU per "
        f"{'worker' if res.workers_per_trial > 1 else 'trial'}"
        + (f", {res.workers_per_trial} workers per trial" if res.workers_per_trial > 1 else "")
        + f", {res.max_concurrent_trials} at once"
    )
    for fam in exp.families:
        fixed = {k.split(".", 1)[1]: v for k, v in exp.space.items() if k.startswith(fam + ".")}
        note = f" (narrowed: {json.dumps(fixed)})" if fixed else ""
        lines.append(
            f"  space       {fam}: spaces/{SPACES[fam].__module__.split('.')[-1]}.py{note}"
        )
    training = {k: v for k, v in exp.space.items() if k.split(".", 1)[0] not in FAMILIES}
    if training:  # optimizer, adamw.lr / lamb.lr, weight_decay, batch_size...: every family's
        lines.append(f"  space       training: spaces/common.py (narrowed: {json.dumps(training)})")
    lines.append(f"  output      {exp.output_location()}")
    lines.append(f"  study       {redact(exp.storage_url())}")
    if log:
        where = storage.join(exp.output_location(), console.LOG_NAME)
        lines.append(f"  log         {where} (Optuna, Ray, DeepSpeed; --debug prints it here)")
    console.say("\n".join(lines))


def _print_outcome(result: SweepResult, *, log: bool) -> None:
    counts = ", ".join(f"{n} {s.lower()}" for s, n in sorted(result.counts().items()))
    anytime = sum(1 for row in result.trials if row.get(ANYTIME_OF))
    extra = f" ({anytime} of the complete are anytime points of other trials)" if anytime else ""
    cols = list(result.objectives)
    # an accuracy with its evaluation set's 95 % Wilson interval beside it
    spans = [c for c in cols if any(r.get(f"{c}_low") is not None for r in result.front)]
    lines = [
        f"\nTrials: {counts}{extra}",
        f"Pareto-optimal trials ({len(result.front)}):",
        f"  {'trial':<14} {'family':<10} "
        + " ".join(f"{c:>14}" for c in cols)
        + "".join(f" {c + ' 95%':>18}" for c in spans)
        + f" {'P(front)':>8}  config",
    ]
    for row in result.front:
        values = (
            " ".join(f"{_fmt(row.get(c)):>14}" for c in cols)
            + "".join(f" {_span(row, c):>18}" for c in spans)
            + f" {_probability(row.get('front_probability')):>8}"
        )
        config = {k: v for k, v in row["config"].items() if k != "family"}
        lines.append(f"  {row['trial_id']:<14} {row['family']:<10} {values}  {json.dumps(config)}")
    lines += _membership_notes(result)
    out = result.output_dir
    url = result.experiment.storage_url()
    lines += [
        f"\nResults: {out}",
        f"  trials   {storage.join(out, 'trials.csv')} (and trials.json)",
        f"  study    {redact(url)}  (open it: optuna-dashboard {redact(url)})",
    ]
    if storage.exists(result.report_html):
        lines.append(f"  report   {result.report_html}")
    if log:
        lines.append(f"  log      {storage.join(out, console.LOG_NAME)}")
    console.say("\n".join(lines))


def _probability(value: Any) -> str:
    return "-" if not isinstance(value, (int, float)) else f"{value:.2f}"


def _membership_notes(result: SweepResult) -> list[str]:
    """What P(front) means, and which families' probabilities lack seed data (too sure)."""
    seed_sd = result.membership.get("seed_sd") or {}
    unseeded = sorted(f for f, sd in seed_sd.items() if sd is None)
    if not seed_sd:
        return []
    lines = [
        "  P(front): how likely the configuration is to be non-dominated when its accuracy is "
        'redrawn from its noise (docs/architecture.md, "Front membership")'
    ]
    if unseeded:
        lines.append(
            f"  no seed replicates yet for {', '.join(unseeded)}: their P(front) counts the "
            "evaluation set's noise only and is too sure"
        )
    return lines


def _span(row: dict[str, Any], column: str) -> str:
    """``[0.8561, 0.8703]``: ``column``'s recorded interval in ``row``, or "-"."""
    low, high = row.get(f"{column}_low"), row.get(f"{column}_high")
    return "-" if low is None or high is None else f"[{low:.4f}, {high:.4f}]"


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 10 else f"{value:.4g}"
    return str(value)


def _allocation(exp: Experiment) -> str:
    if exp.family_trials:
        return "in shares " + ", ".join(f"{f} {n}" for f, n in exp.family_trials.items())
    return "in equal shares" if exp.family_allocation == "equal" else "by the sampler"
