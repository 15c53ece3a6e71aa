"""mvf.sae: the embedded SAE, its recorded quality, and the offline errors for pretrained releases."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from mvf import activations, corpus, models, sae


@pytest.fixture(scope="module")
def embedded():
    return sae.load_embedded_sae()


@pytest.fixture(scope="module")
def held_out(model, embedded):
    _, provenance = embedded
    seq_len = provenance["corpus"]["seq_len"]
    rows = activations.tokenize_corpus(model.tokenizer, corpus.corpus_texts(), seq_len)
    rows = rows[sae.held_out_rows(len(rows), provenance["corpus"]["held_out_rows"], provenance["seed"])]
    layer = activations.check_hook(model, provenance["hook"])
    acts = activations.forward_rows(model, rows, provenance["hook"], layer, 16).astype(np.float32)
    return rows, acts[sae.ordinary_tokens(acts, seq_len, provenance["max_norm"])]


def test_provenance_says_how_to_rebuild_it(embedded):
    model_sae, provenance = embedded
    assert provenance["command"].startswith("python -m mvf.commands.train_sae")
    assert "without enable_compatibility_mode" in provenance["activation_mode"]
    assert model_sae.cfg.d_sae == provenance["d_sae"]
    assert provenance["corpus"]["sha"] == activations.corpus_hash(corpus.corpus_texts())


def test_recorded_quality_is_what_the_held_out_tokens_give(embedded, held_out):
    model_sae, provenance = embedded
    measured = sae.quality(model_sae, held_out[1])
    recorded = provenance["quality_on_held_out"]
    for key in ("l0", "fraction_variance_explained", "fraction_dead"):
        assert measured[key] == pytest.approx(recorded[key], abs=0.02 * max(1.0, abs(recorded[key])))
    assert measured["fraction_variance_explained"] > 0.6


def test_activation_mode_guard_catches_wrong_inputs(embedded, held_out):
    model_sae, provenance = embedded
    expected = provenance["quality_on_held_out"]["fraction_variance_explained"]
    assert sae.check_activation_mode(model_sae, held_out[1], expected) > expected - 0.05
    shifted = held_out[1] - held_out[1].mean(axis=0)  # what processed (centred) weights would feed it
    with pytest.raises(ValueError, match="activation mode"):
        sae.check_activation_mode(model_sae, shifted, expected)


def test_sparse_codes_equal_dense_encoding(embedded, held_out):
    model_sae, _ = embedded
    x = held_out[1][:300]
    dense = model_sae.encode(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(sae.sparse_codes(model_sae, x, batch_size=128).toarray(), dense, rtol=1e-5, atol=1e-6)


def test_spliced_loss_is_worse_than_clean_but_finite(model, embedded, held_out):
    model_sae, provenance = embedded
    loss = sae.spliced_loss(model, model_sae, provenance["hook"], held_out[0][:4], provenance["max_norm"])
    assert np.isfinite(loss["loss_with_sae"]) and loss["loss_with_sae"] >= loss["loss_clean"] - 0.01


def test_ordinary_tokens_leave_out_first_and_massive_tokens():
    acts = np.ones((8, 3), dtype=np.float16)
    acts[5] = 300.0  # its float16 square overflows; the norm must not
    keep = sae.ordinary_tokens(acts, seq_len=4, max_norm=sae.massive_norm_threshold(acts))
    assert keep.tolist() == [False, True, True, True, False, False, True, True]
    with pytest.raises(ValueError, match="whole rows"):
        sae.ordinary_tokens(acts[:7], seq_len=4, max_norm=10.0)


def test_pretrained_release_offline_names_the_cause_and_the_embedded_sae():
    with pytest.raises(models.HubUnavailableError, match=r"(?s)switched off \(HF_HUB_OFFLINE=1\).*load_embedded_sae") as caught:
        sae.load_sae("gpt2-small-res-jb")
    assert len(str(caught.value).splitlines()) == 2


def test_unknown_release_and_missing_folder():
    with pytest.raises(ValueError, match="gpt2-small-res-jb"):
        sae.load_sae("gpt5-res")
    with pytest.raises(FileNotFoundError, match="cfg.json"):
        sae.load_sae_from_disk("/nonexistent-sae")


def test_each_profile_picks_its_own_sae_and_mismatches_are_refused():
    chosen = sae.sae_for_model("smollm2-135m", 576)
    assert chosen.name == sae.EMBEDDED and chosen.hook == chosen.provenance["hook"] and 0.5 < chosen.expected_fve < 1
    with pytest.raises(ValueError, match="trained on gpt2-small, not 'smollm2-135m'"):
        sae.sae_for_model("smollm2-135m", 576, "gpt2-small-res-jb")
    with pytest.raises(ValueError, match="embedded SAE was trained on smollm2-135m"):
        sae.sae_for_model("gpt2-small", 768, sae.EMBEDDED)
    with pytest.raises(ValueError, match="no SAE is registered for 'llama-3-8b'"):
        sae.sae_for_model("llama-3-8b", 4096)
    with pytest.raises(ValueError, match="reads 576-d activations but the loaded smollm2-135m has d_model 64"):
        sae.sae_for_model("smollm2-135m", 64)
    assert {models.profile(name).sae_release for name in ("gpt2-small", "mistral-7b")} == {"gpt2-small-res-jb",
                                                                                          "mistral-7b-res-wg"}


def test_the_papers_feature_ids_apply_only_to_the_release_width():
    wide = sae.ChosenSAE(SimpleNamespace(cfg=SimpleNamespace(d_sae=24576)), "gpt2-small-res-jb", "", 0.9, None)
    narrow = sae.ChosenSAE(SimpleNamespace(cfg=SimpleNamespace(d_sae=256)), "gpt2-small-res-jb", "", 0.9, None)
    assert sae.paper_features(wide)["days"][0] == 2592
    assert sae.paper_features(narrow) == {}


def test_held_out_rows_are_seeded_and_spread_over_the_corpus():
    rows = sae.held_out_rows(10_000, 256, seed=0)
    assert np.array_equal(rows, sae.held_out_rows(10_000, 256, seed=0)) and len(np.unique(rows)) == 256
    assert rows.min() < 1_000 and rows.max() > 9_000  # not the last rows, as it once was
    with pytest.raises(ValueError, match="hold out"):
        sae.held_out_rows(100, 100, seed=0)
