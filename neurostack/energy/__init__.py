"""Energy estimates and capacity checks for neuromorphic targets (torch-free)."""
