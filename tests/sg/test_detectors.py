"""Detector / CLIP adapters with random weights on frames written by the test."""

import pytest
import torch

pytest.importorskip("torchvision")

from finsta_core.sg.detectors import FasterRCNNDetector, HFDetector  # noqa: E402
from finsta_core.sg.dsg import Detector, build_dsg  # noqa: E402


def _frames():
    torch.manual_seed(0)
    f = torch.rand(2, 3, 64, 80)
    f[:, 0, 10:40, 10:40] = 1.0
    return f


def test_fasterrcnn_random_weights_checkpoint_roundtrip(tmp_path):
    torch.manual_seed(0)
    det = FasterRCNNDetector(["person", "cup", "chair"], score_threshold=0.0, min_size=64, max_size=96)
    ckpt = tmp_path / "frcnn.pth"
    torch.save(det.model.state_dict(), ckpt)
    det = FasterRCNNDetector(["person", "cup", "chair"], ckpt, score_threshold=0.0, min_size=64, max_size=96)
    assert isinstance(det, Detector)
    out = det(_frames())
    assert len(out) == 2
    for d in out:
        assert d.boxes.shape == (len(d), 4) and d.features.shape == (len(d), 1024)
        assert set(d.labels) <= {"person", "cup", "chair"}
        if len(d):
            assert float(d.boxes[:, 2].max()) <= 80 + 1e-3 and float(d.boxes[:, 3].max()) <= 64 + 1e-3
    build_dsg(out, torch.tensor([0.0, 1.0]), (80, 64)).validate() if sum(map(len, out)) else None


def test_fasterrcnn_bad_checkpoint(tmp_path):
    with pytest.raises(FileNotFoundError, match="Faster R-CNN checkpoint"):
        FasterRCNNDetector(["a"], tmp_path / "missing.pth")
    torch.save({"foo": torch.zeros(1)}, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match="does not match"):
        FasterRCNNDetector(["a"], tmp_path / "bad.pth", min_size=64, max_size=96)


def test_transformers_yolos_tiny(tmp_path):
    tr = pytest.importorskip("transformers")
    cfg = tr.YolosConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                         image_size=[64, 64], patch_size=16, num_detection_tokens=8, num_labels=3,
                         id2label={0: "person", 1: "cup", 2: "chair"}, label2id={"person": 0, "cup": 1, "chair": 2})
    torch.manual_seed(0)
    model = tr.YolosForObjectDetection(cfg)
    model.save_pretrained(tmp_path / "yolos")
    det = HFDetector(str(tmp_path / "yolos"), score_threshold=0.0, image_size=(64, 64))
    out = det(_frames())
    assert len(out) == 2 and len(out[0]) == 8
    assert out[0].features.shape == (8, 32) and set(out[0].labels) <= {"person", "cup", "chair"}


def test_clip_scorer_tiny():
    tr = pytest.importorskip("transformers")
    from finsta_core.sg.link import CLIPScorer

    cfg = tr.CLIPConfig(text_config={"vocab_size": 100, "hidden_size": 16, "intermediate_size": 32,
                                     "num_hidden_layers": 1, "num_attention_heads": 2, "max_position_embeddings": 16},
                        vision_config={"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1,
                                       "num_attention_heads": 2, "image_size": 32, "patch_size": 8},
                        projection_dim=8)
    torch.manual_seed(0)

    def tokenize(texts):
        ids = [[(hash(w) % 97) + 1 for w in t.split()][:12] for t in texts]
        n = max(map(len, ids))
        return {"input_ids": torch.tensor([x + [0] * (n - len(x)) for x in ids]),
                "attention_mask": torch.tensor([[1] * len(x) + [0] * (n - len(x)) for x in ids])}

    s = CLIPScorer(tr.CLIPModel(cfg), tokenize=tokenize)
    sim = s(["man", "dog"], ["person", "dog", "cup"])
    assert sim.shape == (2, 3) and torch.allclose(sim[1, 1], torch.tensor(1.0), atol=1e-5)
    img = s.image_embed(_frames(), torch.tensor([0, 1]), torch.tensor([[0.0, 0, 30, 30], [10, 10, 60, 50]]))
    assert img.shape == (2, 8) and torch.allclose(img.norm(dim=1), torch.ones(2), atol=1e-5)
