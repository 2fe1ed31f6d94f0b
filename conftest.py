"""Repository-wide pytest set-up: keep Airflow's home and configuration inside the test session."""

import os
import tempfile

# Airflow reads its configuration on first import: point it away from ~/airflow before any test
# module imports it. End-to-end tests give their stack its own home on top of this.
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="sb87-airflow-home-"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "False")
