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


def test_the_temporary_sits_beside_the_target_and_names_its_owner(tmp_path):
    """The name is .tmp-<name>-<owner>-<random>-<pid> in the target's folder, which
    stale cleanup reads back."""
    import os

    from item2vec.atomicfile import owner_id, temporary_owner

    with replacing(tmp_path / "x.parquet") as temporary:
        assert temporary.parent == tmp_path
        assert temporary.name.startswith(f"{TMP_PREFIX}x.parquet-")
        assert temporary_owner(temporary.name) == (owner_id(), os.getpid())
        temporary.write_bytes(b"")


def test_a_target_that_is_a_symbolic_link_is_refused(tmp_path):
    """Writing over a link would hand the file's place to whoever planted it: refused."""
    from item2vec.errors import UnsafePathError

    outside = tmp_path / "outside"
    outside.write_text("keep")
    (tmp_path / "report.md").symlink_to(outside)
    with pytest.raises(UnsafePathError, match="report.md is a symbolic link"):
        write_text(tmp_path / "report.md", "new")
    assert outside.read_text() == "keep"
    assert (tmp_path / "report.md").is_symlink()


def test_a_temporary_swapped_during_the_write_is_not_put_in_place(tmp_path):
    """If someone replaces the temporary file mid-write, the target keeps its old content."""
    from item2vec.errors import UnsafePathError

    target = tmp_path / "LATEST"
    target.write_text("old\n")
    with pytest.raises(UnsafePathError, match="replaced"), replacing(target) as temporary:
        temporary.unlink()
        temporary.write_text("planted\n")
    assert target.read_text() == "old\n"
    assert not any(p.name.startswith(TMP_PREFIX) for p in tmp_path.iterdir())
