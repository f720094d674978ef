-- Further attributes of a directory entry (employeeId, customerNumber…) as a JSON object of scalars, NULL
-- for none: imported from the users file, exported in the profile, bound as data sources' parameters.
ALTER TABLE users ADD COLUMN attributes TEXT;
