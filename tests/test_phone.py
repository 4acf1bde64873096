"""The page at phone width (390 px) and desktop width (1280 px) in a real browser (issue 39, item 7): every tab is
reachable by its name, every table fits its box or says that it scrolls sideways, and the page itself never
scrolls sideways. Screenshots of every tab at both widths land in screenshots/ (or $SEQDEMO_SCREENSHOTS).

Skipped when there is no browser, except in CI (CI=true). Set SEQDEMO_BROWSER_CHECKPOINTS=1 to serve the real
checkpoints instead of the tiny models (the tiny ones get a unit atlas written here, so the inspector shows one).
"""

from __future__ import annotations

import json
import os

import gradio as gr
import pytest
import torch
from conftest import open_page, serve_locally, shot, wait_idle

WIDTHS = [(1280, 900), (390, 844)]
TABS = {  # tab name -> an element only that tab shows
    "Sentiment": "#sentiment-button",
    "Next word": "#nextword-text",
    "Gate inspector": "#gates-button",
    "Compare": "#compare-claims, #compare-missing",
}
ARRIVED = {  # what each tab computes as the page opens: the tab is measured and shot once all of it is there
    "Sentiment": ["#sentiment-table [data-testid='cell-0-0']", "#sentiment-trajectory .scatterlayer path"],
    "Next word": ["#surprisal-table [data-testid='cell-0-0']", "#nextword-label [data-testid='label-output-value']"],
    "Gate inspector": ["#gates-found [data-testid='cell-0-0']", "#gates-heatmap .heatmaplayer image",
                       "#gates-unit-chart .scatterlayer path"],
    "Compare": ["#compare-claims, #compare-missing"],  # its plots need a comparison run
}
# A long property description and score line, as the real atlas has: the row gradio once sized past 1280 px.
LONG = ("inside a negation's scope: after \"not\", \"n't\" or \"never\", up to the next punctuation, which is a "
        "long way to say what the unit follows")
ATLAS = {
    "text": {"sentences": 1198, "texts": 634},
    "properties": [{
        "property": "negation_scope", "description": LONG, "measure": "AUC", "n": 28028, "units_clearing_bar": 4,
        "best_control": 0.5487,
        "best_units": [{"layer": 1, "direction": d, "unit": u, "value": "c", "measure": "AUC", "score": 0.9,
                        "sign": "+", "control": 0.5, "n": 28028}
                       for d, u in (("forward", 119), ("backward", 391), ("forward", 480), ("backward", 77))]}],
    "forget_gate": [],
}
# Every visible table: its scrolling box's widths, and the hint line its container shows (CSS `content`).
TABLES = """() => [...document.querySelectorAll('.virtual-table-viewport')].filter(v => v.offsetParent !== null)
    .map(v => { const box = v.closest('.table-container');
                return {id: v.closest('[id]')?.id, client: v.clientWidth, scroll: v.scrollWidth,
                        hint: getComputedStyle(box, '::after').content}; })"""
PAGE_WIDTH = "() => [document.documentElement.scrollWidth, document.body.scrollWidth, window.innerWidth]"


@pytest.fixture(scope="module")
def pipelines(tmp_path_factory, tiny_tokenizer, tiny_sentiment, tiny_nextword):
    if os.environ.get("SEQDEMO_BROWSER_CHECKPOINTS") == "1":
        import seqdemo

        return seqdemo.load("sentiment"), seqdemo.load("nextword")
    from seqdemo.inference.generation import NextWordPipeline
    from seqdemo.inference.sentiment import SentimentPipeline

    folder = tmp_path_factory.mktemp("sentiment-with-atlas")
    (folder / "atlas.json").write_text(json.dumps(ATLAS))
    cpu = torch.device("cpu")
    return (SentimentPipeline(tiny_sentiment, tiny_tokenizer, device=cpu, source="tiny untrained test model",
                              folder=folder),
            NextWordPipeline(tiny_nextword, tiny_tokenizer, device=cpu, source="tiny untrained test model"))


def open_by_name(page, name: str) -> None:
    """Clicks the tab by its visible name (no menu in between) and waits until it is the selected one."""
    tab = page.get_by_role("tab", name=name, exact=True)
    assert tab.is_visible(), f"the tab {name!r} is not shown by its name"
    box, width = tab.bounding_box(), page.viewport_size["width"]
    assert box["x"] >= 0 and box["x"] + box["width"] <= width, (name, box)  # on screen, not scrolled away
    # Its whole name is shown: no ellipsis (gradio cuts a tab's name that does not fit).
    assert tab.evaluate("b => b.scrollWidth <= b.clientWidth"), name
    wait_idle(page)
    tab.click()
    page.wait_for_function("n => [...document.querySelectorAll('[role=tab]')].some(t => "
                           "t.textContent.trim() === n && t.getAttribute('aria-selected') === 'true')", arg=name)
    page.locator(TABS[name]).first.wait_for(state="visible")


@pytest.mark.parametrize("width, height", WIDTHS)
def test_every_tab_is_reached_by_its_name(browser, url, width, height):
    context, page = open_page(browser, url, width, height)
    try:
        assert page.locator(".overflow-menu button:visible").count() == 0  # no unlabelled "⋯"
        first, *others = TABS
        for name in [*others, first]:  # the first tab is open already: visit it last
            open_by_name(page, name)
            for other, selector in TABS.items():  # the tab's own content, and no other tab's
                assert page.locator(selector).first.is_visible() == (other == name), (name, other)
    finally:
        context.close()


@pytest.mark.parametrize("width, height", WIDTHS)
def test_every_table_fits_or_says_it_scrolls(browser, url, width, height):
    context, page = open_page(browser, url, width, height)
    wide = []
    try:
        for name in TABS:
            open_by_name(page, name)
            for selector in ARRIVED[name]:
                page.wait_for_selector(selector, state="attached")
            shot(page, f"phone-{name.lower().replace(' ', '-')}-{width}")  # waits for every event and plot too
            page_width = page.evaluate(PAGE_WIDTH)
            assert max(page_width[:2]) <= page_width[2], (name, page_width)  # the page never scrolls sideways
            tables = page.evaluate(TABLES)
            assert tables or name == "Compare", name  # a table on arrival (Compare's needs a comparison run)
            for table in tables:
                if table["scroll"] > table["client"] + 1:
                    wide.append(table["id"])
                    assert "Scroll the table sideways" in table["hint"], (name, table)
                else:
                    assert table["hint"] in ("none", "normal"), (name, table)  # a table that fits says nothing
        if width >= 1280:
            assert wide == []  # desktop: every table fits, the atlas's long rows included
    finally:
        context.close()


def test_the_atlas_fits_at_desktop_width(browser, url):
    """The atlas's long rows wrap inside the page at 1280 px: its last column is on screen, not cut off."""
    context, page = open_page(browser, url, 1280, 900)
    try:
        open_by_name(page, "Gate inspector")
        page.wait_for_selector("#gates-atlas [data-testid='cell-0-3']")
        table = page.locator("#gates-atlas .virtual-table-viewport").bounding_box()
        last = page.locator("#gates-atlas [data-testid='cell-0-3']").bounding_box()
        assert last["x"] + last["width"] <= table["x"] + table["width"] + 1, (last, table)
        assert page.locator("#gates-atlas [data-testid='cell-0-2']").inner_text().strip().startswith("inside a neg")
    finally:
        context.close()


def test_a_table_too_wide_for_a_phone_says_so(browser):
    """Twelve columns cannot fit 390 px: the page's CSS and script mark the table and show the hint line and the
    fade; once scrolled to its end the fade goes, and at desktop width the same table fits and says nothing."""
    from seqdemo.web.page import launch_options

    headers = [f"column {n}" for n in range(12)]
    with gr.Blocks() as demo:
        gr.Dataframe([[f"value {n}" for n in range(12)]] * 3, headers=headers, interactive=False, wrap=True,
                     elem_id="wide")
    try:
        url = serve_locally(demo, **launch_options())
        for width, wide in ((390, True), (1280, False)):
            context = browser.new_context(viewport={"width": width, "height": 800})
            page = context.new_page()
            page.goto(url)
            page.wait_for_selector("#wide [data-testid='cell-0-0']")
            view = page.locator("#wide .virtual-table-viewport")
            assert view.evaluate("v => v.scrollWidth > v.clientWidth + 1") == wide  # the geometry, measured
            box = page.locator("#wide .table-container")
            if wide:
                page.wait_for_function("() => document.querySelector('#wide .table-container.sq-wide')")
                assert "Scroll the table sideways" in box.evaluate("b => getComputedStyle(b, '::after').content")
                fade = "() => getComputedStyle(document.querySelector('#wide .table-wrap'), '::after').content"
                assert page.evaluate(fade) == '""'  # the fade at the right edge is drawn
                view.evaluate("v => { v.scrollLeft = v.scrollWidth; }")
                page.wait_for_function("() => document.querySelector('#wide .table-container.sq-at-end')")
                assert page.evaluate(fade) == "none"  # at the end: nothing more to the right
            else:
                assert box.evaluate("b => getComputedStyle(b, '::after').content") in ("none", "normal")
            context.close()
    finally:
        demo.close()
