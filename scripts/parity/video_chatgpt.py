"""Regenerate the Video-ChatGPT parity fixtures from the official code (mbzuai-oryx/Video-ChatGPT @659e04b).

1. imports the official ``VideoChatGPTLlamaForCausalLM`` and ``get_spatio_temporal_features_torch`` from a
   checkout (``--official``; ``video_chatgpt/inference.py`` is loaded without its conversation / stopping-
   criteria imports, which this comparison does not use);
2. builds the official class at a tiny ``LlamaConfig`` (width 32, 2 layers; ``mm_hidden_size`` 1024, which the
   official forward hard-codes), adds ``<vid_patch>``, ``<vid_start>``, ``<vid_end>`` to a tiny tokenizer and
   resizes the embeddings as ``initialize_model`` does, randomises every weight (seed 0);
3. saves the official layout: ``LLaVA-7B-Lightening-v1-1/`` (``save_pretrained`` of the official class, with a
   *different* projector, as LLaVA-Lightning ships its own image projector, + tokenizer) and
   ``video_chatgpt-7B.bin`` (``model.mm_projector.{weight,bias}``, loaded over it non-strictly);
4. runs the official pooling on fixed penultimate CLIP features ``[T=3, P=4, 1024]`` (it returns float16) and the
   official LLM on the prompt ``SYSTEM USER: q\\n<vid_start><vid_patch>*N<vid_end> ASSISTANT:`` with those
   features, and stores the pooled features, first-layer LLM states and logits.

CI needs neither the official code nor the network: ``tests/hosts/test_hosts_video_chatgpt.py``.

Usage::

    python scripts/parity/video_chatgpt.py --official /path/to/Video-ChatGPT [--out tests/fixtures/hosts/video_chatgpt]
"""

from __future__ import annotations

import argparse
import ast
import sys
import types
from pathlib import Path

import torch

OFFICIAL_COMMIT = "659e04b"
WORDS = "a the man woman dog cat ball red runs throws what who is doing in video ? . describe".split()
QUESTIONS = ["what is the man doing ?", "who runs in the video ?"]
FRAMES, PATCHES, MM_HIDDEN, TEMPORAL = 3, 4, 1024, 100


def make_tokenizer():
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    specials = ["<unk>", "<s>", "</s>", "<pad>"]
    words = sorted(set(WORDS + "you are video-chatgpt user assistant :".split()))
    vocab = {t: i for i, t in enumerate(specials + words)}
    tk = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tk.normalizer = normalizers.Lowercase()
    tk.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()])
    return PreTrainedTokenizerFast(tokenizer_object=tk, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
                                   unk_token="<unk>")


def official_pooling(root: Path):
    """``get_spatio_temporal_features_torch`` from ``video_chatgpt/inference.py`` (only that function)."""
    src = (root / "video_chatgpt" / "inference.py").read_text()
    tree = ast.parse(src)
    fn = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "get_spatio_temporal_features_torch")
    module = types.ModuleType("official_inference")
    module.torch = torch
    exec(compile(ast.Module(body=[fn], type_ignores=[]), str(root / "video_chatgpt/inference.py"), "exec"),
         module.__dict__)
    return module.get_spatio_temporal_features_torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--official", required=True, type=Path, help="checkout of mbzuai-oryx/Video-ChatGPT")
    ap.add_argument("--out", type=Path,
                    default=Path(__file__).resolve().parents[2] / "tests/fixtures/hosts/video_chatgpt")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(1)
    sys.path.insert(0, str(args.official.resolve()))
    from transformers import LlamaConfig
    from video_chatgpt.model.video_chatgpt import (  # official code
        DEFAULT_VID_END_TOKEN,
        DEFAULT_VID_START_TOKEN,
        DEFAULT_VIDEO_PATCH_TOKEN,
        VideoChatGPTConfig,
        VideoChatGPTLlamaForCausalLM,
    )

    pool = official_pooling(args.official)
    tok = make_tokenizer()
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512, bos_token_id=1,
                      eos_token_id=2, pad_token_id=3, tie_word_embeddings=False)
    cfg = VideoChatGPTConfig(**cfg.to_dict(), mm_vision_tower="openai/clip-vit-large-patch14", use_mm_proj=True,
                             mm_hidden_size=MM_HIDDEN)
    torch.manual_seed(args.seed)
    model = VideoChatGPTLlamaForCausalLM(cfg)
    # official initialize_model / initialize_vision_tokenizer(mm_use_vid_start_end=True)
    tok.add_tokens([DEFAULT_VIDEO_PATCH_TOKEN], special_tokens=True)
    tok.add_tokens([DEFAULT_VID_START_TOKEN, DEFAULT_VID_END_TOKEN], special_tokens=True)
    model.resize_token_embeddings(len(tok))
    vc = model.get_model().vision_config
    vc.use_vid_start_end = True
    vc.vid_patch_token = tok.convert_tokens_to_ids(DEFAULT_VIDEO_PATCH_TOKEN)
    vc.vid_start_token, vc.vid_end_token = tok.convert_tokens_to_ids([DEFAULT_VID_START_TOKEN, DEFAULT_VID_END_TOKEN])
    g = torch.Generator().manual_seed(args.seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(1 + 0.1 * torch.randn(p.shape, generator=g))
            elif p.dim() >= 2:
                p.copy_(torch.randn(p.shape, generator=g) * p.shape[-1] ** -0.5)
            else:
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
    model.eval()
    projector = {f"model.mm_projector.{k}": v.clone() for k, v in model.get_model().mm_projector.state_dict().items()}
    features = torch.randn(len(QUESTIONS), FRAMES, PATCHES, MM_HIDDEN, generator=g).half().float()
    pooled = torch.stack([pool(f) for f in features])  # float16, as the official code returns
    n_video = TEMPORAL + PATCHES
    system = ("You are Video-ChatGPT, a large vision-language assistant. You are able to understand the video "
              "content that the user provides, and assist the user with a variety of tasks using natural language."
              "Follow the instructions carefully and explain your answers in detail based on the provided video.")
    prompts = [f"{system} USER: {q}\n{DEFAULT_VID_START_TOKEN}{DEFAULT_VIDEO_PATCH_TOKEN * n_video}"
               f"{DEFAULT_VID_END_TOKEN} ASSISTANT:" for q in QUESTIONS]
    enc = tok(prompts, add_special_tokens=False, padding=True, padding_side="left")
    ids = torch.tensor([[tok.bos_token_id] + r for r in enc["input_ids"]])
    mask = torch.tensor([[1] + r for r in enc["attention_mask"]])
    if not bool(mask.all()):
        raise SystemExit("the two prompts must tokenise to the same length (no padding): change QUESTIONS")
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=mask, output_hidden_states=True,
                    video_spatio_temporal_features=pooled.float())
    args.out.mkdir(parents=True, exist_ok=True)
    llm_dir = args.out / "LLaVA-7B-Lightening-v1-1"
    with torch.no_grad():  # LLaVA-Lightning ships its own (image) projector; Video-ChatGPT's file replaces it
        saved = model.get_model().mm_projector.weight.clone()
        model.get_model().mm_projector.weight.mul_(-1.0)
        model.save_pretrained(llm_dir)
        model.get_model().mm_projector.weight.copy_(saved)
    tok.save_pretrained(llm_dir)
    torch.save(projector, args.out / "video_chatgpt-7B.bin")
    torch.save({"questions": QUESTIONS, "features": features.half(), "pooled": pooled, "input_ids": ids,
                "first": out.hidden_states[1], "logits": out.logits,
                "meta": {"official": f"mbzuai-oryx/Video-ChatGPT@{OFFICIAL_COMMIT}", "seed": args.seed,
                         "frames": FRAMES, "patches": PATCHES, "mm_hidden": MM_HIDDEN, "temporal": TEMPORAL}},
               args.out / "refs.pt")
    for f in sorted(args.out.rglob("*")):
        if f.is_file():
            print(f"{f}: {f.stat().st_size} bytes")


if __name__ == "__main__":
    main()
