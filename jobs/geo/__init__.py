"""Geo-IP: the public/private range table, the DB-IP fetch step and the mmdb lookup layer."""
