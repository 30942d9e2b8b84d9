-- As SQLite's 002: the card's live figures from the agent's own decisions.
CREATE INDEX decisions_agent ON decisions (agent_id, trigger, linkedid, customer_number)
