"""JSON controllers, by client: people (owners), and later carriers, platforms, callers."""
