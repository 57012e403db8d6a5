"""Post-training corpora readers (WebVid CSV, HD-VILA / LF-VILA JSON lines) and seeded N-pair sampling."""

from __future__ import annotations

import json

import pytest

from tasks.corpora import CorpusStats, build_corpus, parse_timestamp, read_pairs, sample_pairs


@pytest.fixture
def webvid(tmp_path):
    p = tmp_path / "results_2M_val.csv"
    rows = ["videoid,contentUrl,duration,page_dir,name"]
    rows += [f'{1000 + i},https://x/{i}.mp4,PT00H00M1{i % 10}S,{i % 3:03d}_{i % 3:03d},"caption {i}, with comma"'
             for i in range(50)]
    rows.append("1099,https://x/99.mp4,PT00H00M10S,000_000,")  # empty caption: skipped
    p.write_text("\n".join(rows) + "\n")
    return p


def test_webvid_reader(webvid, tmp_path):
    st = CorpusStats()
    pairs = list(read_pairs(webvid, video_root=tmp_path / "vids", stats=st))
    assert len(pairs) == 50 and st.skipped == 1 and st.yielded == 50
    assert pairs[0].texts == ["caption 0, with comma"]
    assert pairs[0].video == str(tmp_path / "vids" / "000_000" / "1000.mp4") and pairs[0].id == "webvid_1000"


def test_vila_reader_flat_and_nested(tmp_path):
    p = tmp_path / "hdvila_part0.jsonl"
    lines = [{"video_id": "QMi8x8o55Ns", "url": "u", "clip": [
        {"clip_id": "QMi8x8o55Ns.1.mp4", "span": ["00:00:17.759", "00:00:23.279"], "text": "hello there"},
        {"clip_id": "QMi8x8o55Ns.2.mp4", "span": ["00:00:30.000", "00:00:35.000"]}]},  # no transcript
        {"clip_id": "flat.mp4", "caption": "a flat record", "span": [1.5, 4.0]}]
    p.write_text("\n".join(json.dumps(x) for x in lines) + "\n{broken\n")
    st = CorpusStats()
    pairs = list(read_pairs(p, stats=st))
    assert [x.texts[0] for x in pairs] == ["hello there", "a flat record"]
    assert pairs[0].extra["clip_span"] == pytest.approx((17.759, 23.279)) and st.skipped == 2
    lf = tmp_path / "lfvila.jsonl"
    lf.write_text(json.dumps({"clip_id": "long.mp4", "text": ["first sentence.", "second one."]}) + "\n")
    assert next(iter(read_pairs(lf, fmt="lfvila"))).texts == ["first sentence. second one."]


def test_sample_pairs_seeded_and_uniform(webvid):
    a = sample_pairs(read_pairs(webvid), 10, seed=3)
    b = sample_pairs(read_pairs(webvid), 10, seed=3)
    c = sample_pairs(read_pairs(webvid), 10, seed=4)
    assert [x.id for x in a] == [x.id for x in b] and [x.id for x in a] != [x.id for x in c]
    assert len({x.id for x in a}) == 10
    assert len(sample_pairs(read_pairs(webvid), 500)) == 50  # fewer available: all of them
    # reservoir sampling is uniform: every pair equally likely over many seeds
    counts = {}
    for seed in range(400):
        for x in sample_pairs(read_pairs(webvid), 5, seed):
            counts[x.id] = counts.get(x.id, 0) + 1
    assert len(counts) == 50 and max(counts.values()) < 3 * 40


def test_build_corpus_mixes_sources(webvid, tmp_path):
    p = tmp_path / "h.jsonl"
    p.write_text("\n".join(json.dumps({"clip_id": f"c{i}", "text": f"t{i}"}) for i in range(30)) + "\n")
    pairs, stats = build_corpus([{"path": str(webvid), "n": 5}, {"path": str(p), "n": 4}], seed=0)
    assert len(pairs) == 9 and sum(x.extra["source"] == "hdvila" for x in pairs) == 4
    assert stats[str(webvid)].skipped == 1


def test_parse_timestamp_and_missing_file(tmp_path):
    assert parse_timestamp("00:04:52.140") == pytest.approx(292.14) and parse_timestamp(3) == 3.0
    with pytest.raises(FileNotFoundError, match="corpus file not found"):
        read_pairs(tmp_path / "nope.csv")


# -- plain corpora, BOM, mixtures, fingerprint (issue 11 item 1, issue 15 "BOM in a corpus CSV") -------------

def test_bom_in_csv_header_is_ignored(tmp_path):
    from tasks.corpora import sniff_format

    w = tmp_path / "webvid.csv"
    w.write_bytes("\ufeffvideoid,page_dir,name\n7,000_000,a dog runs\n".encode())
    assert sniff_format(w) == "webvid" and [s.id for s in read_pairs(w)] == ["webvid_7"]
    p = tmp_path / "plain.csv"
    p.write_bytes("\ufeffid,video,caption\nv1,v1.mp4,a cat sleeps\n".encode())
    assert sniff_format(p) == "plain"
    s = next(iter(read_pairs(p)))
    assert s.id == "v1" and s.video == str(tmp_path / "v1.mp4") and s.texts == ["a cat sleeps"]


def test_plain_reader_errors_name_file_record_field(tmp_path):
    from tasks.datasets.common import AnnotationError

    p = tmp_path / "pairs.jsonl"
    p.write_text(json.dumps({"id": "a", "video": "a.mp4", "caption": "x"}) + "\n"
                 + json.dumps({"id": "b", "caption": "y"}) + "\n")
    with pytest.raises(AnnotationError, match=r"pairs.jsonl, line 2: field 'video' is missing"):
        list(read_pairs(p, fmt="plain"))
    p.write_text(json.dumps({"id": "a", "video_path": "a.mp4", "caption": ""}) + "\n"
                 + json.dumps({"id": "a", "video": "b.mp4", "caption": "y"}) + "\n")
    with pytest.raises(AnnotationError, match=r"line 2: field 'id': duplicate id 'a'"):
        list(read_pairs(p, fmt="plain"))
    c = tmp_path / "pairs.csv"
    c.write_text("id,video,caption\nv1,,a dog\n")
    with pytest.raises(AnnotationError, match=r"pairs.csv, row 2: field 'video' is empty"):
        list(read_pairs(c))
    c.write_text("id,caption\nv1,a dog\n")
    with pytest.raises(AnnotationError, match=r"row 2: field 'video' is missing"):
        list(read_pairs(c))
    c.write_text("videoid,caption\n1,a\n")
    with pytest.raises(AnnotationError, match="neither WebVid"):
        list(read_pairs(c))


def test_duplicate_webvid_ids_are_skipped_and_counted(tmp_path):
    w = tmp_path / "w.csv"
    w.write_text("videoid,page_dir,name\n1,d,a\n1,d,b\n2,d,c\n")
    st = CorpusStats()
    assert [s.texts[0] for s in read_pairs(w, stats=st)] == ["a", "c"]
    assert st.skipped == 1 and "duplicate videoid '1'" in st.reasons[0]


def test_mixtures_resolve_load_and_fingerprint(webvid, tmp_path):
    from tasks.corpora import MIXTURES, load_corpus, resolve_corpus

    assert [(p.key, p.n) for p in MIXTURES["webvid25k_hdvila25k"]] == [("webvid", 25000), ("hdvila", 25000)]
    assert [(p.key, p.n) for p in MIXTURES["lfvila30k"]] == [("lfvila", 30000)]
    h = tmp_path / "h.jsonl"
    h.write_text("\n".join(json.dumps({"clip_id": f"c{i}", "text": f"t{i}"}) for i in range(30)) + "\n")
    spec = resolve_corpus("webvid25k_hdvila25k", {"webvid": str(webvid), "hdvila": str(h)},
                          n={"webvid": 4, "hdvila": 3}, seed=1)
    pairs, stats = load_corpus(spec)
    assert len(pairs) == 7 and stats[str(webvid)].skipped == 1
    again, _ = load_corpus(type(spec).from_dict(json.loads(json.dumps(spec.to_dict()))))
    assert [p.id for p in again] == [p.id for p in pairs]
    fp = spec.fingerprint()
    assert resolve_corpus("webvid25k_hdvila25k", {"webvid": str(webvid), "hdvila": str(h)},
                          n={"webvid": 4, "hdvila": 3}, seed=2).fingerprint() != fp
    h.write_text(h.read_text() + json.dumps({"clip_id": "c99", "text": "new"}) + "\n")
    assert spec.fingerprint() != fp  # content changed
    with pytest.raises(ValueError, match="needs a file for source 'hdvila'"):
        resolve_corpus("webvid25k_hdvila25k", {"webvid": str(webvid)})
    with pytest.raises(ValueError, match="unknown corpus mixture 'webvid50k'"):
        resolve_corpus("webvid50k", {})
    with pytest.raises(ValueError, match="names \\['hdvila'\\]"):
        resolve_corpus("lfvila30k", {"lfvila": str(h), "hdvila": str(h)})
    with pytest.raises(FileNotFoundError, match="file not found"):
        resolve_corpus("plain", {"plain": str(tmp_path / "none.csv")})
