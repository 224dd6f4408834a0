"""Atomic writes: a target is replaced whole, or left as it was."""

import pytest

from item2vec.atomicfile import TMP_PREFIX, replacing, write_bytes, write_text


def test_a_write_replaces_the_target_and_leaves_no_temporary(tmp_path):
    """After a write the target holds the new bytes and nothing else is in the folder."""
    target = tmp_path / "sub" / "LATEST"
    write_text(target, "old\n")
    write_bytes(target, b"new\n", durable=True)
    assert target.read_bytes() == b"new\n"
    assert [p.name for p in target.parent.iterdir()] == ["LATEST"]


def test_a_failed_write_keeps_the_old_file_and_removes_the_temporary(tmp_path):
    """An exception mid-write leaves the previous content and no .tmp- file behind."""
    target = tmp_path / "report.md"
    target.write_text("previous")
    with pytest.raises(RuntimeError, match="disk"), replacing(target) as temporary:
        temporary.write_text("half of the new")
        raise RuntimeError("disk full (injected)")
    assert target.read_text() == "previous"
    assert not any(p.name.startswith(TMP_PREFIX) for p in tmp_path.iterdir())


def test_the_temporary_sits_beside_the_target_under_the_stale_cleanup_pattern(tmp_path):
    """The name is .tmp-<name>-<pid> in the target's folder, what stale cleanup recognises."""
    import os

    with replacing(tmp_path / "x.parquet") as temporary:
        assert temporary.parent == tmp_path
        assert temporary.name == f"{TMP_PREFIX}x.parquet-{os.getpid()}"
        temporary.write_bytes(b"")
