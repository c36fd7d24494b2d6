"""Bundled report fonts: fetched by ``make install``, never taken from the system."""
