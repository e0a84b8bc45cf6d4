"""Text queries over pixels: captions from known metrics, the sentence rules, the tokeniser, the
text head's training and model file, and ``pimc text-fit`` / ``pimc query`` on a tiny sample."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio
import torch

from pimc_core.cli import main
from pimc_core.errors import InputError
from pimc_core.learn.text_align import PixelFacts, TextFitConfig, fit_text_head
from pimc_core.models.pimc_config import PimcModelConfig
from pimc_core.models.pimc_net import PimcNet
from pimc_core.models.text_encoder import TEXT_MODULES, Tokeniser, load_text_head, save_text_model, words
from pimc_core.series.captions import class_captions, day_phrase, pixel_caption, rule_score, sentence_rules
from tests.conftest import left_nothing

TINY = dict(indices=("ndvi", "evi"), n_dates=12, rp={"size": 8},
            rp_encoder={"width": 4, "depth": 1, "embed_dim": 8},
            series_encoder={"width": 4, "depth": 1, "embed_dim": 8, "bins": 4},
            patch_encoder={"width": 4, "depth": 1, "embed_dim": 8}, proj_dim=8)


# ----------------------------------------------------------------------------- captions and rules
def test_day_phrases_are_thirds_of_months():
    assert day_phrase(110, 2023) == "mid april"  # 20 April is day 110; day 111 = 21 April
    assert day_phrase(111, 2023) == "late april"
    assert day_phrase(91, 2023) == "early april"
    assert day_phrase(196, 2023) == "mid july"
    assert day_phrase(196, 2023, part=False) == "july"


def test_captions_say_the_pixels_own_metrics():
    m = {"sos": 115.0, "pos": 185.0, "eos": 230.0, "peak": 0.81, "length": 115.0}
    rng = np.random.default_rng(0)
    caps = [pixel_caption(m, 0.4, 2023, rng) for _ in range(300)]
    said = " ".join(caps)
    for phrase in ("april", "july", "august", "0.8"):
        assert phrase in said
    for wrong in ("march", "june", "september", "0.7", "0.9"):
        assert wrong not in said
    assert len(set(caps)) > 50  # paraphrases, not one template
    # every caption of the pixel states rules its own metrics satisfy
    for c in caps:
        rules = sentence_rules(c, 2023)
        assert rule_score(rules, {k: np.array([v]) for k, v in m.items()})[0] == 0.0, c


def test_captions_without_a_season_and_with_a_class():
    rng = np.random.default_rng(1)
    nan = {"sos": np.nan, "pos": np.nan, "eos": np.nan, "peak": np.nan, "length": np.nan}
    flat = {pixel_caption(nan, -0.3, 2023, rng) for _ in range(100)}
    assert any("water" in c for c in flat) and not any("green-up in" in c for c in flat)
    m = {"sos": 80.0, "pos": 140.0, "eos": 185.0, "peak": 0.8, "length": 105.0}
    caps = [pixel_caption(m, 0.4, 2023, rng, class_name="winter_wheat", description="Sown in autumn") for _ in range(200)]
    assert any(c == "winter wheat" for c in caps) and any(c.startswith("a field of winter wheat: ") for c in caps)
    assert "sown in autumn" in caps
    assert "winter wheat" in class_captions("winter_wheat")


def test_sentence_rules_read_a_description():
    rules = sentence_rules("Green-up in April, peak NDVI 0.8 in early July, harvested after mid August", 2023)
    got = {(r.metric, r.low, r.high) for r in rules}
    # mid August ends on 20 August, day 232
    assert ("sos", 91, 120) in got and ("pos", 182, 191) in got and ("eos", 232, 400) in got
    assert [(r.low, r.high) for r in rules if r.metric == "peak"] == [(pytest.approx(0.75), pytest.approx(0.85))]
    assert sentence_rules("something else entirely", 2023) == []
    s = rule_score(rules[:1], {"sos": np.array([100.0, 130.0, np.nan])})
    assert s[0] == 0 and s[1] == -10 and s[2] == -np.inf


# ----------------------------------------------------------------------------- tokeniser
def test_tokeniser_round_trip_and_unknown_words():
    tok = Tokeniser.build(["green-up in late April", "peak NDVI 0.8 in July", "winter_wheat"])
    assert tok.vocab[:2] == ["<pad>", "<unk>"]
    assert words("Green-up in late April, peak NDVI 0.8!") == ["green-up", "in", "late", "april", "peak", "ndvi", "0.8"]
    ids = tok.encode(["green-up in late april", "peak ndvi 0.8 in july"])
    assert ids.shape == (2, 5) and ids[0, 4] == 0  # padded
    assert tok.decode(ids) == ["green-up in late april", "peak ndvi 0.8 in july"]
    assert tok.unknown("green-up in Moonlight and moonlight") == ["moonlight", "and"]
    assert tok.decode(tok.encode(["maize in july"])) == ["<unk> in july"]
    assert Tokeniser(json.loads(json.dumps(tok.vocab))).vocab == tok.vocab
    with pytest.raises(InputError, match="vocabulary"):
        Tokeniser(["a", "b"])


# ----------------------------------------------------------------------------- training and the file
def _facts(n=256, seed=0) -> PixelFacts:
    """Pixels of three kinds whose embeddings say their kind (a trained pixel encoder's job)."""
    rng = np.random.default_rng(seed)
    kind = rng.integers(0, 3, n)
    sos = np.array([90.0, 150.0, np.nan])[kind] + rng.normal(0, 3, n)
    metrics = {"sos": sos, "pos": sos + 60, "eos": sos + 110, "peak": np.full(n, 0.8), "length": np.full(n, 110.0)}
    emb = np.eye(3)[kind] * 2 + rng.normal(0, 0.1, (n, 3))
    names = [("wheat", "maize", "water")[k] for k in kind]
    return PixelFacts(np.hstack([emb, rng.normal(0, 0.1, (n, 5))]).astype(np.float32), metrics,
                      np.where(kind == 2, -0.3, 0.4), 2023, "ndvi", names)


def test_training_reduces_the_loss_and_queries_find_the_kind():
    facts = _facts()
    head, summary = fit_text_head(facts, TextFitConfig(epochs=25, batch_size=64, seed=0))
    losses = summary["losses"]
    assert len(losses) == 25 and losses[-1] < 0.8 * losses[0]
    pix = head.pixel_vectors(facts.embeddings)
    pix /= np.linalg.norm(pix, axis=1, keepdims=True)
    kinds = np.array(facts.class_names)
    for text, kind in (("maize", "maize"), ("green-up in early april", "wheat"), ("open water", "water")):
        sim = pix @ head.text_vectors([text])[0]
        top = kinds[np.argsort(-sim)[: (kinds == kind).sum()]]
        assert (top == kind).mean() > 0.9, text


def _pixel_model(tmp_path):
    from pimc_core.models.pixel_model import save_pixel_model

    torch.manual_seed(0)
    net = PimcNet(PimcModelConfig.from_dict(TINY))
    net.set_normalisation({"indices": {"mean": [0.3, 0.3], "std": [0.2, 0.2]}})
    return save_pixel_model(tmp_path / "m.pimc", net.eval(), dates={"mode": "grid", "start_doy": 1, "step_days": 30},
                            min_valid=3)


def test_model_file_with_a_text_head_loads_without_code_and_still_maps(tmp_path):
    from pimc_core.models.model_file import load_model
    from pimc_core.models.pixel_model import load_pixel_model

    base = _pixel_model(tmp_path)
    facts = _facts(64)
    facts.embeddings = np.random.default_rng(0).normal(size=(64, load_pixel_model(base).embed_dim)).astype(np.float32)
    head, summary = fit_text_head(facts, TextFitConfig(epochs=2, batch_size=32))
    out = save_text_model(tmp_path / "m_text.pimc", base, head, summary)
    raw = out.read_bytes()
    assert b"\x80\x04" not in raw[:8] and b"pickle" not in raw  # safetensors + JSON, nothing to unpickle
    weights, meta = load_model(out)
    assert set(TEXT_MODULES) <= set(weights) and meta["architecture"]["text_encoder"]["vocab"] == head.tokeniser.vocab
    assert meta["training"]["text"]["losses"] == summary["losses"]
    again = load_text_head(out)
    np.testing.assert_allclose(again.text_vectors(["maize in july"]), head.text_vectors(["maize in july"]), atol=1e-6)
    x = np.random.default_rng(2).uniform(0, 0.8, (5, 2, 12)).astype(np.float32)
    np.testing.assert_allclose(load_pixel_model(out).predict(x)["embeddings"], load_pixel_model(base).predict(x)["embeddings"])
    with pytest.raises(InputError, match="no text head.*pimc text-fit"):
        load_text_head(base)


def test_sampled_facts_are_the_phenology_map_and_labels_at_their_pixels(tiny_sample, tmp_path):
    from pimc_core.io.classes import load_class_table
    from pimc_core.io.labels import read_labels
    from pimc_core.io.timeseries import open_series
    from pimc_core.maps.phenology import phenology_map
    from pimc_core.maps.text_query import collect_facts
    from pimc_core.series.phenology import METRICS

    ts = open_series(tiny_sample.manifest)
    labels = read_labels(tiny_sample.labels, ts.grid, classes=load_class_table(tiny_sample.classes_json))
    facts = collect_facts(ts, str(_pixel_model(tmp_path)), None, tmp_path / "o", labels=labels, pixels=200, seed=1,
                          block=8)
    assert 150 <= len(facts) <= 24 * 24 and facts.year == 2023 and facts.index == "ndvi"
    r, c = facts.positions.T
    assert len(set(zip(r.tolist(), c.tolist()))) == len(facts)  # distinct pixels
    names = {x["id"]: x["name"] for x in labels.classes}
    assert facts.class_names == [names[int(i)] for i in labels.array[r, c]]
    phenology_map(ts, None, tmp_path / "ph")
    with rasterio.open(tmp_path / "ph" / "phenology.tif") as ds:
        ph = ds.read()[:, r, c]
    season = np.isfinite(ph[0])
    assert season.mean() > 0.5  # most pixels of the sample have a season, as on the map
    # the model's gap-filled series vs the map's series with gaps: the same seasons (the noise gate
    # of a few pixels differs) and the same days within a grid step
    assert (np.isfinite(facts.metrics["sos"]) == season).mean() > 0.9
    for m, tol in (("sos", 10.0), ("pos", 10.0), ("eos", 10.0), ("peak", 0.05)):  # 12 dates: ~30 days apart
        assert np.nanmedian(np.abs(facts.metrics[m] - ph[METRICS.index(m)])) <= tol, m


# ----------------------------------------------------------------------------- the commands
def test_text_fit_and_query_write_a_similarity_map(tiny_sample, tmp_path, capsys):
    base = _pixel_model(tmp_path)
    s = tiny_sample
    out = tmp_path / "m_text.pimc"
    assert main(["text-fit", str(s.manifest), "--model", str(base), "--out", str(out), "--labels", str(s.labels),
                 "--classes", str(s.classes_json), "--epochs", "3", "--pixels", "300", "--quiet"]) == 0
    line = capsys.readouterr().out
    assert "labelled" in line and "written to" in line and out.exists()
    maps = tmp_path / "maps"
    assert main(["query", str(s.manifest), "--model", str(out), "--text", "maize, green-up in zorblax June",
                 "--out", str(maps), "--quiet"]) == 0
    cap = capsys.readouterr()
    assert cap.err.strip() == "pimc: query: words not in the model's vocabulary, ignored: zorblax"
    with rasterio.open(maps / "similarity.tif") as ds, rasterio.open(s.labels) as lab:
        sim = ds.read(1)
        assert ds.dtypes[0] == "float32" and sim.shape == lab.shape and ds.crs == lab.crs
        assert "maize" in ds.tags()["pimc_query"]
    assert np.isfinite(sim).mean() > 0.9 and np.nanmax(np.abs(sim)) <= 1.0
    assert sorted(p.name for p in maps.iterdir()) == ["similarity.qml", "similarity.tif"]  # no temporary left


@pytest.mark.parametrize("argv, message", [
    (["--text", "qwerty zxcv"], "no word of 'qwerty zxcv' is in the model's vocabulary"),
    (["--text", "  "], "--text: give a sentence"),
])
def test_query_errors_are_one_line(tiny_sample, tmp_path, capsys, argv, message):
    base = _pixel_model(tmp_path)
    out = tmp_path / "t.pimc"
    assert main(["text-fit", str(tiny_sample.manifest), "--model", str(base), "--out", str(out), "--epochs", "1",
                 "--pixels", "100", "--quiet"]) == 0
    capsys.readouterr()
    assert main(["query", str(tiny_sample.manifest), "--model", str(out), "--out", str(tmp_path / "q"), *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and message in err
    assert left_nothing(tmp_path / "q")
    # text-fit never overwrites its model (the head is added to a copy)
    assert main(["text-fit", str(tiny_sample.manifest), "--model", str(base), "--out", str(base), "--quiet"]) == 2
    assert "is an input of this run" in capsys.readouterr().err
    # a model without a text head
    assert main(["query", str(tiny_sample.manifest), "--model", str(base), "--out", str(tmp_path / "q"), "--text",
                 "maize"]) == 2
    assert "no text head" in capsys.readouterr().err


def test_benchmark_truth_and_ranking_measures():
    from benchmarks.bench_text_query import DESCRIPTIONS, average_precision, nominal_truth, precision_at_count

    names = ["winter_wheat", "maize", "soybean", "sunflower", "grassland", "deciduous_forest", "coniferous_forest",
             "bare_urban", "water"]
    truths = {t: nominal_truth(t, 2023, names) for t in DESCRIPTIONS}
    assert truths["green-up in March, harvested in July"] == ("winter_wheat",)
    assert truths["green-up in early June, harvested in late September"] == ("maize",)
    assert truths["peak NDVI 0.8 in July"] == ("maize", "soybean")
    assert all(truths.values())  # every sentence of the benchmark describes some class
    truth = np.array([True, True, False, False])
    assert precision_at_count(np.array([0.9, 0.1, 0.8, 0.0]), truth) == 0.5
    assert precision_at_count(np.array([0.0, 0.0, 0.0, -np.inf]), truth, seed=3) in (0.0, 0.5, 1.0)  # ties: at random
    assert average_precision(np.array([0.9, 0.8, 0.1, -np.inf]), truth) == 1.0
