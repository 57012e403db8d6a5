"""Catalogue entries (metadata only) for the paper's hosts (Table 10, Appendix C.1) that have no native
implementation yet. Torch-free. Implemented hosts register their own spec in their own file
(``hosts/clip4clip.py``, ``hosts/video_llava.py``, ...), which replaces the entry here; delete the entry when
you implement the host. Architecture flags, parameter counts and pre-training data are exactly as Table 10
reports them (our computed sizes, where they differ, are in ``notes``; see ``docs/hosts.md``). The capabilities
listed are those the paper uses the host for (what an implementation must provide); a catalogue host cannot be
built or planned.
"""

from __future__ import annotations

from hosts.spec import HostSpec, WeightTag, register_host

R, C, G, M = "retrieval", "classification", "generation", "multiple_choice"


def _spec(name: str, t: bool, v: bool, c: bool, caps: tuple[str, ...], params: str, data: str, paper: str,
          code: str, license: str, status: str, notes: str, tags: tuple[WeightTag, ...] = (),
          llm: bool = False, aliases: tuple[str, ...] = (), order: int = 1000, display: str = "") -> HostSpec:
    return HostSpec(name=name, has_text=t, has_video=v, has_cross=c, capabilities=frozenset(caps),
                    llm_text_cross=llm, factory=None,
                    tags={w.tag: w for w in tags}, params=params, pretrain_data=data, paper=paper, code=code,
                    license=license, status="catalogue", notes=notes, aliases=aliases, order=order,
                    display=display or name)


PAPER_HOSTS: tuple[HostSpec, ...] = (
    _spec("videoclip", True, True, False, (R, M), "203M", "1.1M",
          "Xu et al., VideoCLIP, EMNLP 2021", "https://github.com/facebookresearch/fairseq/tree/main/examples/MMPT",
          "MIT", "catalogue",
          "S3D 512-d per-second features; fairseq checkpoint pickles config objects: convert to safetensors "
          "offline before safe loading; computed size ~177M.",
          (WeightTag("", "checkpoint_best.pt", "VideoCLIP retrieval pre-training (fairseq MMPT)",
                     "https://dl.fbaipublicfiles.com/MMPT/retri/videoclip/checkpoint_best.pt"),),
          order=30, display="VideoCLIP"),
    _spec("hdvila", True, True, True, (R, C, M), "310M", "136M",
          "Xue et al., HD-VILA, CVPR 2022", "https://github.com/microsoft/XPretrain/tree/main/hd-vila",
          "Microsoft Research License (non-commercial)", "catalogue",
          "BERT-large split 0-11 text / 12-23 cross; 2x ResNet-50 + TimeSformer; computed ~460M; "
          "the release SAS link expired 2024-12-31; no captioning head in official code.",
          (WeightTag("", "hdvila_stage2.pt", "HD-VILA stage-2 pre-trained",
                     "pretrained.zip via microsoft/XPretrain hd-vila/scripts/download_data.sh (link expired; "
                     "ask the maintainers)"),),
          order=60, display="HDVILA"),
    _spec("lfvila", True, True, True, (R, C, M), "277M", "8.5M",
          "Sun et al., Long-Form Video-Language Pre-Training, NeurIPS 2022",
          "https://github.com/microsoft/XPretrain/tree/main/LF-VILA", "Microsoft Research License (non-commercial)",
          "catalogue", "BERT-large split 0-7 sentence / 8-11 paragraph / 12-23 cross; HTWA Video Swin; computed ~425M.",
          (WeightTag("", "lfvila_stage2.bin", "LF-VILA stage-2 pre-trained",
                     "lfvila_release.zip via microsoft/XPretrain LF-VILA/scripts/download_data.sh"),),
          order=80, display="LFVILA"),
    _spec("allinone", False, False, True, (R, C, M), "110M", "3.72M",
          "Wang et al., All in One, CVPR 2023", "https://github.com/showlab/all-in-one",
          "none stated (no LICENSE file)", "catalogue",
          "One shared ViT-B/16 over [text; frame] per frame with temporal token roll; Lightning checkpoint "
          "(convert to safetensors offline).",
          (WeightTag("", "all-in-one-base.ckpt", "All-in-one-B pre-trained",
                     "Google Drive link in showlab/all-in-one README"),), aliases=("all-in-one",),
          order=90, display="All-in-one"),
)

for _s in PAPER_HOSTS:
    register_host(_s)
