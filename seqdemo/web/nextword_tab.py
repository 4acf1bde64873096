"""The Next-word tab: the language model's likeliest next words, its generation piece by piece, its surprisal.

Endpoints: /next_words (prompt, k), /generate (prompt, max_new_tokens, temperature, top_k, top_p, seed; streamed),
/surprisal (text). Every numeric control is built from its seqdemo.web.limits.Limit, which also checks the API's
value: the page and the API share one range.
"""

from __future__ import annotations

import random
import time

import gradio as gr

from seqdemo.core import validate as valid
from seqdemo.inference.generation import NextWordPipeline, sampling_settings
from seqdemo.web import limits
from seqdemo.web import presentation as show
from seqdemo.web.endpoints import PRIVATE, Wiring, show_message
from seqdemo.web.limits import MAX_CHARS
from seqdemo.web.page_parts import PROMPTS, error_box, on_example


def fresh_seed(seed: str | None) -> tuple[str, str]:
    """The seed the page generates with: the one typed, or a fresh random one for a blank box or -1 (the note says
    which number that was); and the note shown while it writes. The generation checks the seed."""
    typed = "" if seed is None else str(seed).strip()
    if not typed or typed == str(valid.RANDOM_SEED):
        typed = str(random.randrange(2**31))
    return typed, f"Seed **{show.md(typed[:40])}**: writing…"


def settle(limit: limits.Limit):
    """A slider's page-only check when its box loses focus (or its handle is let go): the value it now holds and
    the note beside it (Limit.settle). It gets the value as typed (preprocess off), before gradio's own clamp."""
    def handler(value):
        used, note = limit.settle(value)
        return (gr.skip() if used is None or not note else gr.update(value=used)), note
    return handler


class NextWordHandlers:
    """What the tab's controls do, around the loaded language model."""

    def __init__(self, nextword: NextWordPipeline):
        self.nextword = nextword

    @staticmethod
    def check_generation(prompt, max_new_tokens, temperature, top_k, top_p, seed) -> tuple[str, list, int]:
        """The prompt (its tail when too long), the sampling settings and the seed (a fresh one when blank)."""
        prompt = valid.clip(valid.text(prompt, "prompt"), "tail", MAX_CHARS)[0]
        settings = [limit.check(value) for limit, value in zip(limits.SAMPLING, (max_new_tokens, temperature,
                                                                                  top_k, top_p))]
        seed = valid.seed(seed)
        return prompt, settings, random.randrange(2**31) if seed is None else seed

    def next_words(self, prompt: str, k: float = limits.NEXT_WORDS.default):
        """The k likeliest next words and their probabilities, and a note on what they cover."""
        prompt, clipped = valid.clip(valid.text(prompt, "prompt"), "tail", MAX_CHARS)
        k = limits.NEXT_WORDS.check(k)
        words = self.nextword.next_words(prompt, k=k)
        _, truncated = self.nextword.prompt_ids(prompt)
        return dict(words), show.next_words_notes(words, truncated or clipped, self.nextword.max_tokens - 1)

    def generate(self, prompt: str, max_new_tokens: float = 40, temperature: float = 0.8, top_k: float = 50,
                 top_p: float = 0.95, seed: float | str | None = None):
        """Streams the prompt and its continuation, which ends on a word boundary; blank seed = a fresh random
        one. An update at most every limits.STREAM_INTERVAL seconds, so a fast model does not spend its time on
        messages (a slow one still shows every token as it comes)."""
        prompt, settings, seed = self.check_generation(prompt, max_new_tokens, temperature, top_k, top_p, seed)
        max_new_tokens, temperature, top_k, top_p = settings
        stream = self.nextword.stream(prompt, max_new_tokens=max_new_tokens, temperature=temperature, top_k=top_k,
                                      top_p=top_p, seed=seed, whole_words=True)
        text, last = prompt, 0.0
        for text in stream:
            now = time.perf_counter()
            if now - last >= limits.STREAM_INTERVAL:  # read per call: a bench may change it
                last = now
                yield text
        yield text

    def finish(self, prompt: str, max_new_tokens: float, temperature: float, top_k: float, top_p: float, seed: str,
               with_greedy: bool):
        """After a generation: the greedy continuation beside it when asked, and the seed used. It checks what
        the generation checked, so its message is the generation's, never a "fine" that hides it."""
        prompt, settings, used = self.check_generation(prompt, max_new_tokens, temperature, top_k, top_p, seed)
        # The seed as typed (2**64 + 7 stays as typed, though the sampler reads it as 7); blank or -1: the fresh one.
        seed = valid.integer(seed, "seed") if valid.seed(seed) is not None else used
        greedy = ""
        if with_greedy is True:
            greedy = self.nextword.generate(prompt, temperature=0, whole_words=True, max_new_tokens=settings[0])
        # A temperature too small to divide by was sampled greedily: the generation said so in its note.
        note = sampling_settings(*settings).note
        return greedy, f"Seed **{seed}**: type it in the seed box to get this very text again." + (
            f" {show.md(note)}" if note else "")

    def surprisal(self, text: str):
        """Words coloured by surprisal, the table of bits and alternatives, one plain sentence, the details."""
        text, clipped = valid.clip(valid.text(text), "head", MAX_CHARS)
        return show.surprisal_view(self.nextword.tokenizer, self.nextword.surprisal_summary(text), clipped)


def slider(limit: limits.Limit, label: str, note_id: str, **options) -> gr.Slider:
    """The page's control for a Limit: its range, step and default, and under it the note that says what its box
    holds after a value outside the range was typed (settle)."""
    low, high = limit.slider_range()
    with gr.Column(min_width=160):
        control = gr.Slider(low, high if high is not None else limits.TOP_K_SLIDER, value=limit.default,
                            step=limit.step, label=label, **options)
        note = gr.Markdown("", elem_id=note_id, elem_classes="sq-error")
    control.release(settle(limit), control, [control, note], preprocess=False, show_progress="hidden", **PRIVATE)
    return control


def next_words_part(w: Wiring, h: NextWordHandlers) -> gr.Textbox:
    with gr.Row():
        with gr.Column(scale=3):
            prompt = gr.Textbox(label="Prompt (Enter runs it)", lines=1, max_lines=6, value=PROMPTS[0],
                                elem_id="nextword-text")
            k = slider(limits.NEXT_WORDS, "How many words (k)", "nextword-k-note", elem_id="nextword-k")
            button = gr.Button("Next words", variant="primary", elem_id="nextword-button")
            error = error_box("nextword-error")
            examples = gr.Examples(PROMPTS, inputs=prompt, label="Prompts")
        with gr.Column(scale=2):
            words = gr.Label(label="Likeliest next words", elem_id="nextword-label")
            notes = gr.Markdown(label="Notes", elem_classes="seqdemo-notes", elem_id="nextword-notes")
    next_words, _ = w.event(h.next_words, [button.click, prompt.submit], [prompt, k], [words, notes],
                            error, api_name="next_words", on_load=True)
    on_example(w, examples, next_words, [prompt, k], [words, notes], error)
    return prompt


def generate_part(w: Wiring, h: NextWordHandlers, prompt: gr.Textbox) -> None:
    gr.Markdown("### Generate, piece by piece")
    with gr.Row():
        temperature = slider(limits.TEMPERATURE, "temperature (0 = always the likeliest)", "generate-temperature-note",
                             elem_id="generate-temperature")
        top_k = slider(limits.TOP_K, "top-k (0 = off)", "generate-top-k-note", elem_id="generate-top-k")
        top_p = slider(limits.TOP_P, "top-p (nucleus)", "generate-top-p-note", elem_id="generate-top-p")
    with gr.Row():
        max_new = slider(limits.MAX_NEW_TOKENS, "max new pieces (it finishes its last word)", "generate-max-new-note",
                         elem_id="generate-max-new")
        # A textbox, not a gr.Number: gradio 6's number box cannot stay blank (it shows 0).
        seed = gr.Textbox(value="", max_lines=1, label="seed (blank or -1 = a fresh random one)",
                          elem_id="generate-seed", placeholder="blank, or a number to repeat a text")
        with_greedy = gr.Checkbox(value=False, label="also show the greedy continuation (always the likeliest piece)",
                                  elem_id="generate-greedy")
    button = gr.Button("Generate", variant="primary", elem_id="generate-button")
    error = error_box("generate-error")
    with gr.Row():
        output = gr.Textbox(label="Prompt + sampled continuation", lines=5, interactive=False,
                            elem_id="generate-output")
        greedy = gr.Textbox(label="Prompt + greedy continuation", lines=5, interactive=False, visible=False,
                            elem_id="generate-greedy-output")
    seed_note = gr.Markdown(elem_id="generate-seed-note")
    # The seed the text is made with: the API's seed input, which the page fills before each generation.
    seed_used = gr.Textbox(value="", label="seed", visible=False)
    with_greedy.change(lambda on: gr.update(visible=on), with_greedy, greedy, **PRIVATE)
    picked = gr.on([button.click, w.demo.load], fresh_seed, seed, [seed_used, seed_note], **PRIVATE)
    settings = [prompt, max_new, temperature, top_k, top_p, seed_used]
    message = gr.State("")
    generated = picked.then(w.wrap(h.generate, settings, [output]), [*settings, w.page_flag], [output, message],
                            api_name="generate")
    generated.then(show_message, message, error, show_progress="hidden", **PRIVATE)
    finish = w.wrap(h.finish, [*settings, with_greedy], [greedy, seed_note])
    w.chain(generated, finish, [*settings, with_greedy], [greedy, seed_note], error)


def surprisal_part(w: Wiring, h: NextWordHandlers) -> None:
    gr.Markdown("### Surprisal: how unexpected was each word?")
    text = gr.Textbox(label="Text to score (Enter runs it)", lines=1, max_lines=8,
                      value="The movie was not good at all.", elem_id="surprisal-text")
    score = gr.Button("Score", variant="primary", elem_id="surprisal-button")
    error = error_box("surprisal-error")
    summary = gr.Markdown(label="Summary", elem_id="surprisal-summary")
    highlight = gr.HTML(label="Words coloured by surprisal", elem_id="surprisal-highlight")
    bits = gr.Dataframe(label="Each word: bits, probability, and what the model expected instead",
                        interactive=False, wrap=True, elem_id="surprisal-table")
    with gr.Accordion("Details: the exact numbers", open=False):
        notes = gr.Markdown(label="Details", elem_classes="seqdemo-notes", elem_id="surprisal-notes")
    w.event(h.surprisal, [score.click, text.submit], [text], [highlight, bits, summary, notes], error,
            api_name="surprisal", on_load=True)


def nextword_tab(w: Wiring, h: NextWordHandlers) -> None:
    gr.Markdown("A 3-layer LSTM language model: after each piece its state (h, c) is its memory of everything read "
                "so far, and from it the model guesses what comes next.")
    prompt = next_words_part(w, h)
    generate_part(w, h, prompt)
    surprisal_part(w, h)
