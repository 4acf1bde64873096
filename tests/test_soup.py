"""Model soups: the average of classifiers' weights, and the greedy choice of which to average."""

from pathlib import Path

import pytest
import torch
from conftest import save_checkpoint

from seqdemo.core.models import SentimentClassifier
from seqdemo.core.tokenizer import Tokenizer
from seqdemo.experiments import soup
from seqdemo.experiments.card import TRAINING_FILE, read_json
from seqdemo.inference.hub import load_folder, load_model


def classifier(tokenizer: Tokenizer, seed: int, storage: str = "float32") -> SentimentClassifier:
    torch.manual_seed(seed)
    return SentimentClassifier(vocab_size=tokenizer.vocab_size, embed_dim=16, hidden_size=12,
                               weight_storage=storage).eval()


def checkpoints(tmp_path: Path, tokenizer: Tokenizer, seeds, storage: str = "float32") -> list[Path]:
    folders = []
    for seed in seeds:
        folder = tmp_path / f"seed{seed}"
        save_checkpoint(classifier(tokenizer, seed, storage), tokenizer, folder)
        (folder / TRAINING_FILE).write_text(f'{{"seed": {seed}}}\n')
        folders.append(folder)
    return folders


def test_soup_holds_the_mean_of_the_weights_and_the_ingredients_records(tmp_path, tiny_tokenizer):
    folders = checkpoints(tmp_path, tiny_tokenizer, (1, 2, 3))
    soup.main([*map(str, folders), "--out", str(tmp_path / "soup")])
    made = load_model(SentimentClassifier, tmp_path / "soup").state_dict()
    states = [load_model(SentimentClassifier, folder).state_dict() for folder in folders]
    for name, value in made.items():
        torch.testing.assert_close(value, sum(state[name] for state in states) / 3)
        assert not torch.equal(value, states[0][name])
    training = read_json(tmp_path / "soup" / TRAINING_FILE)
    assert [ingredient["seed"] for ingredient in training["ingredients"].values()] == [1, 2, 3]
    assert training["soup"]["averaged"] == [str(folder) for folder in folders]
    # The soup is a checkpoint like any other: the pipeline loads it and answers.
    assert load_folder("sentiment", tmp_path / "soup", device="cpu").predict(["fine film"])[0]["label"]


def test_a_soup_of_int8_checkpoints_is_stored_as_int8_and_one_ingredient_is_itself(tmp_path, tiny_tokenizer):
    [folder] = checkpoints(tmp_path, tiny_tokenizer, (1,), storage="int8")
    soup.write_soup([folder], tmp_path / "soup", {})
    assert read_json(tmp_path / "soup" / "config.json")["weight_storage"] == "int8"
    again, original = (load_model(SentimentClassifier, f).state_dict() for f in (tmp_path / "soup", folder))
    for name in original:  # re-quantising weights that are already on the int8 grid leaves them there
        torch.testing.assert_close(again[name], original[name], rtol=0, atol=1e-6)


def test_checkpoints_with_another_tokenizer_are_refused(tmp_path, tiny_tokenizer):
    first, second = checkpoints(tmp_path, tiny_tokenizer, (1, 2))
    Tokenizer.train(["other words entirely, said in quite another way"] * 200, vocab_size=300).save(second)
    with pytest.raises(ValueError, match="cannot be averaged"):
        soup.write_soup([first, second], tmp_path / "soup", {})


def test_greedy_soup_starts_from_the_best_and_keeps_only_what_raises_validation(tmp_path, monkeypatch):
    # The rule, not the scorer: validation of each possible soup is given, the choice is greedy's own.
    scores = {("a",): 0.80, ("b",): 0.85, ("c",): 0.70, ("d",): 0.60,
              ("b", "a"): 0.84, ("b", "c"): 0.86, ("b", "c", "a"): 0.90, ("b", "c", "d"): 0.86}
    seen = []

    def validate(folders, rows, device=None):
        key = tuple(folder.name for folder in folders)
        seen.append(key)
        return {"mean over sources": scores[key]}

    monkeypatch.setattr(soup, "validate", validate)
    chosen, history = soup.greedy([tmp_path / name for name in "abcd"], rows=[], log=lambda line: None)
    # Ranked b, a, c, d: a lowers the soup (0.84 < 0.85) and is left out, c raises it, d does not.
    assert [folder.name for folder in chosen] == ["b", "c"]
    assert seen[4:] == [("b", "a"), ("b", "c"), ("b", "c", "d")]
    assert history[-1]["validation"] == {"mean over sources": 0.86}
