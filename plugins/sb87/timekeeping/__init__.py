"""Time as the office counts it: official working days, the steps' working-day limits, Thai dates."""
