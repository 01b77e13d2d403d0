-- The commit and PR pages read a commit's jobs from grid_job too (issue #18): the columns they
-- show beyond a grid cell's. Read from workflow_job (8,192-row granules, wide rows), one
-- commit's ~800 rows cost ~115 k rows and ~38 MiB read — a granule per part per sha; grid_job's
-- 1,024-row granules of these narrower rows read a tenth of that. Rows written before this
-- migration hold the defaults: `hudstream replay grid_job` fills them (README, "Upgrading a
-- schema"). Writer: projections/src/workflow_job.rs (`GridJobRow`). Readers:
-- api/queries/jobs_for_commits.sql, grid_jobs.sql, hot_window_jobs.sql.
ALTER TABLE {database}.grid_job ADD COLUMN run_id Int64 AFTER version;
ALTER TABLE {database}.grid_job ADD COLUMN created_at DateTime('UTC') AFTER conclusion;
ALTER TABLE {database}.grid_job ADD COLUMN started_at DateTime('UTC') AFTER created_at;
ALTER TABLE {database}.grid_job ADD COLUMN completed_at DateTime('UTC') AFTER started_at;
ALTER TABLE {database}.grid_job ADD COLUMN queue_time_s Nullable(Float64) AFTER completed_at;
ALTER TABLE {database}.grid_job ADD COLUMN labels Array(String) AFTER duration_s;
ALTER TABLE {database}.grid_job ADD COLUMN runner_name String AFTER labels;
