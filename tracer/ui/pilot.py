"""Driving the app headless (``App.run_test``): wait until it has settled. Shared by the Pilot tests, the
screenshot script and the UI benchmark, so they all wait for the same thing."""

from __future__ import annotations

import time


async def wait_workers(app) -> None:
    """Wait for the app's workers; one replaced by a newer one of its group (exclusive) is not an error."""
    from textual.worker import WorkerCancelled

    for _ in range(10):
        try:
            await app.workers.wait_for_complete()
            return
        except WorkerCancelled:
            continue


async def settle(app, pilot, timeout: float = 60.0) -> None:
    """Wait until indexing, cluster loading, hop analysis and dissection have finished and been shown."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        await pilot.pause()
        await wait_workers(app)
        await pilot.pause()
        if app.is_running and app.busy():
            await pilot.pause(0.02)
            continue
        if not app.session.loading and not app.busy():
            break
        if not app.is_running:
            break
    await pilot.pause()
