"""The trained control: its problems and circle orders are modular addition, its key frequency is found, and the
shipped weights are the ones its record describes."""

import numpy as np
import pytest

from mvf import models, tasks, tokens, trained_control
from mvf.cache import sha256_file


@pytest.mark.parametrize("k", [1, 3, 17])
def test_problems_on_a_frequency_circle_are_still_modular_addition(k):
    p = 11
    order = trained_control.frequency_order(k, p)
    for problem in trained_control.problems(p, order):
        start, shift, answer = (int(problem.names[i]) for i in (problem.start, problem.shift, problem.answer))
        assert answer == (start + shift) % p
        assert problem.prompt == f"{shift} after {start} is"
    # Position y of the circle holds the number at angle 2πky/p.
    assert all((k * int(n)) % p == y for y, n in enumerate(order))


def test_a_multiple_of_the_modulus_and_a_non_permutation_are_refused():
    with pytest.raises(ValueError, match="multiple of the modulus"):
        trained_control.frequency_order(22, 11)
    with pytest.raises(ValueError, match="permutation"):
        trained_control.problems(5, np.array([0, 1, 2, 3, 3]))


def test_the_split_is_seeded_and_holds_the_asked_fraction():
    settings = trained_control.Training(modulus=13, train_fraction=0.3)
    first = trained_control.split(settings)
    assert np.array_equal(first, trained_control.split(settings)) and first.sum() == round(0.3 * 169)
    assert not np.array_equal(first, trained_control.split(trained_control.Training(modulus=13, train_fraction=0.3, seed=1)))


@pytest.fixture(scope="module")
def model():
    return models.load_model(trained_control.PROFILE, device="cpu")


def test_positions_and_answer_tokens_with_bos(model):
    problem = trained_control.problems()[5 * trained_control.MODULUS + 7]
    ids = tokens.encode(model.tokenizer, problem.prompt, True)
    assert model.tokenizer.convert_ids_to_tokens(ids) == ["<s>", "▁7", "▁after", "▁5", "▁is"]
    assert tasks.positions(model.tokenizer, problem, True) == {"operand": 3, "final": 4}
    answers = tasks.candidates(model.tokenizer, [problem])[0]
    assert model.tokenizer.convert_ids_to_tokens(answers.tolist()) == [f"▁{n}" for n in range(trained_control.MODULUS)]


def test_the_shipped_weights_are_the_recorded_ones_and_solve_the_held_out_problems(model):
    record = trained_control.record()
    folder = trained_control.shipped_folder()
    assert sha256_file(folder / "model.safetensors") == record["weights sha256"]
    settings = trained_control.Training(**record["settings"])
    held_out = [p for p, trained in zip(trained_control.problems(settings.modulus), trained_control.split(settings))
                if not trained]  # fmt: skip
    accuracy, _ = tasks.evaluate(model, held_out, batch_size=512)
    # The record's held-out accuracy was measured on the same problems with the transformers model before saving.
    assert accuracy["vocab"] == pytest.approx(record["final held-out accuracy"], abs=2 / len(held_out))
