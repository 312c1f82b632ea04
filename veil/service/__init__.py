"""Use cases. Each public function is one transaction; events go to the outbox in it."""
