"""finsta_core.registry: typed, lazy, aliases, did-you-mean, listing, entry points, freeze."""

from __future__ import annotations

from importlib import metadata

import pytest

from finsta_core.registry import Registry, RegistryError, UnknownNameError


class Base:
    pass


class Impl(Base):
    pass


def test_register_get_and_decorator():
    reg: Registry[type[Base]] = Registry("things", base=Base, instances=False)
    reg.register("impl", Impl, kind="x")

    @reg.register("other", aliases=("alt",))
    class Other(Base):
        pass

    assert reg.get("impl") is Impl and reg["IMPL "] is Impl  # names are normalised
    assert reg.get("alt") is Other and reg.aliases_of("other") == ["alt"]
    assert reg.names() == ["impl", "other"] and len(reg) == 2 and "alt" in reg and "nope" not in reg
    assert reg.list()[0] == {"name": "impl", "aliases": [], "kind": "x"}
    assert reg.meta("impl") == {"kind": "x"}


def test_lazy_entries_import_on_first_use_and_are_type_checked():
    reg: Registry[type[Base]] = Registry("lazy", base=Base, instances=False)
    reg.register("impl", f"{__name__}:Impl")
    assert isinstance(reg._entries["impl"].target, str)  # listing does not import
    assert reg.get("impl") is Impl
    reg.register("bad", "collections:OrderedDict")
    with pytest.raises(RegistryError, match="expected a Base"):
        reg.get("bad")
    reg.register("missing", "no_such_module_xyz:Thing")
    with pytest.raises(RegistryError, match="failed to load"):
        reg.get("missing")
    with pytest.raises(RegistryError, match="module:attr"):
        reg.register("plain", "not-a-path")


def test_unknown_name_suggests_close_matches():
    reg = Registry("hosts")
    for n in ("clover", "clip4clip", "hdvila"):
        reg.register(n, object())
    with pytest.raises(UnknownNameError) as err:
        reg.get("clovr")
    msg = str(err.value)
    assert "unknown host 'clovr'" in msg and "did you mean 'clover'" in msg
    assert "known: clip4clip, clover, hdvila" in msg


def test_duplicates_overwrite_and_freeze():
    reg = Registry("x")
    reg.register("a", 1)
    with pytest.raises(RegistryError, match="already registered"):
        reg.register("a", 2)
    reg.register("a", 2, overwrite=True)
    assert reg.get("a") == 2
    with pytest.raises(RegistryError, match="alias"):
        reg.alias("a", "a")
    reg.freeze()
    with pytest.raises(RegistryError, match="frozen"):
        reg.register("b", 3)


def test_entry_points_register_external_entries(monkeypatch):
    ep = metadata.EntryPoint(name="ext_impl", value=f"{__name__}:Impl", group="finsta.plugins")

    def fake_entry_points(group=None, **kw):
        return [ep] if group == "finsta.plugins" else []

    monkeypatch.setattr(metadata, "entry_points", fake_entry_points)
    reg: Registry[type[Base]] = Registry("plugins", base=Base, instances=False)
    assert "ext_impl" in reg.names()
    assert reg.get("ext_impl") is Impl
    assert reg.meta("ext_impl")["source"].startswith("entry point")


@pytest.mark.parametrize("which", ["hosts", "tasks"])
def test_project_registries_list_and_resolve(which):
    if which == "hosts":
        from hosts.registry import HOSTS as REG
        from hosts.registry import get_spec

        get_spec("fake_host")
    else:
        from tasks.registry import TASKS as REG
        from tasks.registry import task_names

        task_names()
    names = REG.names()
    assert names and names == sorted(names)
    for row in REG.list():
        assert "name" in row


# -- the mode and metric registries (contract C5) ----------------------------------------------------------
def test_mode_registry_owns_capabilities_splits_and_jobs():
    from finsta_core.registry import UnknownNameError
    from harness.modes import get_mode, mode_names

    assert set(mode_names()) == {"posttrain", "finetune", "zeroshot", "pretrain"}
    with pytest.raises(UnknownNameError, match="did you mean 'zeroshot'"):
        get_mode("zeroshoot")
    cfg = {"run": {"eval_split": None}, "posttrain": {"then": "zeroshot"}}
    post, ft = get_mode("posttrain"), get_mode("finetune")
    assert post.eval_mode(cfg) == "zeroshot" and post.splits(cfg, ("train", "test"), "test") == ["test"]
    assert ft.splits(cfg, ("train", "test"), "test") == ["train", "test"]
    assert get_mode("pretrain").splits(cfg, ("train", "test"), "test") == ["train"]
    # post-training needs what its evaluation needs
    zs = get_mode("zeroshot")
    assert post.required_capabilities(cfg, "captioning") == zs.required_capabilities(cfg, "captioning")
    assert callable(ft.job_fn())


def test_metric_registry_spellings_and_direction():
    from tasks.metrics.registry import canonical_metric, get_metric, higher_is_better, metric_label

    assert canonical_metric("R@1") == canonical_metric("recall@1") == "r1"
    assert canonical_metric("v2t_MdR") == "v2t_mdr" and not higher_is_better("v2t_MdR")
    assert higher_is_better("accuracy") and higher_is_better("accuracy_what")  # per-group accuracies
    assert metric_label("BLEU@4") == "B@4" and get_metric("CIDEr").aggregation == "corpus"
    assert get_metric("no_such_metric") is None and metric_label("no_such_metric") == "no_such_metric"
