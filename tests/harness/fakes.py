"""Test-only host and tasks for the harness tests: tiny, CPU-fast, samples carry ``frames`` and hand-built HSGs.

Registered under test-only names (``fake_host``, ``fake_retonly``, ``fake_action``, ...) when imported.
"""

from __future__ import annotations

import re
import zlib
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from finsta_core.graphs import DynamicSceneGraph, EdgeType, HolisticSceneGraph, NodeType, TextualSceneGraph
from hosts.base import EncoderOutput, Host, HostBatch, HostOutputs, HostSpec, Preprocess, TokenStates
from hosts.registry import HOSTS
from tasks.base import RequiredFile, Sample, Task, TaskType, VideoProtocol
from tasks.registry import TASKS

CLASSES = ["ball", "cube", "cone"]
WORDS = ["a", "video", "of", "red", "ball", "cube", "cone", "rolls", "over", "box"]
T, RES, D = 4, 16, 16


def _tok(word: str, n: int = 256) -> int:
    return zlib.crc32(word.encode()) % n


class FakeHost(Host):
    """Dual encoder (text + video, no cross) with a word decoder; every capability, own loss ``vla``."""

    def __init__(self, spec: HostSpec, d: int = D) -> None:
        super().__init__(spec, Preprocess(num_frames=T, resolution=RES))
        self.d = d
        self.word = nn.Embedding(256, d)
        self.patch = nn.Linear(3, d)
        self.vproj = nn.Linear(d, d)
        self.tproj = nn.Linear(d, d)
        self.joint = nn.Linear(2 * d, d)
        self.decoder = nn.Linear(d, len(WORDS))

    @property
    def embed_dim(self) -> int:
        return self.d

    def encoder_widths(self) -> dict[str, int]:
        return {"text": self.d, "video": self.d}

    def _text_tokens(self, texts: list[str]) -> TokenStates:
        spans = [[(m.start(), m.end()) for m in re.finditer(r"\S+", t)] or [(0, 0)] for t in texts]
        length = max(len(s) for s in spans)
        ids = torch.zeros(len(texts), length, dtype=torch.long)
        mask = torch.zeros(len(texts), length, dtype=torch.bool)
        cs = torch.full((len(texts), length, 2), -1, dtype=torch.long)
        for b, (t, sp) in enumerate(zip(texts, spans)):
            for i, (s, e) in enumerate(sp):
                ids[b, i], mask[b, i], cs[b, i] = _tok(t[s:e].lower()), True, torch.tensor([s, e])
        dev = self.word.weight.device
        return TokenStates(self.word(ids.to(dev)), mask.to(dev), char_spans=cs.to(dev))

    def _video_tokens(self, video: Tensor) -> TokenStates:
        b, t = video.shape[:2]
        g = F.adaptive_avg_pool2d(video.flatten(0, 1), 2)  # [B*T, 3, 2, 2]
        tok = self.patch(g.flatten(2).transpose(1, 2)).reshape(b, t * 4, self.d)
        fi = torch.arange(t, device=video.device).repeat_interleave(4).expand(b, -1)
        rc = torch.tensor([[0, 0], [0, 1], [1, 0], [1, 1]], device=video.device).repeat(t, 1).expand(b, -1, -1)
        mask = torch.ones(b, t * 4, dtype=torch.bool, device=video.device)
        return TokenStates(tok, mask, frame_index=fi, patch_rc=rc, grid=(2, 2))

    def _text_pooled(self, tok: TokenStates) -> Tensor:
        m = tok.mask.unsqueeze(-1).float()
        return self.tproj((tok.states * m).sum(1) / m.sum(1).clamp(min=1))

    def _video_frames(self, tok: TokenStates, t: int) -> Tensor:
        return self.vproj(tok.states.reshape(tok.states.shape[0], t, 4, self.d).mean(2))  # [B, T, d]

    def encode_text(self, texts: list[str]) -> Tensor:
        return self._text_pooled(self._text_tokens(texts))

    def encode_video(self, video: Tensor, frame_times: Tensor | None = None) -> Tensor:
        return self._video_frames(self._video_tokens(video), video.shape[1]).mean(1)

    def encode_joint(self, video: Tensor, texts: list[str], frame_times: Tensor | None = None) -> Tensor:
        return self.joint(torch.cat([self.encode_video(video), self.encode_text(texts)], -1))

    def _word_targets(self, texts: list[str]) -> Tensor:
        tgt = torch.zeros(len(texts), len(WORDS))
        for b, t in enumerate(texts):
            for w in t.lower().split():
                if w in WORDS:
                    tgt[b, WORDS.index(w)] = 1.0
        return tgt.to(self.word.weight.device)

    def caption_loss(self, video: Tensor, texts: list[str], frame_times: Tensor | None = None) -> Tensor:
        return F.binary_cross_entropy_with_logits(self.decoder(self.encode_video(video)), self._word_targets(texts))

    def generate(self, video: Tensor, prompts: list[str] | None = None, max_new_tokens: int = 20,
                 frame_times: Tensor | None = None) -> list[str]:
        top = self.decoder(self.encode_video(video)).topk(min(3, max_new_tokens), -1).indices
        return [" ".join(WORDS[i] for i in row) for row in top.tolist()]

    def score_options(self, video: Tensor, questions: list[str], options: list[list[str]],
                      frame_times: Tensor | None = None) -> Tensor:
        q = F.normalize(self.encode_joint(video, questions), dim=-1)
        k = len(options[0])
        o = F.normalize(self.encode_text([x for opts in options for x in opts]), dim=-1).reshape(len(options), k, -1)
        return (o * q.unsqueeze(1)).sum(-1) * 10.0

    def posttrain_outputs(self, batch: HostBatch, with_losses: bool = True) -> HostOutputs:
        tt, vt = self._text_tokens(batch.texts), self._video_tokens(batch.video)
        text, frames = self._text_pooled(tt), self._video_frames(vt, batch.video.shape[1])
        out = HostOutputs(text=EncoderOutput(tt, text), video=EncoderOutput(vt, frames, batch.frame_times))
        if with_losses:
            from harness.jobs.recipes import info_nce

            out.losses["vla"] = info_nce(text, frames.mean(1), 0.1)
        return out


def make_fake_host(spec: HostSpec, tag: Any, checkpoint: Path | None, **config: Any) -> FakeHost:
    host = FakeHost(spec, **config)
    if checkpoint is not None:
        host.load(checkpoint)
    return host


ALL_CAPS = frozenset({"retrieval", "classification", "generation", "multiple_choice"})
HOSTS.register("fake_host", HostSpec("fake_host", True, True, False, ALL_CAPS, factory=make_fake_host,
                                     status="implemented"), overwrite=True)
HOSTS.register("fake_retonly", HostSpec("fake_retonly", True, True, False, frozenset({"retrieval"}),
                                        factory=make_fake_host, status="implemented"), overwrite=True)


def hand_hsg(cls: str, sample_id: str) -> HolisticSceneGraph:
    """TSG "a red <cls> rolls over a box" + a 2-keyframe DSG (<cls>, box, "on") with temporal and cross edges."""
    cap = f"a red {cls} rolls over a box"
    w = {x: (cap.index(x), cap.index(x) + len(x)) for x in (cls, "red", "rolls over", "box")}
    tsg = TextualSceneGraph(cap, [cls, "red", "rolls over", "box"],
                            [NodeType.OBJECT, NodeType.ATTRIBUTE, NodeType.RELATION, NodeType.OBJECT],
                            [[0, 0, 2], [1, 2, 3]], [EdgeType.OBJ_ATTR, EdgeType.SUBJ_PRED, EdgeType.PRED_OBJ],
                            [w[cls], w["red"], w["rolls over"], w["box"]])
    boxes = [[1, 1, 8, 8], [8, 8, 15, 15], [0, 0, 0, 0]] * 2
    dsg = DynamicSceneGraph([cls, "box", "on"] * 2, [NodeType.OBJECT, NodeType.OBJECT, NodeType.RELATION] * 2,
                            [0, 0, 0, 1, 1, 1], boxes, [0.0, 1.0], (RES, RES),
                            [[0, 2, 3, 5], [2, 1, 5, 4]], [EdgeType.SUBJ_PRED, EdgeType.PRED_OBJ] * 2,
                            [[0, 1, 2], [3, 4, 5]])
    return HolisticSceneGraph(tsg, dsg, [[0, 3], [0, 1]], sample_id=sample_id).validate()


class FakeTask(Task):
    """Synthetic task: the class colours the frames; texts, labels, options and graphs follow the class."""

    dataset = "fake"
    splits = ("train", "test")
    protocol = VideoProtocol(num_frames=T, resolution=RES)
    sizes = {"train": 24, "test": 9}
    class_names = CLASSES

    def load_split(self, split: str) -> list[Sample]:
        g = torch.Generator().manual_seed(0 if split == "train" else 1)
        out = []
        for i in range(self.sizes[split]):
            c = i % len(CLASSES)
            frames = 0.1 * torch.rand(T, 3, RES, RES, generator=g)
            frames[:, c] += 0.8
            name = CLASSES[c]
            s = Sample(id=f"{split}{i}", texts=[f"a video of {name}", f"{name} rolls over a box"], label=c,
                       frames=frames, timestamps=torch.arange(T) * 0.5, scene_graph=hand_hsg(name, f"{split}{i}"))
            if self.task_type in (TaskType.MC_QA, TaskType.LONGFORM_QA):
                s.texts, s.options, s.answer_index = ["what is shown?"], list(CLASSES), c
            elif self.task_type == TaskType.OE_QA:
                s.texts, s.answer = ["what is shown?"], name
            elif self.task_type == TaskType.CAPTIONING:
                s.references = [f"a video of {name}"]
            elif self.task_type == TaskType.PARAGRAPH_RETRIEVAL:
                s.texts = [f"a video of {name}. {name} rolls over a box"]
            out.append(s)
        return out


def _task(name: str, tt: TaskType, metrics: tuple[str, ...], **attrs: Any) -> type[FakeTask]:
    cls = type(f"Fake_{name}", (FakeTask,), {"name": name, "task_type": tt, "metrics": metrics, **attrs})
    TASKS.register(name, cls, overwrite=True)
    return cls


_task("fake_action", TaskType.ACTION_RECOGNITION, ("top1", "top5"))
_task("fake_ret", TaskType.RETRIEVAL, ("t2v_r1",))
_task("fake_mc", TaskType.MC_QA, ("accuracy",))
_task("fake_oe", TaskType.OE_QA, ("accuracy",))
_task("fake_cap", TaskType.CAPTIONING, ("cider",))


class _Missing(FakeTask):
    name = "fake_missing"
    task_type = TaskType.RETRIEVAL

    def required_files(self, split: str) -> list[RequiredFile]:
        root = self.root or Path("/nonexistent/fake")
        return [RequiredFile(Path(root) / f"{split}.json", f"fake {split} annotations", "the fake dataset page")]


TASKS.register("fake_missing", _Missing, overwrite=True)


class SlowFakeHost(FakeHost):
    """FakeHost that sleeps in every training forward (to interrupt a job mid-training in tests)."""

    def __init__(self, spec: HostSpec, sleep: float = 0.0, **kw: Any) -> None:
        super().__init__(spec, **kw)
        self.sleep = sleep

    def encode_video(self, video: Tensor, frame_times: Tensor | None = None) -> Tensor:
        if self.training and self.sleep:
            import time

            time.sleep(self.sleep)
        return super().encode_video(video, frame_times)


HOSTS.register("fake_slow", HostSpec("fake_slow", True, True, False, ALL_CAPS, status="implemented",
                                     factory=lambda spec, tag, ckpt, **cfg: SlowFakeHost(spec, **cfg)), overwrite=True)


def _runner_base():
    from harness.launch import JobRunner

    return JobRunner


class FakeRunner(_runner_base()):
    """``JobRunner`` whose unpickling (in a submitit subprocess) registers the fakes (this module)."""


def ddp_worker(rank: int, world: int, init_file: str, spec: Any) -> None:
    """One DDP process (gloo, CPU): what ``JobRunner`` does inside a multi-task submitit job."""
    import torch.distributed as dist

    from harness.jobs import run_job

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        res = run_job(spec)
        if res.state != "finished":
            raise RuntimeError(res.error)
    finally:
        dist.destroy_process_group()
