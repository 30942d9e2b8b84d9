-- Several PBXs ([[ami]]): each decision and each link records the PBX its call came from
-- (its [[ami]] name; 'default' for a plain [ami] table). '' for rows from before this
-- migration and for the API's and the CLI's sends, which come from no PBX.
ALTER TABLE decisions ADD COLUMN pbx TEXT NOT NULL DEFAULT '';
ALTER TABLE links ADD COLUMN pbx TEXT NOT NULL DEFAULT '';
