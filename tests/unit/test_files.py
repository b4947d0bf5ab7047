"""Workflow files on disk: nothing a request names may reach outside the configured roots."""

from __future__ import annotations

from pathlib import Path

import pytest

from runctl_server.engine.files import NO_ROOTS, list_workflow_files, resolve_under_roots
from runctl_server.errors import FailedPrecondition, InvalidArgument, NotFound


@pytest.fixture
def tree(tmp_path: Path) -> dict[str, Path]:
    """Two roots, a secret file outside them, and a few files and folders inside."""
    root = tmp_path / "root"
    other = tmp_path / "other"
    outside = tmp_path / "outside"
    for folder in (root / "batch" / "nested", other, outside):
        folder.mkdir(parents=True)
    (root / "order.json").write_text("{}")
    (root / "batch" / "a.yaml").write_text("name: a")
    (other / "only-in-other.yml").write_text("name: o")
    (other / "order.json").write_text("{}")
    (outside / "secret.json").write_text("{}")
    return {"root": root, "other": other, "outside": outside}


def test_no_roots_is_a_failed_precondition() -> None:
    with pytest.raises(FailedPrecondition) as caught:
        resolve_under_roots("order.json", [])
    assert caught.value.message == NO_ROOTS
    assert "--workflows-dir or RUNCTL_WORKFLOWS_DIR" in caught.value.message


def test_a_relative_path_is_tried_under_each_root_in_turn(tree: dict[str, Path]) -> None:
    roots = [tree["root"], tree["other"]]
    assert resolve_under_roots("order.json", roots) == (tree["root"] / "order.json").resolve()
    assert resolve_under_roots("only-in-other.yml", roots) == (tree["other"] / "only-in-other.yml").resolve()
    assert resolve_under_roots("batch", roots) == (tree["root"] / "batch").resolve()
    assert (
        resolve_under_roots("batch/nested/../a.yaml", roots) == (tree["root"] / "batch" / "a.yaml").resolve()
    )


def test_an_absolute_path_inside_a_root_is_accepted(tree: dict[str, Path]) -> None:
    path = tree["other"] / "order.json"
    assert resolve_under_roots(str(path), [tree["root"], tree["other"]]) == path.resolve()


@pytest.mark.parametrize(
    "path",
    ["../outside/secret.json", "batch/../../outside/secret.json", "/etc/passwd", "{outside}/secret.json"],
)
def test_paths_outside_every_root_are_refused(tree: dict[str, Path], path: str) -> None:
    path = path.format(outside=tree["outside"])
    with pytest.raises(InvalidArgument) as caught:
        resolve_under_roots(path, [tree["root"]])
    [violation] = caught.value.violations
    assert violation.field == "workflowPath"
    assert "outside the configured workflow folders" in violation.description


def test_an_escape_is_refused_even_when_the_file_is_missing(tree: dict[str, Path]) -> None:
    with pytest.raises(InvalidArgument, match="outside"):
        resolve_under_roots("../outside/nothing.json", [tree["root"]], field="folderPath")


def test_the_field_name_is_the_callers(tree: dict[str, Path]) -> None:
    with pytest.raises(InvalidArgument) as caught:
        resolve_under_roots("../outside", [tree["root"]], field="folderPath")
    assert caught.value.violations[0].field == "folderPath"


def test_symlinks_out_of_the_roots_are_refused(tree: dict[str, Path]) -> None:
    root = tree["root"]
    (root / "link.json").symlink_to(tree["outside"] / "secret.json")
    (root / "linked-folder").symlink_to(tree["outside"], target_is_directory=True)
    for path in ("link.json", "linked-folder", "linked-folder/secret.json", str(root / "link.json")):
        with pytest.raises(InvalidArgument, match="outside"):
            resolve_under_roots(path, [root])


def test_symlinks_that_stay_inside_resolve_to_their_target(tree: dict[str, Path]) -> None:
    root = tree["root"]
    (root / "alias.json").symlink_to(root / "order.json")
    (root / "to-other.json").symlink_to(tree["other"] / "order.json")
    assert resolve_under_roots("alias.json", [root]) == (root / "order.json").resolve()
    # A link from one root into another stays inside the roots.
    assert (
        resolve_under_roots("to-other.json", [root, tree["other"]])
        == (tree["other"] / "order.json").resolve()
    )
    with pytest.raises(InvalidArgument):
        resolve_under_roots("to-other.json", [root])


def test_a_root_given_through_a_symlink_works(tree: dict[str, Path], tmp_path: Path) -> None:
    via = tmp_path / "via"
    via.symlink_to(tree["root"], target_is_directory=True)
    assert resolve_under_roots("order.json", [via]) == (tree["root"] / "order.json").resolve()
    assert resolve_under_roots(str(via / "order.json"), [via]) == (tree["root"] / "order.json").resolve()


def test_a_missing_file_inside_a_root_is_not_found(tree: dict[str, Path]) -> None:
    with pytest.raises(NotFound, match=r"'nope\.json'"):
        resolve_under_roots("nope.json", [tree["root"], tree["other"]])
    with pytest.raises(NotFound):
        resolve_under_roots(str(tree["root"] / "nope.json"), [tree["root"]])


def test_a_symlink_loop_is_not_found(tree: dict[str, Path]) -> None:
    root = tree["root"]
    (root / "loop-a").symlink_to(root / "loop-b")
    (root / "loop-b").symlink_to(root / "loop-a")
    with pytest.raises(NotFound):
        resolve_under_roots("loop-a", [root])


@pytest.mark.parametrize("path", ["", "   ", "a\x00b"])
def test_empty_and_nul_paths_are_invalid(tree: dict[str, Path], path: str) -> None:
    with pytest.raises(InvalidArgument):
        resolve_under_roots(path, [tree["root"]])


def test_expecting_a_file_or_a_folder(tree: dict[str, Path]) -> None:
    roots = [tree["root"]]
    assert resolve_under_roots("batch", roots, expect="folder").is_dir()
    assert resolve_under_roots("order.json", roots, expect="file").is_file()
    with pytest.raises(InvalidArgument, match="not a file"):
        resolve_under_roots("batch", roots, expect="file")
    with pytest.raises(InvalidArgument, match="not a folder"):
        resolve_under_roots("order.json", roots, expect="folder")


def test_list_workflow_files(tree: dict[str, Path]) -> None:
    batch = tree["root"] / "batch"
    for name in ("c.yml", "b.json", "notes.txt", ".hidden.json", "UPPER.JSON"):
        (batch / name).write_text("{}")
    (batch / "folder.json").mkdir()
    (batch / "nested" / "deep.json").write_text("{}")
    files = list_workflow_files(batch)
    assert [path.name for path in files] == ["UPPER.JSON", "a.yaml", "b.json", "c.yml"]
    assert all(path.is_absolute() for path in files)


def test_listing_never_follows_a_symlink_out_of_the_roots(tree: dict[str, Path]) -> None:
    root = tree["root"]
    batch = root / "batch"
    (batch / "escape.json").symlink_to(tree["outside"] / "secret.json")
    (batch / "inside.json").symlink_to(root / "order.json")
    (batch / "dangling.json").symlink_to(root / "missing.json")
    # With roots: links to anywhere inside them are listed (as their targets).
    assert list_workflow_files(batch, roots=[root]) == [
        (batch / "a.yaml").resolve(),
        (root / "order.json").resolve(),
    ]
    # Without roots, only what lies in the folder itself.
    assert list_workflow_files(batch) == [(batch / "a.yaml").resolve()]


def test_listing_a_missing_folder_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        list_workflow_files(tmp_path / "nope")
    (tmp_path / "file.json").write_text("{}")
    with pytest.raises(NotFound):
        list_workflow_files(tmp_path / "file.json")


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("a" * 300 + ".json", "at most 255 bytes"),  # one name longer than the OS allows
        ("x/" * 600 + "w.json", "at most 1024 characters"),
        ("é" * 200 + ".yaml", "at most 255 bytes"),  # 400 bytes in UTF-8
    ],
)
def test_overlong_paths_and_names_are_invalid_argument(
    tree: dict[str, Path], path: str, problem: str
) -> None:
    with pytest.raises(InvalidArgument, match=problem) as refused:
        resolve_under_roots(path, [tree["root"]], field="workflow_path")
    assert refused.value.violations[0].field == "workflow_path"
