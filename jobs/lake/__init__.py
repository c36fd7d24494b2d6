"""The lake's one owner: whoever reads or writes ``<home>/lake`` goes through this package."""
