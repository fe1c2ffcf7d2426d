import pytest

from harness.core.errors import UserError
from harness.core.overrides import build_run_config, parse_overrides
from harness.core.presets import LADDER, PRESETS
from harness.core.recipe import RunConfig
from harness.core.serialize import fingerprint, from_dict, to_dict
from harness.core.units import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30),
        ("10m", 600),
        ("2h", 7200),
        ("24h", 86400),
        ("1h30m", 5400),
        ("1d", 86400),
        ("0.5s", 0.5),
        (" 20S ", 20),
    ],
)
def test_budgets_parse(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "30", "2x", "h", "10m5", "-5s", "0s", "1.h", "two hours"])
def test_malformed_budgets_are_refused(text):
    with pytest.raises(UserError, match="budget"):
        parse_duration(text)


def test_format_duration():
    assert format_duration(12.34) == "12.3s"
    assert format_duration(125) == "2m05s"
    assert format_duration(86400) == "24h00m00s"


def test_overrides_are_strict():
    with pytest.raises(UserError, match=r"unknown override key 'lrr'.*valid keys are"):
        parse_overrides(["lrr=1"])
    with pytest.raises(UserError, match="malformed override"):
        parse_overrides(["lr"])
    with pytest.raises(UserError, match=r"override lr='fast': expected float"):
        build_run_config(strategy="amp", preset="tiny", overrides={"lr": "fast"})
    with pytest.raises(UserError, match=r"override n_layer='2.5': expected int"):
        build_run_config(strategy="amp", preset="tiny", overrides={"n_layer": "2.5"})
    with pytest.raises(UserError, match="expected bool"):
        build_run_config(strategy="amp", preset="tiny", overrides={"compile": "maybe"})


def test_overrides_apply_with_types():
    cfg = build_run_config(
        strategy="amp",
        preset="tiny",
        budget="5s",
        overrides={"lr": "1e-3", "n_layer": "3", "compile": "off", "targets": "3.0,2.5", "warmup_steps": "0"},
    )
    assert cfg.recipe.lr == 1e-3 and isinstance(cfg.recipe.lr, float)
    assert cfg.recipe.model.n_layer == 3
    assert cfg.recipe.compile is False
    assert cfg.recipe.targets == (3.0, 2.5)
    assert cfg.warmup_steps == 0
    assert cfg.recipe.budget_s == 5


def test_invalid_recipes_are_refused():
    with pytest.raises(UserError, match=r"unknown preset 'huge'.*tiny"):
        build_run_config(strategy="amp", preset="huge")
    with pytest.raises(UserError, match="divisible by n_head"):
        build_run_config(strategy="amp", preset="tiny", overrides={"n_head": "5"})
    with pytest.raises(UserError, match="multiple of seq_len"):
        build_run_config(strategy="amp", preset="tiny", overrides={"global_batch_tokens": "100"})
    with pytest.raises(UserError, match="precision"):
        build_run_config(strategy="amp", preset="tiny", overrides={"precision": "fp8"})


def test_reference_preset_is_gpt2_small():
    p = PRESETS["gpt2-124m"]
    m = p.model
    assert (m.n_layer, m.n_head, m.d_model, m.seq_len) == (12, 12, 768, 1024)
    assert p.global_batch_tokens == 524_288
    cfg = build_run_config(strategy="amp", preset="gpt2-124m")
    r = cfg.recipe
    assert (r.beta1, r.beta2, r.weight_decay, r.grad_clip, r.budget_s) == (0.9, 0.95, 0.1, 1.0, 86400)
    assert set(PRESETS) == {"tiny", "small", *LADDER}


def test_config_round_trip_and_fingerprint():
    cfg = build_run_config(strategy="amp", preset="tiny", overrides={"targets": "2.0"})
    again = from_dict(RunConfig, to_dict(cfg))
    assert again == cfg
    assert fingerprint(to_dict(cfg.recipe)) == fingerprint(to_dict(again.recipe))
    other = build_run_config(strategy="amp", preset="tiny", overrides={"lr": "1e-4"})
    assert fingerprint(to_dict(cfg.recipe)) != fingerprint(to_dict(other.recipe))
    with pytest.raises(ValueError, match="unknown keys"):
        from_dict(RunConfig, {**to_dict(cfg), "bogus": 1})
