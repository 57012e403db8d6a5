"""OSC / PTC / TRS: pair-list InfoNCE against a dense reference, zero positives, gradient routing, toy training."""

import pytest
import torch

from finsta_core import Finsta, FinstaConfig, collate_graphs, loss_weights
from finsta_core.objectives.contrast import candidate_pairs, info_nce
from finsta_core.testing import random_host_outputs, random_hsg


def test_info_nce_matches_dense_supcon():
    a, c = torch.randn(5, 8, dtype=torch.float64), torch.randn(9, 8, dtype=torch.float64)
    ag = torch.tensor([0, 0, 1, 2, 2])
    cg = torch.tensor([0, 1, 1, 1, 2, 2, 0, 2, 1])
    pa, pc, same = candidate_pairs(ag, cg, 3, negatives=-1)
    loss, diag = info_nce(a, c, pa, pc, same, tau=0.5, rho=0.1, positives=("threshold", "top1"))
    sim = torch.nn.functional.normalize(a, dim=1) @ torch.nn.functional.normalize(c, dim=1).t()
    total, count = 0.0, 0
    for i in range(5):
        sv = cg == ag[i]
        pos = sv & ((sim[i] > 0.1) | (sim[i] == sim[i][sv].max()))
        logp = (sim[i] / 0.5).log_softmax(0)
        total += -(logp[pos]).mean()
        count += 1
    torch.testing.assert_close(loss, total / count)
    assert diag["anchors_with_pos"] == 5


def test_zero_positives_gives_zero_loss_with_gradient_path():
    a = torch.randn(3, 4, requires_grad=True)
    c = torch.randn(6, 4)
    pa, pc, same = candidate_pairs(torch.tensor([0, 1, 1]), torch.tensor([0, 0, 1, 1, 2, 2]), 3, negatives=2)
    loss, diag = info_nce(a, c, pa, pc, same, 0.8, rho=2.0, positives=("threshold",))
    assert float(loss.detach()) == 0.0 and diag["anchors_with_pos"] == 0
    loss.backward()
    assert a.grad is not None and torch.isfinite(a.grad).all()
    # no candidates at all
    e = torch.zeros(0, dtype=torch.long)
    loss2, _ = info_nce(a, c, e, e, e.bool(), 0.8, 0.7, ("top1",))
    assert float(loss2.detach()) == 0.0


def test_cross_video_negatives_bounded():
    ag = torch.zeros(4, dtype=torch.long)
    cg = torch.arange(40) % 5
    pa, pc, same = candidate_pairs(ag, cg, 5, negatives=6)
    assert int(same.sum()) == 4 * 8
    neg = ~same
    assert (cg[pc[neg]] != 0).all()
    assert torch.bincount(pa[neg], minlength=4).max() <= 6


@pytest.mark.parametrize("form", ["supcon", "milnce"])
def test_model_losses_and_gradient_routing(form):
    """OSC/PTC train the TSG/DSG side; TRS trains the host outputs and the projections only (stop-gradient
    teacher); the HSG encoder then gets no gradient; injection is detached from the host's first layer.
    (The literal configuration: with the repaired default readout_align the HSG is trained, see below.)"""
    cfg = FinstaConfig.preset("small_literal", d_model=32, heads=4, nce_form=form)
    gs = [random_hsg(i, num_frames=4, num_objects=3) for i in range(3)]
    b = collate_graphs(gs)
    model = Finsta(cfg, {"text": 32, "video": 24, "cross": 32})
    host = random_host_outputs(gs, {"text": 32, "video": 24, "cross": 32}, frames=3)
    out = model(b, host, stage=2, step=0, task_family="retrieval")
    assert set(out.losses) == {"osc", "ptc", "trs"}
    w = loss_weights(cfg, 2, 0, 10)
    sum(w[k] * v for k, v in out.losses.items()).backward()
    last_edge = ("layers.1.o_e", "layers.1.ffn_e", "layers.1.norm_e")  # final edge states feed only the HSG
    for name, p in model.named_parameters():
        if name.startswith("hsg_enc") or name.startswith("edge_h") or any(x in name for x in last_edge):
            assert p.grad is None, name
        elif name.startswith("trs_proj") or name.startswith(("inject_proj.cross", "inject_proj.text")):
            continue
        else:
            assert p.grad is not None, name
    assert model.trs_proj["video"].weight.grad is not None
    assert host.text.pooled.grad is not None and host.video.pooled.grad is not None
    assert host.cross.pooled.grad is not None
    assert host.text.first_layer.states.grad is None  # injection is sg(R^{l1}) by default
    # TRS alone does not reach Finsta's encoders
    model.zero_grad()
    out = model(b, host, stage=2, step=0, task_family="qa")
    out.losses["trs"].backward()
    assert all(p.grad is None or float(p.grad.abs().sum()) == 0 for n, p in model.named_parameters()
               if n.startswith(("tsg_enc", "dsg_enc", "hsg_enc")))


def test_repaired_defaults_train_readouts_and_hsg():
    """readout_align (default) gives the HSG encoder and the readouts a gradient; TRS alone still does not
    reach Finsta's encoders (stop-gradient teacher); the gated injection's gate and norm are trained."""
    cfg = FinstaConfig.preset("small", d_model=32, heads=4)
    gs = [random_hsg(i, num_frames=3, num_objects=3) for i in range(3)]
    b = collate_graphs(gs)
    model = Finsta(cfg, {"text": 32, "video": 24, "cross": 32})
    host = random_host_outputs(gs, {"text": 32, "video": 24, "cross": 32}, frames=3)
    out = model(b, host, stage=2, step=0, task_family="retrieval")
    assert set(out.losses) == {"osc", "ptc", "trs", "readout"}
    w = loss_weights(cfg, 2, 0, 10)
    sum(w[k] * v for k, v in out.losses.items()).backward()
    assert model.hsg_enc.layers[0].qkv.weight.grad is not None
    assert model.inject_gate["video"].grad is not None and model.trs_proj["text"].weight.grad is not None
    model.zero_grad()
    model(b, host, stage=2, step=0, task_family="qa").losses["trs"].backward()
    assert all(p.grad is None or float(p.grad.abs().sum()) == 0 for n, p in model.named_parameters()
               if n.startswith(("tsg_enc", "dsg_enc", "hsg_enc")))


def test_trs_teacher_gradient_switch_trains_hsg():
    cfg = FinstaConfig.preset("small", d_model=32, heads=4, trs_detach_teacher=False)
    gs = [random_hsg(i, num_frames=3, num_objects=3) for i in range(2)]
    model = Finsta(cfg, {"text": 32, "video": 32, "cross": 32})
    host = random_host_outputs(gs, {"text": 32, "video": 32, "cross": 32}, frames=2)
    model(collate_graphs(gs), host, stage=2, step=0, task_family="qa").losses["trs"].backward()
    assert model.hsg_enc.layers[0].qkv.weight.grad is not None
    assert model.edge_h.weight.grad is not None


def test_stage1_and_host_subsets():
    cfg = FinstaConfig.preset("small", d_model=32, heads=4)
    gs = [random_hsg(i, num_frames=3, num_objects=3) for i in range(2)]
    b = collate_graphs(gs)
    model = Finsta(cfg, {"text": 32, "video": 32})  # a host without a cross-modal encoder
    host = random_host_outputs(gs, {"text": 32, "video": 32}, frames=2)
    assert set(model(b, None, stage=1, step=0, task_family="generic").losses) == {"osc", "ptc", "readout"}
    out = model(b, host, stage=2, step=3, task_family="action")
    assert "trs" in out.losses and "trs_cross" not in out.diagnostics
    with pytest.raises(ValueError, match="task family"):
        model(b, host, stage=2, step=0, task_family="bogus")
    bad = random_host_outputs(gs, {"text": 32, "video": 32, "cross": 32})
    with pytest.raises(ValueError, match="host_widths"):
        model(b, bad, stage=2, step=0, task_family="qa")


@pytest.mark.parametrize("ablation", [dict(tsg_encoder="gat"), dict(dsg_encoder="rgnn"), dict(stgd=False),
                                      dict(temporal_edges=False), dict(adverbs=False), dict(cross_edges=False),
                                      dict(osc=False), dict(ptc=False), dict(high_order=False),
                                      dict(readout="mean"), dict(recurrence="query_scan"), dict(gate="literal"),
                                      dict(temporal_attention_edges=True), dict(norm="batch", softmax="clamp5"),
                                      dict(stgd_attention="multiplicative"), dict(feature_dim=8),
                                      dict(aux_edge_stream=True), dict(self_loops=False, reverse_edges=False)])
def test_table8_and_design_switches_run(ablation):
    cfg = FinstaConfig.preset("small", d_model=32, heads=4, **ablation)
    gs = [random_hsg(i, num_frames=4, num_objects=3, feature_dim=8) for i in range(2)]
    model = Finsta(cfg, {"text": 32, "video": 32, "cross": 32})
    host = random_host_outputs(gs, {"text": 32, "video": 32, "cross": 32}, frames=2)
    out = model(collate_graphs(gs), host, stage=2, step=0, task_family="captioning")
    total = sum(v for v in out.losses.values())
    assert torch.isfinite(total)
    total.backward()
    if ablation == dict(temporal_edges=False):
        assert out.diagnostics["edges_temporal"] == 0
    if ablation == dict(osc=False):
        assert float(out.losses["osc"].detach()) == 0.0


def test_toy_alignment_training_improves():
    """Known matches (cross edges), DSG labels in a different word space: OSC / PTC losses fall and the
    clean object alignment (ties miss) rises within a few hundred steps."""
    torch.manual_seed(0)
    cfg = FinstaConfig.preset("small", d_model=32, heads=4, cross_negatives=8, tsg_layers=1, dsg_layers=1,
                              hsg_layers=1)
    # "vv" + word: a different word (the label tokenizer splits "v_dog" into "v", "dog", a shared word)
    gs = [random_hsg(i, num_frames=2, num_objects=4, dsg_label_prefix="vv", caption_objects=4) for i in range(8)]
    b = collate_graphs(gs)
    model = Finsta(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=5e-3)
    hist = []
    for _ in range(120):
        out = model(b, None, stage=1, step=0, task_family="generic")
        loss = out.losses["osc"] + out.losses["ptc"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        dg = out.diagnostics
        hist.append((float(out.losses["osc"].detach()), float(out.losses["ptc"].detach()), dg["align_obj"],
                     dg["align_event"]))
    print("first / last step (osc, ptc, osc_acc, ptc_acc):", hist[0], hist[-1])
    first = torch.tensor(hist[:10]).mean(0)
    last = torch.tensor(hist[-10:]).mean(0)
    assert last[0] < first[0] * 0.8 and last[1] < first[1] * 0.8
    assert last[2] > first[2] + 0.2 and last[2] > 0.8
    assert last[3] >= first[3]
