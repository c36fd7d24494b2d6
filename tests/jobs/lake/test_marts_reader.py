from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq

from jobs.lake.marts import read_mart_heads


def test_read_mart_heads_keeps_the_first_rows_of_each_value_across_batches(tmp_path):
    ids = ["a"] * 5 + ["b"] * 2 + ["c"] * 7
    table = pa.table({"detection_id": ids, "n": list(range(len(ids)))})
    (tmp_path / "m").mkdir()
    pq.write_table(table, tmp_path / "m" / "part-0.parquet", row_group_size=3)  # 5 row groups
    heads = read_mart_heads(tmp_path, "m", "detection_id", 4)
    assert {k: v["n"].to_pylist() for k, v in heads.items()} == {
        "a": [0, 1, 2, 3],
        "b": [5, 6],
        "c": [7, 8, 9, 10],
    }
    assert read_mart_heads(tmp_path, "missing", "detection_id", 4) == {}
