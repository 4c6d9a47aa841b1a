-- Contacts abandoned within the resume window are restored after a restart, so that a caller
-- who comes back in time keeps their place; this finds them without reading every contact.
CREATE INDEX contacts_abandoned ON contacts (ended_at) WHERE state = 'abandoned';
