import threading

import pytest

from item2vec.stageclock import StageClock


def test_stages_are_recorded_in_finishing_order_and_repeats_add_up():
    clock = StageClock()
    with clock.stage("split"):
        pass
    clock.start("baselines")
    with clock.stage("train"):
        pass
    clock.stop("baselines")
    with clock.stage("split"):
        pass
    assert list(clock.seconds) == ["split", "train", "baselines"]
    assert all(value >= 0 for value in clock.seconds.values())
    assert clock.elapsed() >= max(clock.seconds.values())


def test_a_failed_stage_is_still_timed_and_the_error_propagates():
    clock = StageClock()
    with pytest.raises(RuntimeError), clock.stage("train"):
        raise RuntimeError("boom")
    assert "train" in clock.seconds


def test_stages_timed_from_several_threads_are_all_kept():
    clock = StageClock()

    def timed(name: str) -> None:
        with clock.stage(name):
            pass

    threads = [threading.Thread(target=timed, args=(f"s{n}",)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(clock.seconds) == sorted(f"s{n}" for n in range(20))


def test_stopping_a_stage_that_never_started_is_an_error():
    with pytest.raises(KeyError):
        StageClock().stop("never")
