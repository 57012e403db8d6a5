"""MCQ host: parity with the official code (fixtures from scripts/parity/mcq.py), host contract, a Finsta
post-training step, checkpoint handling (official pickled envelope, conversion, downstream files), planning of its
paper cells. No downloads, no official code needed."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch
from contract import check_host_contract
from part2_checks import assert_matches, assert_plans, finsta_stage2_step, load_reference, seeded_batch, seeded_tiny

from hosts.base import HostBatch
from hosts.errors import CheckpointError
from hosts.registry import create_host, get_spec

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "hosts" / "mcq"
TOL = 1e-5


def reference() -> tuple[dict[str, torch.Tensor], list[str], list[str]]:
    ref, meta = load_reference(FIXTURES)
    return ref, meta["texts"].split("\n"), meta["questions"].split("\n")


def official_host():
    return create_host("mcq", checkpoint=FIXTURES).eval()


def tiny_host():
    return seeded_tiny("mcq", FIXTURES)


def batch(t: int = 3, res: int = 32) -> HostBatch:
    return seeded_batch(t, res)


def outputs(host, ref, texts, questions) -> dict[str, torch.Tensor]:
    with torch.no_grad():
        tok = host.tokenize(texts)
        assert torch.equal(tok.input_ids, ref["input_ids"])
        hidden = host.text_states(tok.input_ids, tok.attention_mask)
        out = host.bridge_pass(ref["video"], questions)
        assert torch.equal(out["question"].input_ids, ref["question_ids"])
        return {"text_first": hidden[1], "text_emb": host.text_embedding(hidden[-1]),
                "video_first": out["video_first"], "bridge_first": out["bridge_first"],
                "video_emb": host.video_embedding(out["video"]), "bridge_emb": host.bridge_embedding(out["bridge"]),
                "sims": host.encode_text(texts) @ host.encode_video(ref["video"]).t()}


def test_parity_with_official_code():
    """Official MCQ (TencentARC/MCQ @3555a9b: Video_Bridge_Former + DistilBERT + projections, tiny, random) vs this
    host on the same weights: first-layer text / video / bridge states, text / video / bridge embeddings and the
    retrieval similarities (official sim_matrix) agree to 1e-5."""
    ref, texts, questions = reference()
    host = official_host()
    assert host.load_report == {"missing": [], "unexpected": []}
    assert_matches(outputs(host, ref, texts, questions), ref, TOL)
    # negative control: one perturbed VideoFormer weight moves the video side, not the text side
    with torch.no_grad():
        host.video_model.blocks[1].attn.qkv.weight[0, 0] += 0.5
    bad = outputs(host, ref, texts, questions)
    assert (bad["video_emb"] - ref["video_emb"]).abs().max() > 10 * TOL
    assert (bad["sims"] - ref["sims"]).abs().max() > 10 * TOL
    assert (bad["text_emb"] - ref["text_emb"]).abs().max() < TOL
    # ... and one perturbed BridgeFormer weight moves only the bridge (the video stream never reads it)
    host = official_host()
    with torch.no_grad():
        host.video_model.blocks[0].crossattn.q_question.weight[0, 0] += 0.5
    bad = outputs(host, ref, texts, questions)
    assert (bad["bridge_emb"] - ref["bridge_emb"]).abs().max() > 10 * TOL
    assert (bad["video_emb"] - ref["video_emb"]).abs().max() < TOL


def test_checkpoint_handling(tmp_path):
    from hosts.mcq import main as mcq_main
    from hosts.mcq import read_mcq_state

    # the official file pickles a ConfigParser: weights_only refuses it, the host reads it with inert stand-ins
    with pytest.raises(pickle.UnpicklingError):
        torch.load(FIXTURES / "MCQ.pth", map_location="cpu", weights_only=True)
    state = read_mcq_state(FIXTURES / "MCQ.pth")
    assert all(not k.startswith("module.") for k in state)
    # one-off conversion to safetensors (host names) loads to the same weights
    mcq_main(["convert", str(FIXTURES / "MCQ.pth"), str(tmp_path / "MCQ.safetensors")])
    converted = create_host("mcq", checkpoint=tmp_path / "MCQ.safetensors", tokenizer=FIXTURES)
    ref = official_host()
    for k, v in ref.state_dict().items():
        assert torch.equal(converted.state_dict()[k], v), k
    # a downstream (fine-tuned) checkpoint has no BridgeFormer: it loads and the bridge is reported missing
    downstream = {k: v for k, v in state.items() if not k.startswith("bridge_proj.") and ".crossattn." not in k}
    torch.save({"state_dict": downstream}, tmp_path / "downstream.pth")
    host = create_host("mcq", checkpoint=tmp_path / "downstream.pth", tokenizer=FIXTURES)
    assert "bridge_proj.0.weight" in host.load_report["missing"]
    torch.save({"state_dict": {**state, "video_model.surprise": torch.zeros(1)}}, tmp_path / "extra.pth")
    with pytest.raises(CheckpointError, match="unexpected"):
        create_host("mcq", checkpoint=tmp_path / "extra.pth", tokenizer=FIXTURES)
    lost = {k: v for k, v in state.items() if not k.startswith("text_proj.")}
    torch.save({"state_dict": lost}, tmp_path / "lost.pth")
    with pytest.raises(CheckpointError, match="missing"):
        create_host("mcq", checkpoint=tmp_path / "lost.pth", tokenizer=FIXTURES)
    torch.save({"x": torch.zeros(1)}, tmp_path / "other.pth")
    with pytest.raises(CheckpointError, match="not an MCQ checkpoint"):
        create_host("mcq", checkpoint=tmp_path / "other.pth", tokenizer=FIXTURES)
    spec = get_spec("mcq")
    assert spec.status == "implemented" and spec.parity.endswith("test_parity_with_official_code")


def test_contract_tiny_random():
    host = tiny_host()
    out = check_host_contract(host, batch())
    assert set(out.losses) == {"vla"}
    # 32 px / patch 16 -> 2x2 patches per frame; the bridge holds the question [CLS] + the other tokens per frame
    assert out.video.first_layer.states.shape == (2, 3 * 4, 32)
    lq = out.text.first_layer.states.shape[1]
    assert out.cross.first_layer.states.shape[1] == 1 + 3 * (lq - 1)
    assert out.video.pooled.shape == (2, 3, 16) and out.cross.pooled.shape == (2, 3, 16)
    assert out.text.pooled.shape == (2, 16)


def test_contract_official_fixture():
    host = official_host()
    check_host_contract(host, batch(t=4))


def test_finsta_posttrain_step():
    host = tiny_host()
    b = batch()
    finsta_stage2_step(host, b.video, b.frame_times)
    assert host.video_model.patch_embed.proj.weight.grad is not None
    assert host.video_model.blocks[0].crossattn.q_question.weight.grad is not None


PAPER_TASKS = [("lsmdc_ret", "finetune"), ("didemo_ret", "finetune"),  # Table 3
               ("k400", "zeroshot"), ("lsmdc_ret", "zeroshot"), ("msvd_qa", "zeroshot")]  # Table 7


@pytest.mark.parametrize("task,mode", PAPER_TASKS)
def test_paper_cells_plan(task, mode, tmp_path):
    assert_plans("mcq", task, mode, FIXTURES / "MCQ.pth", tmp_path)
