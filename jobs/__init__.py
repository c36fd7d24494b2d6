"""kaudit jobs: what runs (collect, ingest, policy, aggregate, geo, investigate, cli, settings)."""

__version__ = "0.1.0"
