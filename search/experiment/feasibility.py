"""The search space's feasibility, judged when an experiment loads: every ``space`` key is a
parameter of some family's space, every overridden choice is part of some valid model, and the
cost budget leaves a proposal that fits. Proposals are drawn by a stand-in trial (no Optuna, a
few ms), so a sweep that could train nothing is refused before it starts."""

from __future__ import annotations

import dataclasses
import difflib
import functools
import math
import random
from typing import TYPE_CHECKING, Any, Protocol

from models import FAMILIES
from search.data.facts import model_shape
from search.errors import UserError
from search.experiment.limits import MAX_COUNT, MAX_FLOPS, MAX_PARAMS
from search.experiment.schema import Experiment

if TYPE_CHECKING:
    from spaces import SpaceContext

__all__ = ["check_space"]


@functools.cache
def _train_choice_rules() -> dict[str, tuple[str, Any]]:
    """Checks of the training parameters' choices (the model ones are checked by ``models``)."""
    from spaces.common import OPTIMIZERS

    return {
        "optimizer": (f"one of {', '.join(OPTIMIZERS)}", lambda v: v in OPTIMIZERS),
        "batch_size": (
            "whole numbers from 1 to 65536",
            lambda v: type(v) is int and 1 <= v <= 65536,
        ),
        "warmup_epochs": (
            f"whole numbers from 0 to {MAX_COUNT}",
            lambda v: type(v) is int and 0 <= v <= MAX_COUNT,
        ),
        "label_smoothing": (
            "numbers in [0, 1)",
            lambda v: type(v) in (int, float) and 0 <= v < 1,
        ),
    }


#: Upper ends of the training ranges (a learning rate above 1 only diverges).
_RANGE_HIGH = {"adamw.lr": 1.0, "lamb.lr": 1.0, "weight_decay": 10.0}
_DRAWS = 200  # random proposals tried before a family (or one choice) is judged never valid


@functools.lru_cache(maxsize=1)
def _parameter_kinds() -> dict[str, str]:
    """Every search-space parameter -> how it is searched (``choice``, ``patch``, ``range``)."""
    from spaces import SPACES, SpaceContext
    from spaces.common import training

    kinds: dict[str, str] = {}
    ctx = SpaceContext(image_size=64)  # 64: every default patch size divides it
    for k in range(8):  # the space once per choice index: every conditional branch appears
        probe = DrawTrial(random.Random(k), index=k)
        for family in FAMILIES:
            SPACES[family](probe, ctx)  # type: ignore[arg-type]
        training(probe, ctx)  # type: ignore[arg-type]
        kinds.update(probe.kinds)
    return kinds


class DrawTrial:
    """A stand-in Optuna trial: draws every parameter at random (``index``: takes choice
    ``index`` of each, modulo; ``cheapest``: the smallest number, the largest patch), optionally
    forcing one parameter to one value. Records how each parameter is searched."""

    def __init__(
        self,
        rng: random.Random,
        *,
        forced: tuple[str, Any] | None = None,
        index: int | None = None,
        cheapest: bool = False,
    ) -> None:
        self.rng = rng
        self.forced = forced
        self.index = index
        self.cheapest = cheapest
        self.hit = False  # the forced parameter was suggested
        self.reachable = True  # ... and its value was among the choices offered
        self.kinds: dict[str, str] = {}

    def suggest_categorical(self, name: str, choices: Any) -> Any:
        choices = list(choices)
        self.kinds[name] = "patch" if name.endswith("patch_size") else "choice"
        if self.forced is not None and name == self.forced[0]:
            self.hit = True
            value = self.forced[1]
            if any(type(c) is type(value) and c == value for c in choices):
                return value
            self.reachable = False  # filtered out (a patch size that does not divide the image)
        if self.index is not None:
            return choices[self.index % len(choices)]
        if self.cheapest:
            numbers = [c for c in choices if type(c) in (int, float)]
            if numbers:
                return max(numbers) if name.endswith("patch_size") else min(numbers)
            return choices[0]
        return self.rng.choice(choices)

    def suggest_float(self, name: str, low: float, high: float, **kw: Any) -> float:
        self.kinds[name] = "range"
        if self.cheapest or self.index is not None:
            return low
        if kw.get("log"):
            return math.exp(self.rng.uniform(math.log(low), math.log(high)))
        return self.rng.uniform(low, high)


def check_space(exp: Experiment) -> None:
    """Every ``space`` key must be a parameter of some family's space (catches typos) and its
    value well formed; for the experiment's families, every overridden choice must be part of
    some valid model, and the cost budget must leave every family (with equal shares) or some
    family (sampler's choice) a proposal that fits. Keys of families not in this experiment are
    only checked for form, so ``--set families=[vit]`` works on presets."""
    kinds = _parameter_kinds()
    known = ["family", *kinds]
    for key, value in exp.space.items():
        if key == "family":
            raise UserError(
                f"space.family={value!r}: the families searched come from `families` "
                "(e.g. --set families=[vit,mixer]), not from the space"
            )
        if key not in kinds:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f" (did you mean {'space.' + close[0]!r}?)" if close else ""
            raise UserError(
                f"space.{key}: not a search-space parameter{hint}; allowed: family-prefixed "
                f"names such as perceiver.num_latents (see spaces/), or "
                f"{', '.join(k for k in known if '.' not in k and k != 'family')}"
            )
        _check_override_value(key, value, kinds[key])
    _check_proposals(exp, kinds)


def _check_override_value(key: str, value: Any, kind: str) -> None:
    from spaces._context import check_override

    try:
        items = check_override(key, value, kind)  # type: ignore[arg-type]
    except ValueError as exc:
        raise UserError(str(exc)) from None
    rules = _train_choice_rules()
    if key in rules:
        allowed, ok = rules[key]
        for item in items:
            if not ok(item):
                raise UserError(f"space.{key}={value!r}: choice {item!r}: allowed: {allowed}")
    if kind == "range" and key in _RANGE_HIGH and float(items[1]) > _RANGE_HIGH[key]:
        raise UserError(
            f"space.{key}={value!r}: high must be <= {_RANGE_HIGH[key]:g}; allowed: "
            f"[low, high] with 0 < low <= high <= {_RANGE_HIGH[key]:g}"
        )


class _Draw(Protocol):
    """``_check_proposals``'s ``draw``: one proposal of ``family`` drawn by a :class:`DrawTrial`
    (``how``: its options), and why it is invalid (None: valid)."""

    def __call__(
        self, family: str, rng: random.Random, context: SpaceContext = ..., **how: Any
    ) -> tuple[DrawTrial, dict[str, Any], str | None]: ...


def _check_proposals(exp: Experiment, kinds: dict[str, str]) -> None:
    """Draw proposals from each family's space (no Optuna, a few ms): refuse an overridden
    choice that is never part of a valid model (so no family is left without one: with every
    choice possible, some draw is valid), or a budget nothing fits."""
    import models
    from models.cost import estimate
    from spaces import SPACES, SpaceContext

    size = exp.dataset.image_size
    in_channels, num_classes = model_shape(exp.dataset.name, exp.dataset.synthetic)
    ctx = SpaceContext(image_size=size, in_channels=in_channels, overrides=exp.space)

    def draw(
        family: str, rng: random.Random, context: SpaceContext = ctx, **how: Any
    ) -> tuple[DrawTrial, dict[str, Any], str | None]:
        trial = DrawTrial(rng, **how)
        try:
            hp = SPACES[family](trial, context)  # type: ignore[arg-type]
        except ValueError as exc:  # an override no draw can use (a patch that divides nothing)
            raise UserError(str(exc)) from None
        try:
            models.resolve_hparams(family, image_size=size, in_channels=in_channels, **hp)
            cost = estimate(
                family, image_size=size, in_channels=in_channels, num_classes=num_classes, **hp
            )
        except (ValueError, ArithmeticError) as exc:  # ArithmeticError: absurd sizes
            return trial, hp, str(exc)
        if cost.params > MAX_PARAMS or cost.flops > MAX_FLOPS:
            return (
                trial,
                hp,
                (
                    f"{family} of {float(cost.params):.3g} parameters and {float(cost.flops):.3g} "
                    f"FLOPs per image; at most {MAX_PARAMS:g} and {MAX_FLOPS:g} (memory, time)"
                ),
            )
        return trial, hp, None

    for family in exp.families:
        mine = [k for k in exp.space if k.startswith(family + ".")]
        reason = _first_invalid(family, draw, random.Random(f"{family}:{size}"), _DRAWS)
        if reason is not None:
            # no valid draw at all: the override without which there is one is to blame
            for key in mine:
                rest = {k: v for k, v in exp.space.items() if k != key}
                relaxed = dataclasses.replace(ctx, overrides=rest)
                try:
                    fixed = _first_invalid(family, draw, random.Random(key), 50, relaxed) is None
                except UserError:  # without it, the defaults do not fit either
                    fixed = False
                if fixed:
                    raise UserError(
                        f"space.{key}={exp.space[key]!r}: no valid {family} configuration with "
                        f"it ({_DRAWS} drawn; e.g. {reason})"
                    )
            raise UserError(
                f"space.{family}.*: no valid {family} configuration drawn ({_DRAWS} tried; e.g. "
                f"{reason}); narrow space.{family}.* or change dataset.image_size"
            )
        for key in mine:
            if kinds.get(key) == "range":
                continue
            for choice in _distinct(exp.space[key]):
                _check_choice(family, key, choice, draw, exp.space[key])
    _check_budget(exp, draw)


def _first_invalid(
    family: str, draw: _Draw, rng: random.Random, n: int, *context: SpaceContext
) -> str | None:
    """None once a draw is valid (usually the first), else the reason of the last of ``n``."""
    reason = None
    for _ in range(n):
        _, _, reason = draw(family, rng, *context)
        if reason is None:
            return None
    return reason


def _distinct(choices: list[Any]) -> list[Any]:
    """The choices without repeats, by type too (``1``, ``1.0`` and ``true`` are three)."""
    out: list[Any] = []
    for c in choices:
        if not any(type(c) is type(u) and c == u for u in out):
            out.append(c)
    return out


def _check_choice(family: str, key: str, choice: Any, draw: _Draw, shown: Any) -> None:
    """Refuse ``choice`` of ``space.<key>`` if no drawn configuration with it is valid."""
    rng = random.Random(f"{key}={choice!r}")
    reason = None
    for _ in range(_DRAWS):
        trial, _, error = draw(family, rng, forced=(key, choice))
        if not trial.hit:
            continue  # a conditional parameter this draw did not reach
        if not trial.reachable:
            return  # a patch size that does not divide the image: filtered, as documented
        if error is None:
            return
        reason = error
    if reason is not None:
        raise UserError(
            f"space.{key}={shown!r}: choice {choice!r} never gives a valid {family} "
            f"({reason}); drop it"
        )


def _budget_limits(exp: Experiment) -> dict[str, float]:
    limits = {"flops": exp.budget.max_flops, "params": exp.budget.max_params}
    return {k: v for k, v in limits.items() if v is not None}


def _check_budget(exp: Experiment, draw: _Draw) -> None:
    """With a budget, some drawn proposal must fit it: for every family when families take
    equal turns (a family with none would stop the sweep), else for some family."""
    limits = _budget_limits(exp)
    if not limits:
        return
    from models.cost import estimate

    size = exp.dataset.image_size
    in_channels, num_classes = model_shape(exp.dataset.name, exp.dataset.synthetic)
    groups = [(f,) for f in exp.families] if exp.family_allocation == "equal" else [exp.families]
    for group in groups:
        rng = random.Random(f"budget:{','.join(group)}")
        cheapest: tuple[float, str, dict[str, float]] | None = None
        for i in range(_DRAWS + len(group)):
            family = group[i % len(group)]
            _, hp, error = draw(family, rng, cheapest=i < len(group))
            if error is not None:
                continue
            cost = estimate(
                family,
                image_size=size,
                in_channels=in_channels,
                num_classes=num_classes,
                **hp,
            )
            values = {"flops": float(cost.flops), "params": float(cost.params)}
            worst = max(values[k] / v for k, v in limits.items())
            if worst <= 1.0:
                break
            if cheapest is None or worst < cheapest[0]:
                cheapest = (worst, family, values)
        else:
            if cheapest is None:  # pragma: no cover - _check_proposals found valid ones
                continue
            _, family, values = cheapest
            over = [k for k, v in limits.items() if values[k] > v]
            fields = ", ".join(f"budget.max_{k}={limits[k]:g}" for k in over)
            found = ", ".join(f"{values[k]:.3g} {k}" for k in over)
            who = f"no {group[0]} proposal" if len(group) == 1 else "no proposal of any family"
            raise UserError(
                f"{fields}: {who} fits ({_DRAWS} drawn; the cheapest needs {found}); raise "
                + " / ".join(f"budget.max_{k}" for k in over)
                + (f", drop {group[0]} from families" if len(group) == 1 else "")
                + " or narrow the space to smaller models"
            )
