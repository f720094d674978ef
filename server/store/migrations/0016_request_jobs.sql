-- A subject rights request's stages run as operations of the export queue, so that they have its leases,
-- attempts and resumption after a crash; such an operation names its request and is dpo's own: never
-- listed nor answered as a dataPolicyOperation. A request keeps its final report beside its body, since
-- the report stays after what the request collected is deleted.
ALTER TABLE operations ADD COLUMN request_id TEXT;
ALTER TABLE subject_rights_requests ADD COLUMN report TEXT;
