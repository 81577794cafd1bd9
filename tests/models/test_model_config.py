"""``ModelConfig.resolve`` returns the concrete config; ``build_model`` resolves once; every
public name of ``models`` and ``spaces`` has a docstring of its own."""

from __future__ import annotations

import importlib
import inspect

import pytest

import models
from models._config import ModelConfig, divisors
from models.mixer import MixerBlock, MixerConfig, PatchClassifier
from models.perceiver import Perceiver, PerceiverConfig


@pytest.mark.parametrize("family", models.FAMILIES)
def test_resolve_returns_the_concrete_config(family: str) -> None:
    cls = models.MODEL_FAMILIES[family].config
    cfg = cls.resolve(image_size=16)
    assert type(cfg) is cls and cfg.family == family
    assert cfg.resolved(image_size=16) is cfg  # resolved for 16 already: no second pass
    again = cfg.resolved(image_size=32)  # another image size is checked again
    assert type(again) is cls and again is not cfg and again.resolved(image_size=32) is again


def test_an_unresolved_config_is_resolved_by_the_model() -> None:
    model = Perceiver(num_classes=3, image_size=8, config=PerceiverConfig(patch_size=2))
    assert model.config.max_freq == 4.0  # the Nyquist rate of the 4x4 patch grid
    with pytest.raises(ValueError, match=r"mixer\.patch_size=3: does not divide image_size=8"):
        PatchClassifier(
            num_classes=3, image_size=8, config=MixerConfig(patch_size=3), block_layer=MixerBlock
        )
    cfg = MixerConfig.resolve(image_size=8, patch_size=2)
    with pytest.raises(ValueError, match=r"mixer\.patch_size=2: does not divide image_size=9"):
        PatchClassifier(num_classes=3, image_size=9, config=cfg, block_layer=MixerBlock)


@pytest.mark.parametrize("family", models.FAMILIES)
def test_build_model_resolves_once(
    monkeypatch: pytest.MonkeyPatch, tiny: dict[str, dict[str, object]], family: str
) -> None:
    cls = models.MODEL_FAMILIES[family].config
    resolve = cls.resolve.__func__  # type: ignore[attr-defined]
    calls: list[dict[str, object]] = []

    def counting(klass: type[ModelConfig], **kwargs: object) -> ModelConfig:
        calls.append(kwargs)
        return resolve(klass, **kwargs)

    monkeypatch.setattr(cls, "resolve", classmethod(counting))
    model = models.build_model(family, num_classes=5, image_size=8, **tiny[family])
    assert len(calls) == 1
    assert type(model.config) is cls
    assert models.MODEL_FAMILIES[family].factory is not None


def test_divisors() -> None:
    assert divisors(12) == [1, 2, 3, 4, 6, 12] and divisors(1) == [1]


_MODULES = [
    "models",
    "models.cost",
    "models.layers",
    "models.mixer",
    "models.fnet",
    "models.gmlp",
    "models.vit",
    "models.perceiver",
    "models.presets",
    "models._config",
    "models._registry",
    "models._estimate",
    "models.families",
    "spaces",
    "spaces.common",
    "spaces._context",
    "spaces._patch_mlp",
    "spaces.mixer",
    "spaces.fnet",
    "spaces.gmlp",
    "spaces.vit",
    "spaces.perceiver",
    "spaces.families",
]


@pytest.mark.parametrize("module_name", _MODULES)
def test_public_names_have_their_own_docstring(module_name: str) -> None:
    module = importlib.import_module(module_name)
    assert inspect.getdoc(module), module_name
    missing = []
    for name in getattr(module, "__all__", []):
        obj = getattr(module, name)
        if not (inspect.isclass(obj) or inspect.isfunction(obj)):
            continue  # constants, type aliases, submodules
        if obj.__module__ != module.__name__:
            continue  # re-exported: checked where it is defined
        if not (obj.__doc__ or "").strip() or obj.__doc__.startswith(f"{name}("):
            missing.append(name)  # (a dataclass without one gets its signature as __doc__)
        if inspect.isclass(obj):
            for attr, member in vars(obj).items():
                func = getattr(member, "__func__", member)
                if attr.startswith("_") or attr == "forward" or not inspect.isfunction(func):
                    continue
                if not (func.__doc__ or "").strip():
                    missing.append(f"{name}.{attr}")
    assert not missing, f"{module_name}: no docstring: {missing}"
