"""Plumbing every clinic service shares: configuration, the database and its
unit of work, the event envelope, the transactional outbox and its relay,
idempotent event handling with dead letters, and the error types that cross
RPC and HTTP. Clinic rules never live here."""
