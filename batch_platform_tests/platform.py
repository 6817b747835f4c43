"""The platform's assets, checks and partitions as the tests use them: built by the package's own
builders from a config with the defaults every test config shares (first quarter 2024-Q1, L = 4).
No config file is read."""

from batch_platform.assets.bronze import build_bronze_assets
from batch_platform.assets.gold import build_gold_assets
from batch_platform.assets.ml import build_ml_assets, build_ml_checks
from batch_platform.assets.silver import build_silver_assets
from batch_platform.checks import build_silver_checks
from batch_platform.config import parse_config
from batch_platform.partitions import quarterly_partitions

DEFAULTS = parse_config({}, "test defaults")
quarterly = quarterly_partitions(DEFAULTS.batch.first_quarter)
bronze_assets = build_bronze_assets(quarterly)
bronze_operational, bronze_logs, bronze_external = bronze_assets
silver_assets = build_silver_assets(quarterly)
gold_assets = build_gold_assets(quarterly, DEFAULTS.batch)
silver_checks = build_silver_checks(quarterly)
ml_assets = build_ml_assets(quarterly, DEFAULTS.batch)
ml_checks = build_ml_checks(quarterly)
