-- A subject rights request's stages run as operations of the export queue, so that they have its leases,
-- attempts and resumption after a crash; such an operation names its request and is dpo's own: never
-- listed nor answered as a dataPolicyOperation. A request keeps its final report beside its body, since
-- the report stays after what the request collected is deleted (`collected_removed_at`, once its
-- retention ended).
ALTER TABLE operations ADD COLUMN request_id TEXT;
ALTER TABLE subject_rights_requests ADD COLUMN report TEXT;
ALTER TABLE subject_rights_requests ADD COLUMN collected_removed_at TEXT;
CREATE INDEX subject_rights_requests_by_closing ON subject_rights_requests (closed_at);
