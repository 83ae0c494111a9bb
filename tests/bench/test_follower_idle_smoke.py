"""``bench.follower_idle`` end to end, briefly: real Gunicorn servers with and without the
follower's directory watch."""

from __future__ import annotations

from bench.follower_idle import measure


def test_the_watched_follower_is_cheaper_idle_and_still_prepares_publications() -> None:
    result = measure(seconds=2.0, rate=20.0, rounds=1)
    watched, polled = result["runs"]["watched"][0], result["runs"]["polled"][0]
    for run in (watched, polled):
        assert run["processes"] >= 2  # the master and at least one worker
        assert run["generations_published"] >= 10
    # Idle, the polled followers wake 50 times a second each; the watched ones once.
    assert watched["quiet_pct_core"] < polled["quiet_pct_core"]
    # Publishing, the watched followers wake and prepare each generation.
    assert watched["publishing_pct_core"] > watched["quiet_pct_core"]
    assert 0 <= result["quiet_watched_over_polled"] < 1
