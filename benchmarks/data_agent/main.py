"""The size benchmark's data agent: numpy, pandas and pyarrow, imported and used (run by
``benchmarks/bench_sizes.py`` under the real CPython 3.13, never deployed)."""

import io

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq


def main() -> None:
    frame = pd.DataFrame({"x": np.arange(1000), "y": np.linspace(0.0, 1.0, 1000)})
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(frame), buffer)
    back = pq.read_table(io.BytesIO(buffer.getvalue())).to_pandas()
    print(int(back["x"].sum()), round(float(back["y"].mean()), 3))


if __name__ == "__main__":
    main()
