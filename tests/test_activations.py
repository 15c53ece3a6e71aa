"""mvf.activations: positions from the tokenisation, collection, and the shard cache's guarantees."""

import hashlib

import numpy as np
import pytest
import torch

from mvf import activations, tokens

TEXTS = [f"On {day} we walked to the river and talked about {month}." for day, month in
         zip(["Monday", "Friday", "Sunday"] * 20, ["March", "July", "October", "May"] * 15)]  # fmt: skip
HOOK = "blocks.2.hook_resid_post"


def test_word_position_is_found_from_offsets(model):
    prompt = "We met on Monday, and again on Tuesday."
    ids = model.tokenizer(prompt, add_special_tokens=False)["input_ids"]
    position = tokens.word_position(model.tokenizer, prompt, "Tuesday", bos=False)
    assert model.tokenizer.decode(ids[position]).strip() == "Tuesday"
    first = tokens.word_position(model.tokenizer, "Monday, Monday, Monday", "Monday", bos=False, occurrence=0)
    assert first == 0


def test_collect_at_words_equals_a_direct_cache_lookup(model):
    prompts = ["The shop was closed last Thursday.", "Snow rarely falls here before December, they say."]
    out = activations.collect_at_words(model, prompts, ["Thursday", "December"], [HOOK, "blocks.0.hook_resid_pre"])
    for i, (prompt, word) in enumerate(zip(prompts, ["Thursday", "December"])):
        ids = torch.tensor([model.tokenizer(prompt, add_special_tokens=False)["input_ids"]])
        _, cache = model.run_with_cache(ids, names_filter=[HOOK])
        position = tokens.word_position(model.tokenizer, prompt, word, bos=False)
        torch.testing.assert_close(out[HOOK][i], cache[HOOK][0, position], atol=1e-4, rtol=1e-4)
    assert out["blocks.0.hook_resid_pre"].shape == (2, model.cfg.d_model)


@pytest.mark.parametrize(
    "prompts, words, hooks, message",
    [
        ([], [], [HOOK], "empty"),
        (["It rained on Monday."], ["Friday"], [HOOK], "does not occur"),
        (["It rained on Monday."], ["Monday"], ["blocks.99.hook_resid_post"], "out of range"),
        (["It rained on Monday."], ["Monday"], ["blocks.1.hook_nonsense"], "unknown hook"),
        (["It rained on Monday."], ["Monday", "Monday"], [HOOK], "one word per prompt"),
    ],
)
def test_bad_input_is_rejected_with_a_reason(model, prompts, words, hooks, message):
    with pytest.raises(ValueError, match=message):
        activations.collect_at_words(model, prompts, words, hooks)


def test_corpus_cache_round_trip_and_reuse(model, tmp_path, monkeypatch):
    first = activations.collect_corpus(model, "smollm2-135m", TEXTS, HOOK, tmp_path, seq_len=32, rows_per_shard=4)
    assert first.shape[1] == model.cfg.d_model and first.dtype == np.float16
    monkeypatch.setattr(activations, "forward_rows", lambda *a, **k: pytest.fail("a valid cache was recomputed"))
    again = activations.collect_corpus(model, "smollm2-135m", TEXTS, HOOK, tmp_path, seq_len=32, rows_per_shard=4)
    np.testing.assert_array_equal(first, again)
    assert not list(tmp_path.rglob(".*")), "temporary files were left behind"


@pytest.mark.parametrize("damage", ["flip bytes", "truncate", "delete"])
def test_damaged_shard_is_detected_and_recomputed(model, tmp_path, damage):
    run = lambda: activations.collect_corpus(model, "smollm2-135m", TEXTS, HOOK, tmp_path, seq_len=32, rows_per_shard=4)  # noqa: E731
    clean = run()
    shard = sorted(tmp_path.rglob("shard_00001.npy"))[0]
    data = shard.read_bytes()
    if damage == "flip bytes":
        shard.write_bytes(data[:-64] + bytes(64))
    elif damage == "truncate":
        shard.write_bytes(data[: len(data) // 2])
    else:
        shard.unlink()
    np.testing.assert_array_equal(run(), clean)


def test_interrupted_collection_resumes_from_finished_shards(model, tmp_path, monkeypatch):
    real = activations.forward_rows
    calls = []

    def failing_after_two(*args, **kwargs):
        if len(calls) == 2:
            raise KeyboardInterrupt
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(activations, "forward_rows", failing_after_two)
    with pytest.raises(KeyboardInterrupt):
        activations.collect_corpus(model, "smollm2-135m", TEXTS, HOOK, tmp_path, seq_len=32, rows_per_shard=2)
    resumed = []
    monkeypatch.setattr(activations, "forward_rows", lambda *a, **k: resumed.append(1) or real(*a, **k))
    result = activations.collect_corpus(model, "smollm2-135m", TEXTS, HOOK, tmp_path, seq_len=32, rows_per_shard=2)
    total_shards = len(list(tmp_path.rglob("shard_*.npy")))
    assert len(resumed) == total_shards - 2
    monkeypatch.setattr(activations, "forward_rows", real)
    fresh = activations.collect_corpus(model, "smollm2-135m", TEXTS, HOOK, tmp_path / "fresh", seq_len=32, rows_per_shard=2)
    np.testing.assert_array_equal(result, fresh)


def test_corpus_errors(model, tmp_path):
    with pytest.raises(ValueError, match="empty"):
        activations.collect_corpus(model, "smollm2-135m", [], HOOK, tmp_path)
    with pytest.raises(ValueError, match="fewer than one row"):
        activations.collect_corpus(model, "smollm2-135m", ["Hi."], HOOK, tmp_path, seq_len=512)
    with pytest.raises(ValueError, match="out of range"):
        activations.collect_corpus(model, "smollm2-135m", TEXTS, "blocks.30.hook_resid_post", tmp_path)


def test_prompt_cache_gives_the_same_activations_without_running_the_model(model, tmp_path, monkeypatch):
    prompts, words = ["It rained on Monday.", "See you on Friday then.", "Sunday"], ["Monday", "Friday", "Sunday"]
    hooks = [HOOK, "blocks.0.hook_resid_post"]
    plain = activations.collect_at_words(model, prompts, words, hooks, batch_size=2)
    cached = activations.collect_at_words(model, prompts, words, hooks, batch_size=2, cache_dir=tmp_path)
    monkeypatch.setattr(activations, "forward_at_positions", lambda *a, **k: pytest.fail("a valid cache was recomputed"))
    again = activations.collect_at_words(model, prompts, words, hooks, batch_size=2, cache_dir=tmp_path)
    for hook in hooks:
        torch.testing.assert_close(cached[hook], plain[hook], rtol=0, atol=0)
        torch.testing.assert_close(again[hook], plain[hook], rtol=0, atol=0)
    assert not list(tmp_path.rglob(".*")), "temporary files were left behind"


def test_prompt_cache_recomputes_a_damaged_batch_and_keys_on_the_prompts(model, tmp_path, monkeypatch):
    prompts, words = ["It rained on Monday.", "See you on Friday then.", "Sunday"], ["Monday", "Friday", "Sunday"]
    clean = activations.collect_at_words(model, prompts, words, [HOOK], batch_size=2, cache_dir=tmp_path)[HOOK]
    shard = sorted(tmp_path.rglob("shard_00001.npy"))[0]
    shard.write_bytes(shard.read_bytes()[:-16] + bytes(16))
    recomputed = []
    real = activations.forward_at_positions
    monkeypatch.setattr(activations, "forward_at_positions", lambda *a, **k: recomputed.append(1) or real(*a, **k))
    torch.testing.assert_close(
        activations.collect_at_words(model, prompts, words, [HOOK], batch_size=2, cache_dir=tmp_path)[HOOK], clean
    )
    assert len(recomputed) == 1, "only the damaged batch should be recomputed"
    activations.collect_at_words(model, prompts[:2], words[:2], [HOOK], batch_size=2, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("prompts-*"))) == 2, "another prompt set must get its own cache folder"


def test_weights_fingerprint_follows_the_weights():
    torch.manual_seed(0)
    layer = torch.nn.Linear(64, 64)
    before = activations.weights_fingerprint(layer)
    assert activations.weights_fingerprint(layer) == before
    with torch.no_grad():
        layer.weight[0, 0] += 1.0
    assert activations.weights_fingerprint(layer) != before


def test_with_bos_the_model_input_starts_with_it_and_positions_shift(model):
    """A profile with ``bos`` (Mistral, Llama, …): forward passes see BOS first, and positions count it."""
    from mvf import tasks

    problem = tasks.task("weekday-successor")[4]
    plain = tasks.positions(model.tokenizer, problem, bos=False)
    model.cfg.default_prepend_bos = True
    try:
        with_bos = tasks.positions(model.tokenizer, problem, bos=True)
        ids, lengths = activations.pad_prompts(model, [problem.prompt])
        out = activations.collect_at_positions(model, [problem.prompt], [with_bos["operand"]], [HOOK])
    finally:
        model.cfg.default_prepend_bos = False
    assert ids[0, 0].item() == model.tokenizer.bos_token_id and lengths == [plain["final"] + 2]
    assert with_bos == {"operand": plain["operand"] + 1, "final": plain["final"] + 1}
    _, cache = model.run_with_cache(ids, names_filter=[HOOK])
    torch.testing.assert_close(out[HOOK][0], cache[HOOK][0, with_bos["operand"]], atol=1e-4, rtol=1e-4)
    rows = activations.tokenize_corpus(model.tokenizer, TEXTS, 32, bos=True)
    assert (rows[:, 0] == model.tokenizer.bos_token_id).all() and rows.shape[1] == 32


def test_a_prompt_cache_hit_needs_the_same_weights_hook_positions_and_words(model, tmp_path, monkeypatch):
    """Each kind of mismatch planted alone: the cache must recompute, never serve the first call's activations."""
    prompts = ["It rained on Monday.", "See you on Friday then."]
    bos = tokens.prepends_bos(model)
    positions = [tokens.word_position(model.tokenizer, p, w, bos) for p, w in zip(prompts, ["Monday", "Friday"])]
    swapped = ["It rained on Friday.", "See you on Monday then."]  # other words at the very same token positions
    assert [tokens.word_position(model.tokenizer, p, w, bos) for p, w in zip(swapped, ["Friday", "Monday"])] == positions
    activations.collect_at_positions(model, prompts, positions, [HOOK], cache_dir=tmp_path)
    calls = []
    real = activations.forward_at_positions
    monkeypatch.setattr(activations, "forward_at_positions", lambda *a, **k: calls.append(1) or real(*a, **k))

    def recomputed(prompts_, positions_, hooks_) -> bool:
        before = len(calls)
        activations.collect_at_positions(model, prompts_, positions_, hooks_, cache_dir=tmp_path)
        return len(calls) > before

    assert not recomputed(prompts, positions, [HOOK]), "the same call must be a cache hit"
    assert recomputed(swapped, positions, [HOOK]), "other words at the same positions"
    assert recomputed(prompts, [p - 1 for p in positions], [HOOK]), "other positions"
    assert recomputed(prompts, positions, ["blocks.0.hook_resid_post"]), "another hook"
    first = next(model.parameters())
    with torch.no_grad():
        first.view(-1)[0] += 1.0
    try:
        assert recomputed(prompts, positions, [HOOK]), "other weights"
    finally:
        with torch.no_grad():
            first.view(-1)[0] -= 1.0


def test_a_prompt_cache_hit_needs_the_exact_token_ids(model, tmp_path, monkeypatch):
    """The same text, hook, positions and weights, but other token ids (as another tokenizer would give): recomputed."""
    prompts = ["It rained on Monday.", "See you on Friday then."]
    positions = [tokens.word_position(model.tokenizer, p, w, False) for p, w in zip(prompts, ["Monday", "Friday"])]
    first = activations.collect_at_positions(model, prompts, positions, [HOOK], cache_dir=tmp_path)[HOOK]
    real = activations.pad_prompts

    def other_ids(model_, prompts_):
        ids, lengths = real(model_, prompts_)
        return ids.roll(1, dims=1), lengths

    monkeypatch.setattr(activations, "pad_prompts", other_ids)
    second = activations.collect_at_positions(model, prompts, positions, [HOOK], cache_dir=tmp_path)[HOOK]
    assert not torch.equal(first, second), "the activations of other token ids were served from the cache"
    assert len(list(tmp_path.glob("prompts-*"))) == 2


def test_the_padding_is_not_part_of_the_prompt_key():
    ids = torch.tensor([[5, 6, 7], [8, 9, 0]])
    padded_otherwise = torch.tensor([[5, 6, 7], [8, 9, 4]])
    assert activations.ids_hash(ids, [3, 2]) == activations.ids_hash(padded_otherwise, [3, 2])
    assert activations.ids_hash(ids, [3, 2]) != activations.ids_hash(ids, [3, 3])
    assert activations.ids_hash(ids) != activations.ids_hash(padded_otherwise)
    assert activations.ids_hash(torch.tensor([[1, 2]])) != activations.ids_hash(torch.tensor([[1], [2]]))


def test_a_corpus_cache_hit_needs_the_same_weights_hook_token_ids_and_batches(model, tmp_path, monkeypatch):
    """Each kind of mismatch planted alone: the corpus cache must recompute, never serve the first call's shards."""
    calls = []
    real_forward, real_tokenize = activations.forward_rows, activations.tokenize_corpus
    monkeypatch.setattr(activations, "forward_rows", lambda *a, **k: calls.append(1) or real_forward(*a, **k))

    def recomputed(hook=HOOK, batch_size=16) -> bool:
        before = len(calls)
        activations.collect_corpus(model, "smollm2-135m", TEXTS, hook, tmp_path, seq_len=32, batch_size=batch_size)
        return len(calls) > before

    assert recomputed() and not recomputed(), "the same call must be a cache hit"
    assert recomputed(hook="blocks.1.hook_resid_post"), "another hook"
    assert recomputed(batch_size=4), "other batches"
    monkeypatch.setattr(activations, "tokenize_corpus", lambda *a, **k: real_tokenize(*a, **k).flip(1))
    assert recomputed(), "other token ids"
    monkeypatch.setattr(activations, "tokenize_corpus", real_tokenize)
    first = next(model.parameters())
    with torch.no_grad():
        first.view(-1)[0] += 1.0
    try:
        assert recomputed(), "other weights"
    finally:
        with torch.no_grad():
            first.view(-1)[0] -= 1.0


def test_resid_hooks_are_every_layers_in_order(model):
    hooks = activations.resid_hooks(model)
    assert len(hooks) == model.cfg.n_layers and hooks[0] == "blocks.0.hook_resid_post"
    assert hooks[-1] == f"blocks.{model.cfg.n_layers - 1}.hook_resid_post"
    assert activations.resid_hooks(model, "hook_resid_pre")[3] == "blocks.3.hook_resid_pre"
    with pytest.raises(ValueError):
        activations.resid_hooks(model, "hook_nowhere")


def test_positions_are_checked_against_each_prompts_length(model):
    prompts = ["It rained on Monday.", "Sunday"]
    lengths = activations.pad_prompts(model, prompts)[1]
    ok = activations.collect_at_positions(model, prompts, [lengths[0] - 1, lengths[1] - 1], [HOOK])
    assert ok[HOOK].shape == (2, model.cfg.d_model)
    for positions in ([lengths[0], 0], [0, -1]):
        with pytest.raises(ValueError, match="^a position lies outside its prompt; positions count tokens from 0.$"):
            activations.collect_at_positions(model, prompts, positions, [HOOK])
    with pytest.raises(ValueError, match="^got 2 prompts but 1 positions; pass one position per prompt.$"):
        activations.collect_at_positions(model, prompts, [0], [HOOK])
    with pytest.raises(ValueError, match="^the prompt list is empty; pass at least one prompt.$"):
        activations.collect_at_positions(model, [], [], [HOOK])


def test_batches_of_sorted_lengths_come_back_in_the_prompts_order(model):
    """Five prompts of different lengths, batched two by two after sorting: each row is its own prompt's."""
    prompts = ["A long sentence about what happened on Monday.", "Friday", "We met on Sunday.", "Tuesday it is.",
               "It was, as it always is, a very quiet Thursday."]  # fmt: skip
    words = ["Monday", "Friday", "Sunday", "Tuesday", "Thursday"]
    batched = activations.collect_at_words(model, prompts, words, [HOOK], batch_size=2)[HOOK]
    for i, (prompt, word) in enumerate(zip(prompts, words)):
        alone = activations.collect_at_words(model, [prompt], [word], [HOOK])[HOOK][0]
        torch.testing.assert_close(batched[i], alone, atol=1e-4, rtol=1e-4)


def test_corpus_rows_are_128_tokens_by_default(model, tmp_path):
    out = activations.collect_corpus(model, "smollm2-135m", TEXTS, HOOK, tmp_path)
    rows = activations.tokenize_corpus(model.tokenizer, TEXTS, 128)
    assert out.shape == (rows.numel(), model.cfg.d_model) and rows.shape[1] == 128


def test_the_corpus_hash_is_of_the_texts_and_their_boundaries():
    texts = ["On Monday.", "Then Friday."]
    digest = hashlib.sha256(b"On Monday.\x00Then Friday.\x00").hexdigest()[:16]
    assert activations.corpus_hash(texts) == activations.corpus_hash(tuple(texts)) == digest
    assert activations.corpus_hash(["On Monday.Then", " Friday."]) != digest


def test_corpus_rows_hold_the_texts_tokens_once_each_and_bos_only_when_asked(bos_adding_tokenizer):
    texts = ["On Monday.", "Then Friday, in March."]
    rows = activations.tokenize_corpus(bos_adding_tokenizer, texts, 4)
    ids = [i for text in texts for i in [*bos_adding_tokenizer(text, add_special_tokens=False)["input_ids"], bos_adding_tokenizer.eos_token_id]]
    assert rows.flatten().tolist() == ids[: rows.numel()]  # no BOS by default, not even the tokenizer's own
    with_bos = activations.tokenize_corpus(bos_adding_tokenizer, texts, 4, bos=True)
    assert (with_bos[:, 0] == bos_adding_tokenizer.bos_token_id).all() and with_bos[:, 1:].flatten().tolist() == ids[: with_bos[:, 1:].numel()]


def test_a_model_that_takes_bos_gets_corpus_rows_that_start_with_it(model, tmp_path, monkeypatch):
    seen = []
    real = activations.forward_rows
    monkeypatch.setattr(activations, "forward_rows", lambda m, rows, *a, **k: seen.append(rows) or real(m, rows, *a, **k))
    model.cfg.default_prepend_bos = True
    try:
        activations.collect_corpus(model, "smollm2-135m", TEXTS, HOOK, tmp_path, seq_len=32)
    finally:
        model.cfg.default_prepend_bos = False
    assert all((rows[:, 0] == model.tokenizer.bos_token_id).all() for rows in seen)


def test_two_corpora_keep_their_own_caches(model, tmp_path, monkeypatch):
    other = [text.replace("river", "sea") for text in TEXTS]
    for texts in (TEXTS, other):
        activations.collect_corpus(model, "smollm2-135m", texts, HOOK, tmp_path, seq_len=32)
    monkeypatch.setattr(activations, "forward_rows", lambda *a, **k: pytest.fail("the first corpus's cache was lost"))
    activations.collect_corpus(model, "smollm2-135m", TEXTS, HOOK, tmp_path, seq_len=32)
    with pytest.raises(ValueError, match="^the corpus is empty; pass at least one text.$"):
        activations.collect_corpus(model, "smollm2-135m", [], HOOK, tmp_path)
