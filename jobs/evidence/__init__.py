"""Evidence: collection from the masters into a write-once store, under a custody chain."""
