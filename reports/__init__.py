"""kaudit reports: charts, templates, PDF rendering, publishing."""
