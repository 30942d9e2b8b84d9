-- As SQLite's 005: several PBXs ([[ami]]); each decision and each link records the PBX its call
-- came from ('' for rows from before it and for the API's and the CLI's sends).
ALTER TABLE decisions ADD COLUMN pbx text NOT NULL DEFAULT '';
ALTER TABLE links ADD COLUMN pbx text NOT NULL DEFAULT '';
