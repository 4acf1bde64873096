"""The web layer: the gradio page (seqdemo.web.page.build_demo), its endpoints, limits, settings and views."""
