"""Business rules: plain Python over a SQLModel Session. Never imports Reflex."""
