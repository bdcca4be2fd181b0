"""The analytics rules as specifications: live viewers, views, attendance and series."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sto_analytics.domain import (
    BroadcastSummary,
    Funnel,
    LiveViewers,
    Peak,
    Profile,
    attendance_kind,
    average_live_viewers,
    breakdown,
    minute_of,
    runs,
    school_tallies,
    series_figures,
    slope,
    watch_figures,
    with_profile,
)

T = 1_800_000_000.0


def test_a_viewer_counts_while_their_last_beacon_is_younger_than_the_timeout() -> None:
    live = LiveViewers(timeout_s=75)
    live.apply("v1", "join", "live", T, now=T)
    live.apply("v1", "heartbeat", "live", T + 30, now=T + 30)
    live.expire(T + 104)
    assert live.count() == 1
    live.expire(T + 106)  # 76 s after the last heartbeat, and no leave ever came
    assert live.count() == 0


def test_duplicates_and_late_beacons_never_count_twice() -> None:
    live = LiveViewers(timeout_s=75)
    assert live.apply("v1", "join", "live", T, now=T)
    assert not live.apply("v1", "join", "live", T, now=T)
    assert not live.apply("v1", "heartbeat", "live", T, now=T)
    live.apply("v2", "join", "live", T, now=T)
    live.apply("v2", "leave", "live", T + 10, now=T + 10)
    assert not live.apply("v2", "heartbeat", "live", T + 5, now=T + 11)  # older than the leave
    assert live.count() == 1


def test_the_outcome_does_not_depend_on_arrival_order() -> None:
    beacons = [("v1", "join", T), ("v1", "heartbeat", T + 30), ("v1", "leave", T + 30)]
    counts = set()
    for order in (beacons, beacons[::-1], [beacons[2], beacons[0], beacons[1]]):
        live = LiveViewers(timeout_s=75)
        for viewer, action, at in order:
            live.apply(viewer, action, "live", at, now=T + 31)
        counts.add(live.count())
    assert counts == {0}


def test_replay_watching_is_not_live_and_an_old_beacon_never_counts() -> None:
    live = LiveViewers(timeout_s=75)
    live.apply("v1", "join", "replay", T, now=T)
    live.apply("v2", "join", "live", T - 100, now=T)
    assert live.count() == 0


def test_a_viewer_who_switches_to_replay_stops_counting_live() -> None:
    live = LiveViewers(timeout_s=75)
    live.apply("v1", "join", "live", T, now=T)
    live.apply("v1", "heartbeat", "replay", T + 30, now=T + 30)
    assert live.count() == 0


def test_the_peak_keeps_its_first_moment() -> None:
    peak = Peak().higher(3, T).higher(2, T + 1).higher(3, T + 2)
    assert peak == Peak(3, T)


def test_views_are_runs_of_consecutive_minutes() -> None:
    assert runs([]) == 0
    assert runs([5, 6, 7]) == 1
    assert runs([7, 5, 6, 6]) == 1
    assert runs([1, 2, 4]) == 2


def test_watch_figures_from_minute_sets_keep_live_and_replay_apart() -> None:
    figures = watch_figures(
        {("v1", "live"): {1, 2, 3, 10}, ("v1", "replay"): {50, 51}, ("v2", "live"): {2}}
    )
    assert figures.views_live == 3
    assert figures.views_replay == 1
    assert figures.unique_viewers == 2
    assert figures.watch_minutes_live == 5
    assert figures.watch_minutes_replay == 2


def test_a_beacon_falls_in_the_minute_of_its_arrival() -> None:
    moment = datetime(2026, 11, 24, 15, 30, 59, tzinfo=UTC)
    assert minute_of(moment) + 1 == minute_of(moment + timedelta(seconds=1))


def test_average_live_viewers_is_watch_time_over_duration() -> None:
    assert average_live_viewers(600, 30) == 20
    assert average_live_viewers(600, 0) == 0


def test_attendance_needs_enough_minutes_or_a_check_in() -> None:
    assert attendance_kind(10, 0, checked_in=False, min_minutes=10) == "live"
    assert attendance_kind(9, 0, checked_in=False, min_minutes=10) is None
    assert attendance_kind(0, 0, checked_in=True, min_minutes=10) == "live"


def test_the_funnel_counts_no_shows_among_confirmed_registrants() -> None:
    funnel = Funnel(registered=10, confirmed=8, waitlisted=1, cancelled=1, watched=6, attended=4)
    assert funnel.no_shows == 4
    assert funnel.attendance_rate == 0.5
    assert Funnel(0, 0, 0, 0, 0, 0).attendance_rate == 0


def test_a_check_in_is_kept_when_later_messages_lack_it() -> None:
    checked = with_profile({}, "r1", Profile("v_1", "drenthe", "docent", "Anna", checked_in=True))
    again = with_profile(checked, "r1", Profile("v_1", "drenthe", "docent", "Anna"))
    assert Profile.from_list(again["r1"]).checked_in


def test_an_undone_check_in_is_cleared_until_someone_checks_the_person_in_again() -> None:
    checked = with_profile({}, "r1", Profile("v_1", "drenthe", "docent", None, checked_in=True))
    undone = with_profile(
        checked, "r1", Profile("v_1", "drenthe", "docent", None), undo_check_in=True
    )
    later = with_profile(undone, "r1", Profile("v_1", "drenthe", "docent", None))
    again = with_profile(later, "r1", Profile("v_1", "drenthe", "docent", None, checked_in=True))

    assert [Profile.from_list(p["r1"]).checked_in for p in (undone, later, again)] == [
        False,
        False,
        True,
    ]
    assert Profile.from_list(later["r1"]).check_in_undone
    assert not Profile.from_list(again["r1"]).check_in_undone


def test_a_correction_replaces_the_categories_and_keeps_the_check_in() -> None:
    checked = with_profile(
        {}, "r1", Profile("v_1", "drenthe", "docent", None, checked_in=True, school_code="99ZG00")
    )
    corrected = with_profile(
        checked, "r1", Profile("v_1", "groningen", "schoolleider", None, school_code="99ZE00")
    )

    profile = Profile.from_list(corrected["r1"])
    assert (profile.region_code, profile.role, profile.school_code) == (
        "groningen",
        "schoolleider",
        "99ZE00",
    )
    assert profile.checked_in


def test_a_profile_stored_before_school_sites_reads_without_a_school() -> None:
    profile = Profile.from_list(["v_1", "drenthe", "docent", None, True])
    assert (profile.school_code, profile.checked_in, profile.check_in_undone) == (None, True, False)


def test_figures_per_school_count_confirmed_registrants_and_who_of_them_attended() -> None:
    tallies = school_tallies(
        [
            ("99ZG00", True, True),
            ("99ZG00", True, False),
            ("99ZG00", False, False),  # waitlisted or cancelled: not counted
            (None, True, True),
            ("99ZG01", True, False),
            ("99ZA00", False, False),
        ]
    )
    assert [(t.school_code, t.confirmed, t.attended) for t in tallies] == [
        ("99ZG00", 2, 1),
        ("99ZG01", 1, 0),
        (None, 1, 1),
    ]


def test_live_viewers_break_down_by_region_and_role_of_their_registration() -> None:
    profiles = {"v_1": Profile("v_1", "drenthe", "docent", "Anna")}
    regions, roles = breakdown(["v_1", "anon"], profiles)
    assert regions == {"drenthe": 1, "onbekend": 1}
    assert roles == {"docent": 1, "onbekend": 1}


def test_series_figures_and_trend_come_from_the_broadcasts() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    broadcasts = [
        BroadcastSummary(str(n), f"#{n}", n, start + timedelta(days=7 * n), 200 + n, 100.0 + 10 * n)
        for n in (3, 1, 2)
    ]
    series = series_figures("sto-live", broadcasts)
    assert series.broadcasts == 3
    assert series.total_views == 606
    assert series.average_live_viewers == 120
    assert [b.series_number for b in series.history] == [1, 2, 3]
    assert series.trend_per_broadcast == 10
    assert series.trend == "stijgend"
    assert slope([5.0, 5.0]) == 0
    assert series_figures("leeg", []).trend == "gelijk"
