"""Hot reload: a valid edit swaps the pack, a broken edit keeps the old one, running calls keep theirs."""

from __future__ import annotations

import os
from pathlib import Path

from test_analytics_engine import FakeCallMetrics, FakeTalk, WordScorer

from speechiq.analytics.engine import CallAnalytics
from speechiq.events import Transcript
from speechiq.rules import DEFAULT_PACK, PackRegistry, default_pack_path

PACK = """\
rules:
  - id: price
    label: issue.price
    category: issue
    when: {{phrase: {{role: customer, any_of: [{word}]}}}}
"""


def _write(p: Path, text: str, bump: int) -> None:
    p.write_text(text, encoding="utf-8")
    st = p.stat()
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns + bump * 1_000_000_000))  # a distinct mtime per edit


def _said(pack, text: str) -> list[str]:
    ca = CallAnalytics("c", pack, language="en", metadata={}, sentiment=WordScorer(), talk=FakeTalk(),
                       callmetrics=FakeCallMetrics())
    t = Transcript(call_id="c", channel=1, role="customer", utterance_id="u1", is_final=True, start=1, end=2,
                   text=text)
    return [a.rule_id for a in ca.on_transcript(t)]


def test_reload_swaps_valid_edits_and_keeps_old_pack_on_errors(tmp_path, caplog):
    path = tmp_path / "pack.yaml"
    _write(path, PACK.format(word="expensive"), 0)
    reg = PackRegistry([str(path)])
    first = reg.current()
    assert reg.maybe_reload() is False  # nothing changed
    running = CallAnalytics("c", first, language="en", metadata={}, sentiment=WordScorer(), talk=FakeTalk(),
                            callmetrics=FakeCallMetrics())

    _write(path, PACK.format(word="too much"), 1)
    assert reg.maybe_reload() is True
    second = reg.current()
    assert second.version != first.version and reg.reloads == 1
    assert _said(second, "that is too much") == ["price"] and _said(second, "so expensive") == []

    # a call started before the swap keeps its pack (and its version on alerts)
    t = Transcript(call_id="c", channel=1, role="customer", utterance_id="u9", is_final=True, start=1, end=2,
                   text="so expensive")
    alerts = running.on_transcript(t)
    assert [a.pack_version for a in alerts] == [first.version]

    _write(path, "rules:\n  - id: broken\n    when: {nope: 1}\n", 2)
    assert reg.maybe_reload() is False
    assert reg.current() is second and reg.last_error is not None
    assert any("reload failed" in r.message for r in caplog.records)

    _write(path, PACK.format(word="pricey"), 3)
    assert reg.maybe_reload() is True and _said(reg.current(), "pricey") == ["price"]
    assert reg.last_error is None


def test_deleted_file_keeps_the_pack(tmp_path):
    path = tmp_path / "pack.yaml"
    _write(path, PACK.format(word="expensive"), 0)
    reg = PackRegistry([path])
    pack = reg.current()
    path.unlink()
    assert reg.maybe_reload() is False and reg.current() is pack


def test_default_pack_location():
    assert default_pack_path() == DEFAULT_PACK
    assert DEFAULT_PACK.parts[-3:] == ("rules", "packs", "default.yaml")


# ---- cheap checks, off-loop compiles ---------------------------------------------------------------
def test_poll_is_throttled_to_one_stat_round_per_interval(tmp_path):
    path = tmp_path / "pack.yaml"
    _write(path, PACK.format(word="expensive"), 0)
    reg = PackRegistry([path], check_interval_s=3600)
    first = reg.current()
    _write(path, PACK.format(word="pricey"), 1)
    assert not any(reg.poll() for _ in range(1000))  # within the interval: no stat at all
    assert reg.checks == 0 and reg.current() is first
    assert reg.changed() and reg.checks == 1  # the change is there, poll just did not look yet


def test_poll_compiles_in_the_background_and_swaps_when_ready(tmp_path, monkeypatch):
    import threading

    from speechiq.rules import registry as registry_mod

    path = tmp_path / "pack.yaml"
    _write(path, PACK.format(word="expensive"), 0)
    reg = PackRegistry([path], check_interval_s=0)
    old = reg.current()
    gate, threads = threading.Event(), []
    real_compile = registry_mod.compile_pack

    def gated(pack):  # the real compiler, held until the test lets it finish
        threads.append(threading.get_ident())
        assert gate.wait(30)
        return real_compile(pack)

    monkeypatch.setattr(registry_mod, "compile_pack", gated)
    _write(path, PACK.format(word="pricey"), 1)
    assert reg.poll() is True  # returned while the compile is still held
    assert reg.current() is old and reg.poll() is False  # one reload at a time
    gate.set()
    assert reg.wait_reload(30)
    assert reg.current().version != old.version and reg.reloads == 1
    assert threads and threads[0] != threading.get_ident()
    assert _said(reg.current(), "pricey") == ["price"]


def test_reload_async_compiles_off_the_event_loop(tmp_path, monkeypatch):
    import asyncio
    import threading

    from speechiq.rules import registry as registry_mod

    path = tmp_path / "pack.yaml"
    _write(path, PACK.format(word="expensive"), 0)
    reg = PackRegistry([path])
    seen: list[int] = []
    real_compile = registry_mod.compile_pack
    monkeypatch.setattr(registry_mod, "compile_pack", lambda p: (seen.append(threading.get_ident()),
                                                                 real_compile(p))[1])
    _write(path, PACK.format(word="pricey"), 1)

    async def main() -> tuple[bool, int]:
        return await reg.reload_async(), threading.get_ident()

    swapped, loop_thread = asyncio.run(main())
    assert swapped and seen and seen[0] != loop_thread


def test_watch_task_reloads_on_change_and_survives_bad_edits(tmp_path, caplog):
    import asyncio

    path = tmp_path / "pack.yaml"
    _write(path, PACK.format(word="expensive"), 0)
    reg = PackRegistry([path], check_interval_s=0.01)

    async def wait_for(pred) -> None:
        async with asyncio.timeout(30):
            while not pred():
                await asyncio.sleep(0.01)

    async def main() -> None:
        task = asyncio.create_task(reg.watch())
        _write(path, PACK.format(word="pricey"), 1)
        await wait_for(lambda: reg.reloads == 1)
        _write(path, "rules: [", 2)
        await wait_for(lambda: reg.last_error is not None)
        _write(path, PACK.format(word="costly"), 3)
        await wait_for(lambda: reg.reloads == 2)
        task.cancel()

    asyncio.run(main())
    assert _said(reg.current(), "costly") == ["price"] and reg.last_error is None
