"""Durable tasks: long operations as rows with steps, resumed after a restart."""
