"""The pipeline's progress event: a str line with a kind, picklable, kinds checked."""

import pickle

import pytest

from vinfo.progress import KINDS, ProgressEvent, note


def test_an_event_is_its_line_and_keeps_its_kind_through_pickle_and_retext():
    event = ProgressEvent("train", "train depth base beta=0 lambda=1")
    assert event == "train depth base beta=0 lambda=1" and event.split()[0] == "train"
    back = pickle.loads(pickle.dumps(event))
    assert type(back) is ProgressEvent and back.kind == "train" and back == event
    moved = event.retext(f"00:01 {event}")
    assert moved.kind == "train" and moved == "00:01 train depth base beta=0 lambda=1"
    assert note("x").kind == "note" and set(KINDS) >= {"train", "evaluate", "probe", "failed"}


def test_an_unknown_kind_is_refused_with_the_valid_ones():
    with pytest.raises(ValueError, match="unknown progress kind 'trained'; valid: train"):
        ProgressEvent("trained", "x")
