"""Training on a tiny slice: the loss falls, the checkpoint is complete and reloads to identical outputs."""

import dataclasses
import json
import random
import shlex

import pytest
import torch

from seqdemo.core.text import contrast, last_sentence, pad_batch, sentences
from seqdemo.experiments import train
from seqdemo.experiments.data import Review
from seqdemo.inference.hub import load_folder
from seqdemo.inference.sentiment import SentimentPipeline

POSITIVE = ["I loved it, a wonderful film.", "Brilliant acting and a great story.", "A moving, beautiful movie."]
NEGATIVE = ["I hated it, a terrible film.", "Dull acting and a boring story.", "An awful, ugly movie."]


@pytest.fixture(scope="module")
def tiny_splits():
    rows = [Review(t, 1, "imdb") for t in POSITIVE] + [Review(t, 0, "imdb") for t in NEGATIVE]
    return {"train": rows * 8, "valid": rows, "test": []}


def test_language_model_loss_falls_and_checkpoint_reloads(tmp_path, tiny_splits):
    args = train.parse_args(["nextword", "--out", str(tmp_path / "lm"), "--vocab-size", "300", "--hidden-size", "32",
                             "--batch-size", "4", "--bptt", "16", "--epochs", "3", "--lr", "1e-2", "--dropout", "0"])
    saved = []
    result = train.train(args, tiny_splits, checkpoint=lambda *best: saved.append(best))
    model, tokenizer, recipe = result.model, result.tokenizer, result.recipe
    losses = [epoch["valid_loss"] for epoch in recipe["history"]]
    assert losses[-1] < losses[0] - 0.5, losses
    assert len(saved) == 3  # each epoch improved, and each new best was handed over to be written
    # What a killed run leaves on disk records the epochs up to its best one.
    assert [len(best[2]["history"]) for best in saved] == [1, 2, 3]
    # The recorded command rebuilds the very configuration (config.json carries the architecture, this the recipe).
    rebuilt = train.parse_args(shlex.split(recipe["command"])[3:])
    assert rebuilt == dataclasses.replace(args, precision=recipe["precision"])
    train.save(model, tokenizer, args.out, recipe)
    for name in ("config.json", "model.safetensors", "tokenizer.model", "README.md", "training.json"):
        assert (args.out / name).exists(), name
    reloaded = load_folder("nextword", args.out, device="cpu")
    ids = torch.tensor([[tokenizer.bos_id, *tokenizer.encode("I loved it")]])
    with torch.no_grad():
        # Weights are stored in float16: the reloaded model equals the trained one rounded to half precision.
        expected = model.cpu().half().float()(ids)[0]
        assert torch.allclose(reloaded.model(ids)[0], expected, atol=1e-5)
    assert json.loads((args.out / "training.json").read_text())["parameters"] == recipe["parameters"]


def test_classifier_loss_falls_from_a_language_model(tmp_path, tiny_splits, monkeypatch):
    lm_args = train.parse_args(["nextword", "--vocab-size", "300", "--hidden-size", "24", "--batch-size", "4",
                                "--bptt", "16", "--epochs", "1", "--dropout", "0"])
    lm_result = train.train(lm_args, tiny_splits)
    lm = lm_result.model
    train.save(lm, lm_result.tokenizer, tmp_path / "lm", lm_result.recipe)
    args = train.parse_args(["sentiment", "--init-from", str(tmp_path / "lm"), "--backward-from", str(tmp_path / "lm"),
                             "--hidden-size", "24", "--num-layers", "2", "--epochs", "8", "--batch-size", "8",
                             "--lr", "2e-2", "--dropout", "0", "--casual-fraction", "0.5", "--short-repeats", "2",
                             "--weight-storage", "int8"])
    validated = []
    def recording(model, *args, **kwargs):
        validated.append({name: w.clone() for name, w in model.state_dict().items()})
        return SentimentPipeline(model, *args, **kwargs)
    monkeypatch.setattr(train, "SentimentPipeline", recording)
    result = train.train(args, tiny_splits)
    model, tokenizer, recipe = result.model, result.tokenizer, result.recipe
    assert recipe["history"][-1]["valid_accuracy"] >= 0.9, recipe["history"]
    # The backward language model's recipe is kept (it is not shipped); the weights are stored as int8.
    assert recipe["backward_lm"]["command"] == lm_result.recipe["command"]
    train.save(model, tokenizer, tmp_path / "clf", recipe)
    assert "backward direction started from" in (tmp_path / "clf" / "README.md").read_text()
    shipped = load_folder("sentiment", tmp_path / "clf", device="cpu")
    assert shipped.model.weight_storage == "int8"
    # Validation measured the weights as stored (int8 rounds them): the shipped checkpoint is one that was validated.
    stored = shipped.model.state_dict()
    assert any(all(torch.equal(w.cpu(), stored[name]) for name, w in v.items()) for v in validated)
    # The classifier began from the language model: same tokenizer, embedding trained on from the LM's.
    assert tokenizer.vocab_size == lm.embedding.num_embeddings
    ids, lengths = pad_batch([tokenizer.encode(t) for t in POSITIVE + NEGATIVE], tokenizer.pad_id)
    with torch.no_grad():
        predicted = model.cpu()(ids, lengths).argmax(-1).tolist()
    assert predicted == [1] * 3 + [0] * 3


def test_a_classifier_resumes_from_its_checkpoint(tmp_path, tiny_splits):
    first = ["sentiment", "--vocab-size", "300", "--hidden-size", "16", "--pooling", "mean", "--max-tokens", "64",
             "--batch-size", "8", "--lr", "2e-2", "--dropout", "0", "--weight-storage", "float32"]
    base = train.train(train.parse_args(first + ["--epochs", "2"]), tiny_splits)
    train.save(base.model, base.tokenizer, tmp_path / "clf", base.recipe)
    # The architecture comes from the checkpoint, not from this run's defaults (256 units, max pooling). At a
    # learning rate of 0 the weights stay as saved: the first epoch validates exactly as the saved best did.
    more = ["sentiment", "--resume", str(tmp_path / "clf"), "--epochs", "1", "--lr", "0", "--weight-storage", "float32"]
    resumed = train.train(train.parse_args(more), tiny_splits)
    assert (resumed.model.rnn.hidden_size, resumed.model.pooling, resumed.model.max_tokens) == (16, "mean", 64)
    settings = resumed.recipe["settings"]  # training.json records that model, not the flags' defaults
    assert (settings["hidden_size"], settings["pooling"], settings["max_tokens"]) == (16, "mean", 64)
    assert settings["vocab_size"] == resumed.tokenizer.vocab_size
    for name, value in base.model.state_dict().items():
        torch.testing.assert_close(resumed.model.state_dict()[name], value, rtol=0, atol=0)
    best = max(epoch["valid_accuracy"] for epoch in base.recipe["history"])
    assert resumed.recipe["history"][0]["valid_accuracy"] == best
    assert resumed.recipe["resumed_from"]["command"] == base.recipe["command"]
    with pytest.raises(SystemExit, match="--init-from"):
        train.train(train.parse_args(more + ["--init-from", str(tmp_path / "clf")]), tiny_splits)
    with pytest.raises(SystemExit, match="not a nextword checkpoint"):
        train.train(train.parse_args(["nextword", "--resume", str(tmp_path / "clf")]), tiny_splits)


def test_transfer_copies_the_first_layer_both_ways():
    from seqdemo.core.models import NextWordLSTM, SentimentClassifier

    lm, backward_lm = NextWordLSTM(vocab_size=30, embed_dim=8, hidden_size=8), NextWordLSTM(30, 8, 8)
    clf = SentimentClassifier(vocab_size=30, embed_dim=8, hidden_size=8)
    copied = train.transfer_from_language_model(clf, lm)
    assert torch.equal(clf.embedding.weight, lm.embedding.weight)
    assert torch.equal(clf.rnn.weight_hh_l0, lm.rnn.weight_hh_l0)
    assert torch.equal(clf.rnn.weight_hh_l0_reverse, lm.rnn.weight_hh_l0)
    assert len(copied) == 1 + 2 * 4  # embedding + (w_ih, w_hh, b_ih, b_hh) for each direction
    # With a backward language model, the backward direction starts from it instead.
    copied = train.transfer_from_language_model(clf, lm, backward_lm)
    assert torch.equal(clf.rnn.weight_ih_l0, lm.rnn.weight_ih_l0)
    assert torch.equal(clf.rnn.weight_ih_l0_reverse, backward_lm.rnn.weight_ih_l0)
    assert not torch.equal(clf.rnn.weight_ih_l0_reverse, lm.rnn.weight_ih_l0)
    assert len(copied) == 1 + 2 * 4


def test_a_stacked_classifier_starts_as_the_two_language_models():
    # Above the first layer each direction's input weights see only their own direction's outputs at first, so
    # the 2-layer BiLSTM computes exactly the forward LM's two layers forward and the backward LM's backward.
    from seqdemo.core.models import NextWordLSTM, SentimentClassifier

    torch.manual_seed(0)
    lm, backward_lm = NextWordLSTM(30, 8, 8, num_layers=3).eval(), NextWordLSTM(30, 8, 8, num_layers=3).eval()
    clf = SentimentClassifier(vocab_size=30, embed_dim=8, hidden_size=8, num_layers=2).eval()
    copied = train.transfer_from_language_model(clf, lm, backward_lm)
    assert len(copied) == 1 + 2 * 2 * 4  # embedding + 4 tensors per layer and direction

    def first_two_layers(source):
        two = torch.nn.LSTM(8, 8, num_layers=2, batch_first=True)
        two.load_state_dict({k: v for k, v in source.rnn.state_dict().items() if k.endswith(("l0", "l1"))})
        return two

    ids = torch.randint(1, 30, (2, 9))
    x = clf.embedding(ids)
    with torch.no_grad():
        out, _ = clf.rnn(x)
        forward, _ = first_two_layers(lm)(x)
        backward, _ = first_two_layers(backward_lm)(x.flip(1))
    torch.testing.assert_close(out[..., :8], forward)
    torch.testing.assert_close(out[..., 8:], backward.flip(1))


def test_backward_stream_reads_each_text_right_to_left(tmp_path, tiny_splits):
    from seqdemo.core.tokenizer import Tokenizer

    tokenizer = Tokenizer.train([r.text for r in tiny_splits["train"]], vocab_size=300)
    reviews = tiny_splits["valid"][:2]
    forward, backward = train.token_stream(reviews, tokenizer), train.token_stream(reviews, tokenizer, backward=True)
    first = tokenizer.encode(reviews[0].text)
    assert forward[: len(first) + 2].tolist() == [tokenizer.bos_id, *first, tokenizer.eos_id]
    assert backward[: len(first) + 2].tolist() == [tokenizer.bos_id, *first[::-1], tokenizer.eos_id]
    assert sorted(forward.tolist()) == sorted(backward.tolist()) and not torch.equal(forward, backward)
    # The flag parses, and the recorded command gives it back.
    config = train.parse_args(["nextword", "--backward", "--resume", "checkpoints/nextword"])
    assert config.backward and "--backward" in config.command()
    assert train.parse_args(shlex.split(config.command())[3:]) == config


def test_help_shows_each_kinds_own_recipe(capsys):
    for kind, hidden in (("nextword", "512"), ("sentiment", "256")):
        with pytest.raises(SystemExit):
            train.parse_args([kind, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        assert f"LSTM units (per direction) (default: {hidden})" in text


def test_same_length_batches_keep_head_and_tail():
    batch = [list(range(70)), list(range(100, 171)), list(range(200, 272))]
    cut = train.same_length(batch)
    assert {len(s) for s in cut} == {64}  # the shortest (70) rounded down to a multiple of 8
    assert cut[0] == list(range(32)) + list(range(38, 70))
    short = [[1, 2, 3, 4, 5, 6, 7, 8, 9], [11, 12, 13, 14, 15, 16, 17, 18, 19, 20]]
    assert train.same_length(short) == [short[0], [11, 12, 13, 14, 16, 17, 18, 19, 20]]
    uneven = [[1, 2, 3], [4, 5, 6, 7, 8, 9]]  # cutting would lose half of a text: left for padding
    assert train.same_length(uneven) == uneven


def test_word_dropout_leaves_out_a_fresh_share_of_tokens_each_read():
    random.seed(0)
    ids = list(range(1000))
    first, second = train.drop_words(ids, 0.2), train.drop_words(ids, 0.2)
    assert 750 < len(first) < 850 and first != second  # about a fifth gone, a different fifth each time
    assert set(first) < set(ids) and first == sorted(first)  # what stays keeps its order
    assert train.drop_words(ids, 0.0) is ids
    assert len(train.drop_words([7], 0.99)) == 1  # never an empty text


def test_a_training_fraction_keeps_nested_shares_of_the_chosen_sources():
    rows = [Review(f"text {i}", i % 2, source) for i in range(40) for source in ("imdb", "rotten_tomatoes")]
    splits = {"train": rows, "valid": rows[:10], "test": rows[:10]}
    def chosen(*args):
        return train.parse_args(["sentiment", *args]).select(splits)
    assert chosen()["train"] == rows  # by default, everything
    quarter, half = chosen("--train-fraction", "0.25"), chosen("--train-fraction", "0.5")
    assert [sum(r.source == "imdb" for r in part["train"]) for part in (quarter, half)] == [10, 20]
    assert set(quarter["train"]) < set(half["train"]) and quarter["train"] != rows[:20]  # nested, and shuffled
    only_rt = chosen("--sources", "rotten_tomatoes", "--train-fraction", "0.5")
    assert {r.source for r in only_rt["train"] + only_rt["valid"]} == {"rotten_tomatoes"}
    assert only_rt["train"] == [r for r in half["train"] if r.source == "rotten_tomatoes"]
    assert only_rt["test"] == splits["test"]  # the test split is never touched


def test_a_reviews_closing_sentence_is_its_last_short_one():
    assert last_sentence("Long plot summary here. The ending drags! Still, a film worth seeing.") == \
        "Still, a film worth seeing."
    assert last_sentence("Great cast. 10/10") is None  # too short to say anything
    assert last_sentence("Great cast. - - - - - - - -") is None  # punctuation is no words
    assert last_sentence("Fine. " + "word " * 50) is None  # a run-on tail is no short text
    assert sentences("Is it good? Yes! It is. ") == ["Is it good?", "Yes!", "It is."]


def test_closing_sentences_of_imdb_reviews_join_training_with_their_reviews_label():
    reviews = [Review(f"Plot of film {i}. It is {'great' if i % 2 else 'awful'} and worth {i} stars.", i % 2, "imdb")
               for i in range(30)]
    sentences = [Review(f"short text {i}", i % 2, "rotten_tomatoes") for i in range(10)]
    splits = {"train": reviews + sentences, "valid": sentences[:4], "test": []}
    chosen = train.parse_args(["sentiment", "--sources", "rotten_tomatoes", "--closing-sentences", "12"]).select(splits)
    added = [r for r in chosen["train"] if r.source == "imdb closing sentence"]
    assert len(added) == 12 and chosen["train"][:10] == sentences
    for row in added:
        review = next(r for r in reviews if r.text.endswith(row.text))
        assert row.text.startswith("It is") and row.label == review.label
    assert {r.source for r in chosen["valid"]} == {"rotten_tomatoes"}  # validated on what it is meant for


def test_weight_averaging_keeps_the_mean_of_the_late_steps(tmp_path, tiny_splits, monkeypatch):
    after_each_step = []
    def recording(optimizer, model, clip):
        norm = real_clip_and_step(optimizer, model, clip)
        after_each_step.append({name: p.detach().clone() for name, p in model.named_parameters()})
        return norm
    real_clip_and_step = train.clip_and_step
    monkeypatch.setattr(train, "clip_and_step", recording)
    args = train.parse_args(["sentiment", "--vocab-size", "300", "--hidden-size", "16", "--epochs", "6", "--batch-size",
                             "8", "--lr", "2e-2", "--dropout", "0", "--average-from", "0.75"])
    result = train.train(args, tiny_splits)
    average = result.recipe["weight_average"]
    # 6 epochs of 8 steps: the last quarter is averaged (progress 0.75 is reached after step 36 of 48).
    assert len(after_each_step) == 48 and average["steps"] == 13, average
    assert average["kept"] and average["valid_accuracy"] >= max(e["valid_accuracy"] for e in result.recipe["history"])
    for name, param in result.model.named_parameters():
        expected = torch.stack([step[name] for step in after_each_step[-average["steps"]:]]).mean(0)
        torch.testing.assert_close(param, expected)
        assert not torch.allclose(param, after_each_step[-1][name])  # not simply the last step's weights
    train.save(result.model, result.tokenizer, tmp_path / "clf", result.recipe)
    assert "weights averaged over the last 13 steps" in (tmp_path / "clf" / "README.md").read_text()


def test_contrast_pairs_join_two_short_texts_of_opposite_verdicts_and_take_the_second_ones():
    assert contrast("The plot is thin.", "The acting saved it") == "The plot is thin, but the acting saved it"
    assert contrast("a dull film !", "I loved the score.") == "a dull film, but I loved the score."
    sentences = [Review(f"sentence {i} is {'good' if i % 2 else 'bad'} .", i % 2, "rotten_tomatoes") for i in range(10)]
    reviews = [Review(f"A review. Its verdict {i} is {'good' if i % 2 else 'bad'}.", i % 2, "imdb") for i in range(6)]
    splits = {"train": reviews + sentences, "valid": sentences[:4], "test": []}
    chosen = train.parse_args(["sentiment", "--closing-sentences", "6", "--contrast-pairs", "200"]).select(splits)
    pairs = [r for r in chosen["train"] if r.source == "contrast pair"]
    assert len(pairs) == 200 and len(chosen["train"]) == 16 + 6 + 200
    short = {r.text.rstrip(" .") for r in chosen["train"] if r.source in ("rotten_tomatoes", "imdb closing sentence")}
    for pair in pairs:
        first, second = pair.text.split(", but ")
        assert first in short and second.rstrip(" .").capitalize() in {t.capitalize() for t in short}
        assert ("good" in first) != ("good" in second)  # opposite verdicts
        assert pair.label == ("good" in second)  # and the second one's counts
    assert {pair.text.split(", but ")[0] for pair in pairs} >= {"Its verdict 1 is good", "sentence 0 is bad"}
    assert not any(r.source == "imdb" and "but" in r.text for r in chosen["train"])  # long reviews are not paired
    rt_only = train.parse_args(["sentiment", "--closing-sentences", "6", "--contrast-pairs", "200",
                                "--contrast-from", "rotten_tomatoes"]).select(splits)
    pairs = [r.text for r in rt_only["train"] if r.source == "contrast pair"]
    assert len(pairs) == 200 and all(p.startswith("sentence") and ", but sentence" in p for p in pairs)


def test_review_sentences_are_labelled_by_the_teacher_and_by_their_review(tmp_path, tiny_splits, monkeypatch):
    reviews = [Review(" ".join(POSITIVE), 1, "imdb"), Review(" ".join(NEGATIVE), 0, "imdb")]
    splits = {**tiny_splits, "train": tiny_splits["train"] + reviews * 4}
    chosen = train.parse_args(["sentiment", "--review-sentences", "6"]).select(splits)
    added = [r for r in chosen["train"] if r.source == "imdb review sentence"]
    # Sentences from inside the reviews (never the closing one), each with its review's verdict.
    assert len(added) == 6 and {(r.text, r.label) for r in added} <= {(t, 1) for t in POSITIVE[:2]} | {
        (t, 0) for t in NEGATIVE[:2]}
    first = ["sentiment", "--vocab-size", "300", "--hidden-size", "16", "--batch-size", "8", "--lr", "2e-2",
             "--dropout", "0", "--weight-storage", "float32", "--epochs", "2"]
    base = train.train(train.parse_args(first), tiny_splits)
    teacher, tokenizer = base.model, base.tokenizer
    rows = [Review(POSITIVE[0], 1, "imdb review sentence"), Review(POSITIVE[0], 0, "imdb review sentence")]
    p = train.SentimentPipeline(teacher, tokenizer, torch.device("cpu"), "x").predict(POSITIVE[0])[0]
    p = p["probabilities"]["positive"]
    alone = train.review_sentence_targets(teacher, tokenizer, torch.device("cpu"), rows, odds=1)
    assert alone[rows[0]] == pytest.approx(p) and alone[rows[1]] == pytest.approx(p)  # the review says nothing
    both = train.review_sentence_targets(teacher, tokenizer, torch.device("cpu"), rows, odds=6)
    odds = lambda q: q / (1 - q)
    assert odds(both[rows[0]]) == pytest.approx(6 * odds(p)) and odds(both[rows[1]]) == pytest.approx(odds(p) / 6)
    # Training reads those soft targets: a resumed run's loss sees targets strictly between 0 and 1.
    train.save(base.model, base.tokenizer, tmp_path / "clf", base.recipe)
    seen = []
    def recording(logits, target, **kwargs):
        seen.append(target.detach().clone())
        return real_cross_entropy(logits, target, **kwargs)
    real_cross_entropy = train.F.cross_entropy
    monkeypatch.setattr(train.F, "cross_entropy", recording)
    more = ["sentiment", "--resume", str(tmp_path / "clf"), "--epochs", "1", "--review-sentences", "8"]
    resumed = train.train(train.parse_args(more), splits)
    assert resumed.recipe["review_sentences"]["count"] == 8
    targets = torch.cat(seen)
    assert ((targets > 0.01) & (targets < 0.99)).any() and torch.allclose(targets.sum(1), torch.ones(len(targets)))
    with pytest.raises(SystemExit, match="--resume"):
        train.train(train.parse_args(first + ["--review-sentences", "8"]), splits)
    # --label-smoothing 0.2 moves every target a tenth of the way to the other verdict: a hard row's is 0.1 or 0.9.
    seen.clear()
    train.train(train.parse_args(more[:-2] + ["--label-smoothing", "0.2"]), splits)
    targets = torch.cat(seen)[:, 1]
    assert targets.min() == pytest.approx(0.1) and targets.max() == pytest.approx(0.9)


def test_adversarial_training_trains_on_the_embeddings_moved_up_the_loss(tiny_splits, monkeypatch):
    first = ["sentiment", "--vocab-size", "300", "--hidden-size", "16", "--batch-size", "8", "--lr", "2e-2",
             "--dropout", "0", "--weight-storage", "float32", "--epochs", "3"]
    model = train.train(train.parse_args(first), tiny_splits).model.eval()
    ids, lengths = torch.tensor([[5, 9, 17, 33, 2], [7, 7, 40, 3, 11]]), torch.tensor([5, 5])
    targets = torch.tensor([1, 0])
    embedded = model.embedding(ids).detach().requires_grad_()
    loss = lambda e: train.F.cross_entropy(model.classify_embeddings(e, lengths), targets).item()
    train.F.cross_entropy(model.classify_embeddings(embedded, lengths), targets).backward()
    step = train.adversarial_step(embedded.grad, 0.5)
    assert torch.allclose(step.flatten(1).norm(dim=1), torch.full((2,), 0.5))  # the size holds per text
    noise = torch.randn(20, *step.shape)
    random_steps = [0.5 * n / n.flatten(1).norm(dim=1).view(-1, 1, 1) for n in noise]
    # Along the gradient the loss rises, and more than along any of 20 random moves of the same size.
    assert loss(embedded + step) > max(loss(embedded + r) for r in random_steps)
    assert loss(embedded + step) > loss(embedded)

    # With --adversarial each batch is read twice, the second time with a higher loss, and training still learns.
    losses = []
    def recording(logits, target, **kwargs):
        value = real_cross_entropy(logits, target, **kwargs)
        losses.append(value.item())
        return value
    real_cross_entropy = train.F.cross_entropy
    monkeypatch.setattr(train.F, "cross_entropy", recording)
    result = train.train(train.parse_args(first + ["--adversarial", "0.3", "--epochs", "4"]), tiny_splits)
    clean, moved = losses[0::2], losses[1::2]
    assert len(clean) == len(moved) >= 4 * 6 and all(m > c for c, m in zip(clean, moved))
    assert result.recipe["history"][-1]["valid_accuracy"] == 1.0 and clean[-1] < clean[0] / 2


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_bf16_training_on_the_gpu(tmp_path, tiny_splits):
    args = train.parse_args(["nextword", "--vocab-size", "300", "--hidden-size", "32", "--batch-size", "4", "--bptt",
                             "16", "--epochs", "3", "--lr", "1e-2", "--dropout", "0", "--device", "cuda",
                             "--precision", "bf16"])
    recipe = train.train(args, tiny_splits).recipe
    losses = [epoch["valid_loss"] for epoch in recipe["history"]]
    assert recipe["precision"] == "bf16" and losses[-1] < losses[0] - 0.5, losses


def test_resume_goes_on_from_the_checkpoint_and_keeps_its_record(tmp_path, tiny_splits):
    first = ["nextword", "--vocab-size", "300", "--hidden-size", "24", "--batch-size", "4", "--bptt", "16",
             "--lr", "1e-2", "--dropout", "0", "--weight-drop", "0", "--embedding-dropout", "0"]
    base = train.train(train.parse_args(first + ["--epochs", "2"]), tiny_splits)
    train.save(base.model, base.tokenizer, tmp_path / "lm", base.recipe)
    resumed = train.train(train.parse_args(first + ["--epochs", "1", "--resume", str(tmp_path / "lm")]), tiny_splits)
    # Same tokenizer; the first resumed epoch starts from the trained weights, so it beats where the base began.
    assert resumed.tokenizer.vocab_size == base.tokenizer.vocab_size
    assert resumed.recipe["history"][0]["valid_loss"] < base.recipe["history"][0]["valid_loss"]
    assert resumed.recipe["resumed_from"]["history"] == base.recipe["history"]
    train.save(resumed.model, resumed.tokenizer, tmp_path / "more", resumed.recipe)
    assert f"resumed from: `{base.recipe['command']}`" in (tmp_path / "more" / "README.md").read_text()
