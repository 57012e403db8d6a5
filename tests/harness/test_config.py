"""Config layering (defaults < preset < host < task family < task < mode < experiment < CLI) and bad overrides."""

from __future__ import annotations

import shutil

import pytest

from harness.config import CONFIG_DIR, identity_view, load_config, parse_overrides
from harness.errors import ConfigError


@pytest.fixture
def cdir(tmp_path):
    d = tmp_path / "config"
    shutil.copytree(CONFIG_DIR, d, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    (d / "hosts" / "hx.yaml").write_text("finetune: {lr: 0.1, head_lr: 0.1, epochs: 3, batch_size: 3}\n")
    (d / "tasks" / "retrieval.yaml").write_text("finetune: {head_lr: 0.2, epochs: 4, batch_size: 4}\n")
    (d / "tasks" / "tx.yaml").write_text("finetune: {epochs: 5, batch_size: 5}\n")
    (d / "modes" / "finetune.yaml").write_text("mode: finetune\nfinetune: {batch_size: 6}\n")
    return d


def test_layer_order(cdir, tmp_path):
    exp = tmp_path / "exp.yaml"
    exp.write_text("finetune: {temperature: 0.5, warmup_epochs: 0.5}\n")
    cfg = load_config("hx.tag", "tx", "finetune", task_family="retrieval", experiment=exp,
                      overrides=["finetune.warmup_epochs=0.25"], config_dir=cdir)
    ft = cfg.finetune
    assert ft.lr == 0.1  # host layer
    assert ft.head_lr == 0.2  # task family over host
    assert ft.epochs == 5  # task over family
    assert ft.batch_size == 6  # mode over task
    assert ft.temperature == 0.5  # experiment file
    assert ft.warmup_epochs == 0.25  # command line over experiment
    assert cfg.host.name == "hx.tag" and cfg.task.name == "tx" and cfg.mode == "finetune"
    assert cfg.preset == "paper" and cfg.finsta.rho_osc == 0.7  # paper preset values are the defaults


def test_presets_and_paper_hyperparameters():
    paper = load_config("h", "t", "posttrain")
    assert paper.optim.weight_decay == 5e-3 and list(paper.optim.betas) == [0.9, 0.98]
    assert paper.posttrain.stage1.epochs == 2 and paper.posttrain.stage1.batch_size == 300
    assert paper.posttrain.stage1.lr == 5e-3 and paper.posttrain.stage1.warmup_epochs == 1.0
    f = paper.finsta
    assert (f.tau_osc, f.tau_ptc, f.rho_osc, f.rho_ptc, f.osc_hops, f.ptc_hops) == (0.8, 0.8, 0.7, 0.6, 3, 4)
    assert list(f.lambda_osc) == [0.5, 0.15] and list(f.lambda_trs) == [0.2, 0.5] and f.lambda_vla == 0.3
    assert list(f.trs_lambdas.video_to_text) == [0.2, 0.5, 0.3]
    assert list(paper.run.seeds) == [1, 2, 3, 4, 5]
    small = load_config("h", "t", "posttrain", overrides=["preset=small"])
    assert small.preset == "small" and small.finsta_preset == "small" and list(small.run.seeds) == [1]


def test_open_maps_accept_new_keys():
    cfg = load_config("h", "t", "finetune", overrides=["finsta.anything=1", "task.options.k=v", "data.roots.x=/d"])
    assert cfg.finsta.anything == 1 and cfg.task.options.k == "v" and cfg.data.roots.x == "/d"


@pytest.mark.parametrize("bad, match", [
    (["finetune.epoch=3"], r"unknown config key 'finetune.epoch'; did you mean 'finetune.epochs'"),
    (["finetune.epochs=abc"], r"'finetune.epochs' expects an integer"),
    (["run.deterministic=3"], r"expects a boolean"),
    (["optim=3"], r"'optim' is a section"),
    (["noequals"], r"expected key=value"),
    (["preset=nope"], r"unknown preset 'nope'"),
    (["mode=zeroshot"], r"'mode' is set by --mode"),
])
def test_bad_overrides_are_one_line_errors(bad, match):
    with pytest.raises(ConfigError, match=match) as err:
        load_config("h", "t", "finetune", overrides=bad)
    assert "\n" not in str(err.value)


def test_bad_experiment_file(tmp_path):
    p = tmp_path / "e.yaml"
    p.write_text("finetune: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config("h", "t", "finetune", experiment=p)
    with pytest.raises(ConfigError, match="not found"):
        load_config("h", "t", "finetune", experiment=tmp_path / "missing.yaml")
    p.write_text("finetun: {epochs: 1}\n")
    with pytest.raises(ConfigError, match=r"e.yaml: unknown config key 'finetun'"):
        load_config("h", "t", "finetune", experiment=p)


def test_parse_overrides_and_identity_view():
    assert parse_overrides(["a.b=1", "a.c=[1, 2]", "d=x"]) == {"a": {"b": 1, "c": [1, 2]}, "d": "x"}
    cfg = load_config("h", "t", "finetune")
    ident = identity_view(cfg)
    assert "launch" not in ident and "store" not in ident and "progress" not in ident["run"]
    assert ident["finetune"] == dict(cfg.finetune)
