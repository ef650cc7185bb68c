"""Timed work. Each module here declares TASKS; the runner keeps their schedule in database rows."""
