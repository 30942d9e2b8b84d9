-- The card's live figures count an agent's calls and customers: a covering index keeps that
-- an index-only scan of the agent's own decisions instead of a scan of every decision.
CREATE INDEX decisions_agent ON decisions (agent_id, trigger, linkedid, customer_number);
