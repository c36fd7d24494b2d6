"""Airflow 3 DAGs: when things run. Each task is one call into jobs/ or reports/."""
