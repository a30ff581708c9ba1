"""Fixtures of the dashboard's browser tests: the real `cairn serve` over a demo data directory
(open mode: loopback, no API key), a second one with an admin key, and headless Chromium (the
system's /usr/bin/chromium, driven by Playwright; no browser download)."""

import pytest
from playwright.sync_api import sync_playwright

import cairn_server as cs


@pytest.fixture(scope="session")
def server():
    d = cs.demo_dir()
    s = cs.Server(d)
    try:
        s.passed = cs.second_version(s)
        yield s
    finally:
        s.stop()
        cs.remove(d)


@pytest.fixture(scope="session")
def keyed_server(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("keyed"))
    out = cs.cairn(d, "keys", "create", "--scope", "admin", "--name", "ops")
    s = cs.Server(d)
    s.token = out.stdout.strip().splitlines()[-1]
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="session")
def browser():
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=cs.CHROMIUM, args=cs.CHROMIUM_ARGS)
        yield b
        b.close()


class Watched:
    """A page with its console errors and failed requests recorded."""

    def __init__(self, context):
        self.context = context
        self.page = context.new_page()
        self.errors = []
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("requestfailed", lambda r: self.errors.append(f"failed: {r.url}"))
        self.page.on("response", lambda r: r.status >= 400
                     and self.errors.append(f"{r.status}: {r.url}"))


@pytest.fixture
def watched(browser, request):
    width = getattr(request, "param", 1280)
    context = browser.new_context(viewport={"width": width, "height": 900})
    w = Watched(context)
    yield w
    context.close()
