-- No two users of a tenant share a mail address (in any case): a data source's {mail} prefix or parameter
-- would otherwise hand one person the other's data. A database that already holds such a pair stops here,
-- naming this index: give one of the two another address (or none), then start again.
CREATE UNIQUE INDEX users_by_mail ON users (tenant_id, lower(mail)) WHERE mail IS NOT NULL;
