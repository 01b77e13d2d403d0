-- The verdict's outcome (matched, no_match, log_gone, log_unavailable), whether it was made on
-- a partial (keep-going) log, and how many bytes were classified. 0008 could not tell "no
-- match" from "no log".
ALTER TABLE {database}.job_classification ADD COLUMN outcome String AFTER head_sha;
ALTER TABLE {database}.job_classification ADD COLUMN log_partial UInt8 AFTER log_location;
ALTER TABLE {database}.job_classification ADD COLUMN log_bytes Int64 AFTER log_partial;
