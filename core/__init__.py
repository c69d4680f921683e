"""Framework-free infrastructure: settings, database, crypto, clock."""
