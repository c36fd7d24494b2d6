"""kaudit data contracts (Great Expectations suites) and their runner."""
