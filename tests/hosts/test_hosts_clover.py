"""Clover host: parity with the official code (fixtures from scripts/parity/clover.py), host contract, a Finsta
post-training step, checkpoint handling, and the captioning head. No downloads, no official code needed."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from contract import check_host_contract
from part2_checks import assert_matches, assert_plans, finsta_stage2_step, load_reference, seeded_batch, seeded_tiny

from hosts.base import HostBatch
from hosts.errors import CheckpointError
from hosts.registry import create_host, get_spec, resolve_checkpoint

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "hosts" / "clover"
TOL = 1e-5


def reference() -> tuple[dict[str, torch.Tensor], list[str]]:
    ref, meta = load_reference(FIXTURES)
    return ref, meta["texts"].split("\n")


def official_host():
    return create_host("clover", checkpoint=FIXTURES).eval()


def tiny_host(**kw):
    return seeded_tiny("clover", FIXTURES, **kw)


def batch(t: int = 4, res: int = 32) -> HostBatch:
    return seeded_batch(t, res, ("a man throws a red ball in the park", "the dog runs"))


def outputs(host, ref, texts) -> dict[str, torch.Tensor]:
    """Our host's tensors at the points the parity script recorded from the official forwards."""
    video = ref["video"].permute(0, 2, 1, 3, 4)  # official NCTHW -> ours [B, T, 3, H, W]
    with torch.no_grad():
        tok, last, first = host.text_states(texts)
        assert torch.equal(tok.input_ids, ref["input_ids"])
        fmap, vfirst = host.video_features(video)
        cross_last, cross_first, _ = host.cross(fmap, last, tok.attention_mask)
        cls = host.encode_joint(video, texts)
        return {"text_first": first, "text_last": last, "video_first": vfirst, "video_map": fmap,
                "video_emb": host._video_embedding(fmap), "text_emb": host.ssl_head.forward_text(last),
                "cross_first": cross_first, "cross_last": cross_last, "cross_cls": cls,
                "qa_logits": host.task_head(ref["qa_logits"].shape[1])(cls)}


def test_parity_with_official_code():
    """Official CloverFinetune parts (LeeYN-43/Clover @fa05f2e, tiny, random) vs this host on the same weights:
    first-layer states, Swin map, pooled retrieval embeddings, cross output and QA logits agree to 1e-5."""
    ref, texts = reference()
    host = official_host()
    assert host.load_report["unexpected"] == [] and all(k.startswith("caption_decoder.")
                                                        for k in host.load_report["missing"])
    ours = outputs(host, ref, texts)
    assert_matches(ours, ref, TOL)
    # negative control: one perturbed weight in the last Swin stage changes the video side, not the text side
    with torch.no_grad():
        host.backbone.layers[1].blocks[0].attn.qkv.weight[0, 0] += 0.5
    bad = outputs(host, ref, texts)
    assert (bad["video_emb"] - ref["video_emb"]).abs().max() > 1e-3
    assert (bad["text_emb"] - ref["text_emb"]).abs().max() < TOL
    # ... and one perturbed weight of the cross encoder's first layer moves the joint [CLS] the QA head reads
    host = official_host()
    with torch.no_grad():
        host.multimodal_backbone.bert_encoder.layer[0].attention.self.query.weight[0, 0] += 0.5
    bad = outputs(host, ref, texts)
    assert (bad["cross_first"] - ref["cross_first"]).abs().max() > 1e-3
    assert (bad["cross_cls"] - ref["cross_cls"]).abs().max() > 10 * TOL


def test_official_checkpoint_keys_and_pretraining_heads(tmp_path):
    """The official file loads strictly; pre-training-only heads are dropped and reported; other keys refused."""
    state = torch.load(FIXTURES / "latest.pth", map_location="cpu", weights_only=True)["state_dict"]
    assert any(".mlp.fc1." in k for k in state) and "multimodal_backbone.vis_space_pos" in state
    extra = dict(state)
    extra["module.mlm_head.dense.weight"] = torch.zeros(2, 2)  # DataParallel prefix + pretraining head
    extra["backbone.mask_token"] = torch.zeros(1, 24, 1, 1, 1)
    torch.save({"state_dict": extra}, tmp_path / "latest.pth")
    host = create_host("clover", checkpoint=tmp_path, tokenizer=FIXTURES)
    assert sorted(host.load_report["dropped"]) == ["backbone.mask_token", "mlm_head.dense.weight"]
    extra["backbone.surprise"] = torch.zeros(1)
    torch.save({"state_dict": extra}, tmp_path / "latest.pth")
    with pytest.raises(CheckpointError, match="unexpected"):
        create_host("clover", checkpoint=tmp_path, tokenizer=FIXTURES)
    torch.save({"state_dict": {"foo": torch.zeros(1)}}, tmp_path / "latest.pth")
    with pytest.raises(CheckpointError, match="not a Clover checkpoint"):
        create_host("clover", checkpoint=tmp_path, tokenizer=FIXTURES)


def test_no_weights_says_why_and_what_to_pass():
    spec = get_spec("clover")
    assert spec.status == "implemented" and spec.parity.endswith("test_parity_with_official_code")
    with pytest.raises(CheckpointError) as err:
        resolve_checkpoint("clover", None)
    msg = str(err.value)
    assert "\n" not in msg and "released no weights" in msg and "random_init=true" in msg


def test_contract_tiny_random():
    host = tiny_host()
    out = check_host_contract(host, batch())
    assert set(out.losses) == {"vla"}
    # video: first Swin block, 4 frames x 8x8 tokens (each 2-frame tubelet listed under both of its frames)
    assert out.video.first_layer.states.shape == (2, 4 * 64, 16) and out.video.first_layer.grid == (8, 8)
    assert out.video.pooled.shape == (2, 4, 32) and out.cross.pooled.shape == (2, 4, 32)
    assert torch.equal(out.video.pooled[:, 0], out.video.pooled[:, 1])  # one tubelet covers frames 0 and 1


def test_contract_official_layout_fixture():
    check_host_contract(official_host(), batch())


def test_odd_frame_count_and_host_resolution():
    host = tiny_host().eval()
    b = batch(t=3, res=48)  # 3 frames (last tubelet padded); 48 px frames resized by the host preprocessing
    video = host.preprocess(torch.rand(2, 3, 3, 48, 48))
    assert video.shape[-2:] == (32, 32)
    out = host.posttrain_outputs(HostBatch(video, b.frame_times, b.texts), with_losses=False)
    assert out.video.pooled.shape[1] == 3 and int(out.video.first_layer.frame_index.max()) == 2


def test_own_save_reloads_through_the_factory(tmp_path):
    """A host saved by the harness (safetensors, our names) is rebuilt with the same sizes and outputs."""
    host = tiny_host().eval()
    host.save(tmp_path / "host.safetensors")
    again = create_host("clover", checkpoint=tmp_path / "host.safetensors", tokenizer=FIXTURES).eval()
    assert again.load_report["missing"] == []
    b = batch()
    with torch.no_grad():
        torch.testing.assert_close(again.encode_video(b.video), host.encode_video(b.video))
        assert again.generate(b.video, max_new_tokens=3) == host.generate(b.video, max_new_tokens=3)


def test_caption_decoder_learns_a_caption():
    """The non-official caption head trains by teacher forcing: a few steps fit one caption per video."""
    host = tiny_host()
    b = batch()
    caps = ["a man throws a red ball", "the dog runs"]
    opt = torch.optim.AdamW(host.parameters(), lr=3e-3)
    first = None
    for _ in range(25):
        loss = host.caption_loss(b.video, caps)
        first = first if first is not None else float(loss.detach())
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss.detach()) < 0.5 * first
    host.eval()
    assert host.generate(b.video, max_new_tokens=8) == caps


def test_finsta_posttrain_step():
    """Stage 2 of Finsta (OSC + PTC + TRS + Clover's own vla loss, Eq 42) on the tiny host: both learn."""
    host = tiny_host()
    b = batch()
    finsta_stage2_step(host, b.video, b.frame_times, optimise=True)
    assert host.backbone.patch_embed.proj.weight.grad is not None


# -- planning and the headline command ------------------------------------------------------------------------------

PAPER_TASKS = ["k400", "ssv2", "msrvtt_cap", "youcook2_cap", "didemo_ret", "lsmdc_ret", "msrvtt_mc", "msrvtt_qa",
               "msvd_qa", "tgif_frameqa"]  # every Clover cell of Tables 1-4 (results/paper/table0*.csv)
SMOKE = ["host.options.random_init=true", "host.options.size=tiny", f"host.options.tokenizer={FIXTURES}"]


@pytest.mark.parametrize("task", PAPER_TASKS)
def test_paper_cells_plan(task, tmp_path):
    """No Clover paper cell is refused for a missing capability (captioning included), with the official
    checkpoint layout (the parity fixture stands in for a checkpoint trained with the official code)."""
    assert_plans("clover", task, "finetune", FIXTURES / "latest.pth", tmp_path)


def test_headline_without_checkpoint_says_why_and_what_to_pass(tmp_path):
    from harness.errors import PlanError
    from harness.plan import plan_runs

    with pytest.raises(PlanError) as err:
        plan_runs("clover", "msrvtt_cap", mode="posttrain", preset="small", store_root=tmp_path, check_files=False)
    msg = str(err.value)
    assert "\n" not in msg and "released no weights" in msg and "host.options.random_init=true" in msg
    assert "host.checkpoint=PATH" in msg
    runs = plan_runs("clover", "msrvtt_cap", mode="finetune", overrides=SMOKE, preset="small", store_root=tmp_path,
                     check_files=False)
    assert len(runs) == 1


def write_msrvtt(root: Path) -> None:
    """A small MSR-VTT in the official layout (MSRVTT_data.json, 9k list, 1k-A CSV, videos/<id>.mp4)."""
    import json

    import av
    import numpy as np

    caps = {"video0": ["a man throws a red ball", "a man plays with a ball"], "video1": ["a dog runs in the park"],
            "video2": ["a woman kicks a blue ball"], "video3": ["a cat jumps on the car", "the cat jumps"],
            "video9770": ["a man runs in the street"], "video9771": ["a dog plays with a ball", "the dog plays"]}
    train, test = list(caps)[:4], list(caps)[4:]
    (root / "videos").mkdir(parents=True)
    (root / "MSRVTT_train.9k.csv").write_text("video_id\n" + "\n".join(train) + "\n")
    (root / "MSRVTT_JSFUSION_test.csv").write_text("key,vid_key,video_id,sentence\n" + "".join(
        f"ret{i},msr{v[5:]},{v},{caps[v][0]}\n" for i, v in enumerate(test)))
    sentences = [{"sen_id": i, "video_id": v, "caption": c}
                 for i, (v, c) in enumerate((v, c) for v in caps for c in caps[v])]
    (root / "MSRVTT_data.json").write_text(json.dumps({"info": {}, "sentences": sentences, "videos": [
        {"video_id": v, "split": "train" if v in train else "test"} for v in caps]}))
    rng = np.random.default_rng(0)
    for k, v in enumerate(caps):
        with av.open(str(root / "videos" / f"{v}.mp4"), "w") as c:
            st = c.add_stream("mpeg4", rate=8)
            st.width = st.height = 64
            st.pix_fmt = "yuv420p"
            base = rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)
            for i in range(16):
                for pkt in st.encode(av.VideoFrame.from_ndarray(np.roll(base, i * (k + 1), axis=1), format="rgb24")):
                    c.mux(pkt)
            for pkt in st.encode():
                c.mux(pkt)


@pytest.mark.slow
def test_headline_command_end_to_end(tmp_path):
    """`python -m harness run --host clover --task msrvtt_cap --mode posttrain host.options.random_init=true ...` on a
    small official-format MSR-VTT: scene graphs (sg parse, random detector weights), Finsta post-training (stage 2
    with TRS and Clover's own loss), fine-tuning of the caption decoder, evaluation. About 5 CPU-minutes."""
    import json
    import os
    import subprocess
    import sys

    root, sg, store = tmp_path / "msrvtt", tmp_path / "sg", tmp_path / "runs"
    write_msrvtt(root)
    (tmp_path / "classes.txt").write_text("person\ndog\ncat\nball\ncar\n")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    repo = Path(__file__).resolve().parents[2]
    parse = [sys.executable, "-m", "harness", "sg", "parse", "--task", "msrvtt_cap", "--split", "train", "--root",
             str(root), "--out", str(sg), "--random-weights", "--classes", str(tmp_path / "classes.txt")]
    done = subprocess.run(parse, cwd=repo, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    run = [sys.executable, "-m", "harness", "run", "--host", "clover", "--task", "msrvtt_cap", "--mode", "posttrain",
           "--preset", "small", f"data.roots.msrvtt={root}", f"store.root={store}", f"posttrain.sg_store={sg}",
           "run.progress=false", *SMOKE]
    done = subprocess.run(run, cwd=repo, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    (run_dir,) = list(store.iterdir())
    log = (run_dir / "log.txt").read_text()
    assert "posttrain_stage2" in log and "L_trs=" in log and "L_vla=" in log
    metrics = json.loads((run_dir / "metrics.json").read_text())
    (ev,) = metrics["evaluations"]
    assert ev["split"] == "test" and ev["n_samples"] == 2 and {"CIDEr", "BLEU@4"} <= set(ev["metrics"])
    assert (run_dir / "host.safetensors").is_file()
