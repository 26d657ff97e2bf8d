"""Models and rules per concept: no HTTP, no docker."""
