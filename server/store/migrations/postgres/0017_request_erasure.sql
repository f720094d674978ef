-- A `delete` request's plan and each erase step's outcome, as JSON beside the request: written after every
-- step, before the next starts, so that a crash resumes at the first step not recorded.
ALTER TABLE subject_rights_requests ADD COLUMN erasure TEXT;
