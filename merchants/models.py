"""Merchants, their reward catalog, coupons and verification at the counter."""
