"""HTTP edges: routing, authentication, request parsing and JSON shapes. No business rules."""
