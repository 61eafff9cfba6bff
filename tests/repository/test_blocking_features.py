"""The blocking facade reaches retention, storage accounting and static deltas."""

from __future__ import annotations

from pathlib import Path

from ostree_repo.blocking import Manager
from ostree_repo.builder import tree_from_mapping
from ostree_repo.objects import delta_name


def test_retention_du_and_deltas(tmp_path: Path) -> None:
    with Manager(str(tmp_path / "store")) as m:
        m.create_repository("r", settings={"retention": {"versions": 2}})
        made = []
        for i in range(3):
            tree = tree_from_mapping({"etc/os-release": b"VERSION=%d\n" % i})
            checksum, _ = m.commit("r", tree, ref="main", timestamp=1_700_000_000 + i)
            made.append(checksum)
        # version 1 set the policy; commits made 2, 3 and 4: the last two survive
        assert [v.number for v in m.versions("r")] == [0, 3, 4]
        assert m.apply_retention("r") == []  # nothing more to delete
        report = m.du("r", by="commit")
        assert report.version == 4 and set(report.items) == set(made)
        assert report.total.bytes > 0
        record = m.generate_deltas("r", [(made[1], made[2]), (None, made[2])])
        assert record is not None
        names = {delta_name(made[1], made[2]), delta_name(None, made[2])}
        assert names <= set(record.deltas)
        gone = m.delete_deltas("r", sorted(names))
        assert gone is not None and not names & set(gone.deltas)
