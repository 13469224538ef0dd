"""What an architecture is evaluated on: datasets, child networks, supernets, benchmark tables."""
