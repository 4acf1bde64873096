"""The pipelines on a CUDA GPU: load, predict, explain, generate, score, gate traces, and bf16 autocast inference,
each compared with the same tiny checkpoints on the CPU. Skipped where there is no GPU; run wherever one is.

The tolerances allow for TF32, which cuDNN uses for the LSTM's matrix products by default."""

from __future__ import annotations

import math

import pytest
import torch

from seqdemo.core.device import on_zero_gpu
from seqdemo.inference import hub

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU on this machine")

TEXTS = ["The plot was thin but the acting saved it", "not good at all", "I loved it 🙂"]


@pytest.fixture(scope="module")
def on_cpu(tiny_checkpoints):
    return {kind: hub.load_folder(kind, folder, device="cpu") for kind, folder in tiny_checkpoints.items()}


@pytest.fixture(scope="module")
def on_cuda(tiny_checkpoints):
    return {kind: hub.load_folder(kind, folder, device="cuda") for kind, folder in tiny_checkpoints.items()}


def test_load_puts_every_weight_on_the_gpu(on_cuda):
    for pipeline in on_cuda.values():
        assert pipeline.device.type == "cuda"
        assert {p.device.type for p in pipeline.model.parameters()} == {"cuda"}


def test_predict_and_explain_match_the_cpu(on_cpu, on_cuda):
    for gpu, cpu in zip(on_cuda["sentiment"].predict(TEXTS), on_cpu["sentiment"].predict(TEXTS)):
        assert gpu["label"] == cpu["label"]
        assert gpu["probabilities"] == pytest.approx(cpu["probabilities"], abs=2e-3)
    for method in ("evidence", "integrated_gradients"):
        gpu = on_cuda["sentiment"].explain(TEXTS[0], method=method)
        cpu = on_cpu["sentiment"].explain(TEXTS[0], method=method)
        assert gpu.attributions == pytest.approx(cpu.attributions, abs=1e-2)


def test_generate_next_words_and_scores_on_the_gpu(on_cpu, on_cuda):
    gpu, cpu = on_cuda["nextword"], on_cpu["nextword"]
    text = gpu.generate("The acting was", max_new_tokens=10, seed=0)
    assert text.startswith("The acting was") and len(text) > len("The acting was")
    on_gpu, on_cpu = gpu.next_words("The acting was", k=5), dict(cpu.next_words("The acting was", k=10))
    for word, probability in on_gpu:  # near-ties may swap places, but every word and its probability agree
        assert probability == pytest.approx(on_cpu[word], abs=1e-3)
    assert gpu.perplexity(TEXTS[0]) == pytest.approx(cpu.perplexity(TEXTS[0]), rel=1e-2)


def test_gate_traces_on_the_gpu_match_the_cpu(on_cpu, on_cuda):
    for kind in ("sentiment", "nextword"):
        gpu, cpu = on_cuda[kind].gate_trace(TEXTS[0]), on_cpu[kind].gate_trace(TEXTS[0])
        assert gpu.tokens == cpu.tokens and gpu.layers.keys() == cpu.layers.keys()
        for key, values in cpu.layers.items():
            for name, tensor in values.items():
                assert gpu.layers[key][name].device.type == "cpu"  # traces come back to the CPU for the page
                torch.testing.assert_close(gpu.layers[key][name], tensor, atol=5e-3, rtol=5e-3)


def test_bf16_autocast_inference(on_cpu, on_cuda):
    with torch.autocast("cuda", dtype=torch.bfloat16):
        predictions = on_cuda["sentiment"].predict(TEXTS)
        words = on_cuda["nextword"].next_words("The acting was", k=5)
        score = on_cuda["nextword"].score(TEXTS[0])
        text = on_cuda["nextword"].generate("The acting was", max_new_tokens=5, seed=0)
    for bf16, fp32 in zip(predictions, on_cpu["sentiment"].predict(TEXTS)):
        assert math.isclose(sum(bf16["probabilities"].values()), 1.0, abs_tol=1e-4)
        assert bf16["probabilities"] == pytest.approx(fp32["probabilities"], abs=0.05)
    probabilities = [p for _, p in words]
    assert probabilities == sorted(probabilities, reverse=True) and 0 < sum(probabilities) <= 1 + 1e-4
    assert math.isfinite(score["perplexity"]) and score["perplexity"] == pytest.approx(
        on_cpu["nextword"].score(TEXTS[0])["perplexity"], rel=0.05)
    assert text.startswith("The acting was")


def test_zero_gpu_wrapper_moves_the_models_to_cuda(tiny_checkpoints):
    pipelines = [hub.load_folder(kind, folder, device="cpu") for kind, folder in tiny_checkpoints.items()]
    run = on_zero_gpu(lambda: [p.predict("I loved it") if p.kind == "sentiment" else p.generate("I", max_new_tokens=2)
                               for p in pipelines], pipelines, gpu_decorator=lambda fn: fn)
    run()
    for pipeline in pipelines:
        assert pipeline.device.type == "cuda" and next(pipeline.model.parameters()).device.type == "cuda"


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_gradient_norms_on_the_gpu_match_the_cpu(cell):
    # cuDNN's RNNs have no backward pass in eval mode: gradient_norms must step around it, on every cell.
    from seqdemo.core.models import SentimentClassifier
    from seqdemo.experiments.compare import gradient_norms

    torch.manual_seed(0)
    model = SentimentClassifier(vocab_size=50, embed_dim=8, hidden_size=8, cell=cell).eval()
    ids = torch.randint(1, 50, (20,)).tolist()
    on_cpu = gradient_norms(model, ids)
    on_gpu = gradient_norms(model.cuda(), ids)
    assert on_gpu == pytest.approx(on_cpu, rel=1e-2, abs=1e-6)
