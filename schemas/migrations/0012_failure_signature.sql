-- Failure signatures (issue #17): which failures are the same failure. `signature` is 16 hex
-- digits over the rule, the masked captures and the masked line (schemas/src/signature.rs);
-- `pattern` is the failure line masked, as LUCI Analysis shows a cluster. '' unless a rule
-- matched. Readers: api/queries/similar_failures.sql, failure_clusters.sql, drci_jobs.sql.
ALTER TABLE {database}.job_classification ADD COLUMN signature String AFTER classified_at;
ALTER TABLE {database}.job_classification ADD COLUMN pattern String AFTER signature;
