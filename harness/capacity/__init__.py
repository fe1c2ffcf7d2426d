"""Capacity: how much memory a strategy needs for a model (the memory model), the largest model of the
ladder it trains on a given GPU, and what that model could reach in a day (a scaling-law estimate)."""
