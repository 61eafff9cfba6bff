"""The pytest plugin (``ostree_repo.pytest_plugin``), run on example test files.

Each test writes an example test module that uses the fixtures, runs it with ``pytester``
(in this process) and checks its outcome: what a user of the plugin would see.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile

import pytest

pytest_plugins = ["pytester"]

pytestmark = pytest.mark.skipif(shutil.which("ostree") is None, reason="needs the ostree CLI")

IMAGE_PIPELINE = """
from ostree_repo.builder import Dir, File, Symlink

def test_image_contents(ostree_commit, ostree_repository):
    result = ostree_commit(
        {
            "usr/bin/tool": File(b"#!/bin/sh\\necho tool\\n", mode=0o755),
            "usr/lib/os-release": b"NAME=Test OS\\nVERSION_ID=1\\n",
            "etc/os-release": "../usr/lib/os-release",
            "var/tmp": Dir(mode=0o1777),
        },
        subject="Test OS 1",
        metadata={"version": "1"},
    )
    assert result.version is not None and result.version.number == 1
    assert ostree_repository.refs == {"main": result.checksum}
    tree = ostree_repository.tree("main")
    assert tree["usr/bin/tool"] == File(b"#!/bin/sh\\necho tool\\n", mode=0o755)
    assert tree["etc/os-release"] == Symlink("../usr/lib/os-release")
    assert tree["var/tmp"].mode == 0o1777
    assert ostree_repository.read(result.checksum, "usr/lib/os-release").endswith(b"=1\\n")
    second = ostree_commit({"usr/lib/os-release": b"VERSION_ID=2\\n"}, subject="2")
    assert second.version.number == 2
    assert second.version.commits[second.checksum].parent == result.checksum

def test_a_wrong_expectation_fails(ostree_commit, ostree_repository):
    ostree_commit({"etc/motd": b"hello\\n"})
    assert ostree_repository.read("main", "etc/motd") == b"goodbye\\n"
"""


def test_image_pipeline_checks_a_commits_contents(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(IMAGE_PIPELINE)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*test_a_wrong_expectation_fails*", "*goodbye*"])


UPDATER = """
import subprocess

def ostree(*args):
    out = subprocess.run(["ostree", *args], check=True, capture_output=True, text=True)
    return out.stdout.strip()

def test_updater_pulls_the_new_commit(ostree_commit, ostree_server, tmp_path):
    first = ostree_commit({"usr/bin/app": b"v1"}, subject="one")
    second = ostree_commit({"usr/bin/app": b"v2", "usr/share/new": b"x" * 5000}, subject="two")
    client = tmp_path / "client"
    ostree("init", f"--repo={client}", "--mode=archive")
    ostree("remote", "add", f"--repo={client}", "--no-gpg-verify", "origin",
           ostree_server.repo_url("test"))
    ostree("pull", f"--repo={client}", "--depth=-1", "origin", "main")
    assert ostree("rev-parse", f"--repo={client}", "origin:main") == second.checksum
    assert ostree("rev-parse", f"--repo={client}", "origin:main^") == first.checksum
    assert ostree("cat", f"--repo={client}", "origin:main", "/usr/bin/app") == "v2"
    # a pinned version still serves the first commit
    ostree("remote", "add", f"--repo={client}", "--no-gpg-verify", "v1",
           ostree_server.repo_url("test", version=1))
    ostree("pull", f"--repo={client}", "v1", "main")
    assert ostree("rev-parse", f"--repo={client}", "v1:main") == first.checksum
"""


def test_updater_pulls_from_the_live_server(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(UPDATER)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


ARCHIVES = """
import subprocess

import pytest

from ostree_repo.importing.errors import MissingParentError

def test_archive_and_update(ostree_archive, ostree_manager, tmp_path):
    tree = {"usr/bin/app": b"v1", "usr/lib/big": bytes(range(256)) * 400, "lib": "usr/lib"}
    full = ostree_archive(tree, ref="os/stable", subject="1", compression="tar.gz")
    update = ostree_archive(
        {**tree, "usr/bin/app": b"v2"}, ref="os/stable", parent=full, subject="2"
    )
    assert update.parent == full.commit and update.update and not full.update
    assert update.objects < full.objects
    with pytest.raises(MissingParentError):
        ostree_manager.import_archive("elsewhere", update.path)
    assert ostree_manager.import_archive("os", full.path).refs == {"os/stable": full.commit}
    record = ostree_manager.import_archive("os", update.path)
    assert record.number == 2 and record.refs == {"os/stable": update.commit}
    ostree_manager.export("os", tmp_path / "export")
    subprocess.run(["ostree", "fsck", f"--repo={tmp_path / 'export'}"], check=True)
"""


def test_archive_factory_output_imports_and_passes_ostree_fsck(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(ARCHIVES)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_archive_layout_is_what_osbuild_composer_makes(
    pytester: pytest.Pytester, tmp_path: os.PathLike[str]
) -> None:
    pytester.makepyfile(
        """
        import json, os, shutil, subprocess, tarfile

        def test_layout(ostree_archive, tmp_path):
            made = ostree_archive({"etc/hostname": b"box\\n"}, ref="edge")
            with tarfile.open(made.path) as tar:
                names = tar.getnames()
                compose = json.load(tar.extractfile("compose.json"))
                tar.extractall(tmp_path / "x", filter="data")
            assert names[0] == "compose.json" and "repo/refs/heads/edge" in names
            assert compose == {"ref": "edge", "ostree-commit": made.commit}
            repo = tmp_path / "x" / "repo"
            subprocess.run(["ostree", "fsck", f"--repo={repo}"], check=True)
            out = subprocess.run(["ostree", "rev-parse", f"--repo={repo}", "edge"],
                                 check=True, capture_output=True, text=True)
            assert out.stdout.strip() == made.commit
        """
    )
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)


STORES = """
import pytest

def test_store(ostree_store_url, ostree_commit, ostree_repository):
    print("STORE", ostree_store_url)
    ostree_commit({"a": b"a"})
    assert ostree_repository.read("main", "a") == b"a"

@pytest.mark.parametrize("ostree_store_url", ["memory"], indirect=True)
def test_pinned(ostree_store_url):
    assert ostree_store_url.startswith("memory://")
"""


def test_store_option_runs_each_test_on_each_store(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(STORES)
    result = pytester.runpytest(
        "-p", "no:cacheprovider", "-v", "-s", "--ostree-store=fs", "--ostree-store=memory"
    )
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(
        ["*test_store?fs? STORE /*/ostree-store", "*test_store?memory? STORE memory://*"]
    )


def test_default_store_is_a_directory_under_tmp_path(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import os

        def test_default(ostree_store_url, ostree_manager, tmp_path):
            assert ostree_store_url == str(tmp_path / "ostree-store")
            assert os.path.isfile(os.path.join(ostree_store_url, "config"))
        """
    )
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)


S3_EXAMPLE = """
import subprocess

def test_on_s3(ostree_store_url, ostree_commit, ostree_archive, ostree_manager, ostree_server,
               tmp_path):
    assert ostree_store_url.startswith("s3://")
    made = ostree_commit({"usr/bin/app": b"on s3"})
    archive = ostree_archive({"etc/issue": b"archived"}, ref="edge")
    assert ostree_manager.import_archive("edge", archive.path).refs == {"edge": archive.commit}
    client = tmp_path / "client"
    subprocess.run(["ostree", "init", f"--repo={client}", "--mode=archive"], check=True)
    subprocess.run(["ostree", "remote", "add", f"--repo={client}", "--no-gpg-verify", "o",
                    ostree_server.repo_url("test")], check=True)
    subprocess.run(["ostree", "pull", f"--repo={client}", "o", "main"], check=True)
    out = subprocess.run(["ostree", "rev-parse", f"--repo={client}", "o:main"],
                         check=True, capture_output=True, text=True)
    assert out.stdout.strip() == made.checksum
"""


def test_fixtures_work_on_s3(
    pytester: pytest.Pytester, seaweedfs: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in seaweedfs.env.items():  # type: ignore[attr-defined]
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("OSTREE_REPO_TEST_STORE", f"s3://{seaweedfs.bucket}/plugin")  # type: ignore[attr-defined]
    pytester.makepyfile(S3_EXAMPLE)
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_plugin_is_registered_and_lazy(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import sys

        def test_nothing_imported(request):
            assert request.config.pluginmanager.hasplugin("ostree_repo")
            loaded = {m for m in sys.modules if m.startswith("ostree_repo.")}
            assert loaded <= {"ostree_repo.pytest_plugin", "ostree_repo.errors"}, loaded
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_archive_compressions_are_read_back(tmp_path: os.PathLike[str]) -> None:
    del tmp_path
    assert {"gz", "xz", "bz2"} <= set(tarfile.TarFile.OPEN_METH)
    assert subprocess.run(["ostree", "--version"], capture_output=True, check=False).returncode == 0
