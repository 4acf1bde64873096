"""Training under torchrun: two CPU processes (gloo on 127.0.0.1) end with the same weights as each other and as
one process that reads the whole batch, so the loss falls as a single process's does."""

import json
import os
import socket

import pytest
import safetensors.torch
import torch
import torch.multiprocessing as mp

from seqdemo.experiments import train
from seqdemo.experiments.data import Review

POSITIVE = ["I loved it, a wonderful film.", "Brilliant acting and a great story.", "A moving, beautiful movie."]
NEGATIVE = ["I hated it, a terrible film.", "Dull acting and a boring story.", "An awful, ugly movie."]
ROWS = [Review(t, 1, "imdb") for t in POSITIVE] + [Review(t, 0, "imdb") for t in NEGATIVE]
SPLITS = {"train": ROWS * 8, "valid": ROWS, "test": []}
# No dropout anywhere, so that two processes and one compute the same gradients (up to rounding).
NEXTWORD = ["nextword", "--vocab-size", "300", "--hidden-size", "24", "--batch-size", "4", "--bptt", "16",
            "--epochs", "2", "--lr", "1e-2", "--dropout", "0", "--weight-drop", "0", "--embedding-dropout", "0",
            "--threads", "1", "--weight-storage", "float32"]
# Started from a language model, whose layers stay fixed for the first third of the steps (gradual unfreezing):
# DDP must then finish its steps without their gradients. 7 rows make a last batch of 3, shared 2 + 1.
SENTIMENT = ["sentiment", "--hidden-size", "24", "--batch-size", "7", "--epochs", "4", "--lr", "2e-2",
             "--dropout", "0", "--casual-fraction", "0.5", "--unfreeze-after", "0.3", "--threads", "1",
             "--weight-storage", "float32"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def trained(args: list[str]) -> train.TrainResult:
    return train.train(train.parse_args(args), SPLITS)


def run_rank(rank: int, world: int, port: int, lm: str, out: str) -> None:
    """One torchrun process: the variables torchrun sets, then the library's own training."""
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port), GLOO_SOCKET_IFNAME="lo")
    torch.set_num_threads(1)
    try:
        for kind, result in (("nextword", trained(NEXTWORD)), ("sentiment", trained(SENTIMENT + ["--init-from", lm]))):
            state = {k: v.clone() for k, v in result.model.state_dict().items()}  # tied weights too
            safetensors.torch.save_file(state, os.path.join(out, f"{kind}-{rank}.safetensors"))
            with open(os.path.join(out, f"{kind}-{rank}.json"), "w") as file:
                json.dump(result.recipe, file)
    finally:
        torch.distributed.destroy_process_group()


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """{kind: (one process's result, [each of two processes' weights], rank 0's recipe)}."""
    root = tmp_path_factory.mktemp("ddp")
    lm = trained(["nextword", "--vocab-size", "300", "--hidden-size", "24", "--batch-size", "4", "--bptt", "16",
                  "--epochs", "1", "--dropout", "0"])
    train.save(lm.model, lm.tokenizer, root / "lm", lm.recipe)
    single = {"nextword": trained(NEXTWORD), "sentiment": trained(SENTIMENT + ["--init-from", str(root / "lm")])}
    # Forked, the two processes start with the modules this one has imported: seconds, not a fresh import each.
    mp.start_processes(run_rank, args=(2, free_port(), str(root / "lm"), str(root)), nprocs=2, join=True,
                       start_method="fork")
    return {kind: (single[kind], [safetensors.torch.load_file(root / f"{kind}-{r}.safetensors") for r in (0, 1)],
                   json.loads((root / f"{kind}-0.json").read_text())) for kind in single}


@pytest.mark.parametrize("kind", ["nextword", "sentiment"])
def test_two_processes_end_with_identical_weights(runs, kind):
    _, (first, second), _ = runs[kind]
    assert first.keys() == second.keys()
    for name in first:
        assert torch.equal(first[name], second[name]), name


@pytest.mark.parametrize("kind", ["nextword", "sentiment"])
def test_two_processes_train_as_one_that_reads_the_whole_batch(runs, kind):
    single, (weights, _), recipe = runs[kind]
    assert recipe["processes"] == 2 and "processes" not in single.recipe
    reference = single.model.state_dict()
    moved = [(weights[name] - reference[name]).abs().max().item() for name in reference]
    assert max(moved) < 1e-4, dict(zip(reference, moved))
    metric = "valid_loss" if kind == "nextword" else "valid_accuracy"
    curves = [[epoch[metric] for epoch in r["history"]] for r in (single.recipe, recipe)]
    assert curves[0] == pytest.approx(curves[1], abs=1e-4)
    # The validation loss falls (the language model), the accuracy rises (the classifier).
    assert curves[1][-1] < curves[1][0] if kind == "nextword" else curves[1][-1] > curves[1][0]
