-- The most frequent failure signatures of a window, with their trend: per signature its rule,
-- pattern (the failure line masked), how many jobs and commits, jobs per day and first and
-- last seen. From each job's newest verdict; the window is on the verdict's time (a failed
-- job is classified when it completes). Params: repo String, since UInt64, until UInt64 (unix
-- seconds), offset UInt64, page_size UInt64.
SELECT
    newest_signature AS signature,
    any(newest_rule) AS rule,
    any(newest_pattern) AS pattern,
    any(newest_captures) AS captures,
    count() AS jobs,
    uniqExact(newest_head_sha) AS commits,
    sumMap([toUInt16(toDate(newest_classified_at))], [toUInt64(1)]) AS per_day,
    toUInt32(min(newest_classified_at)) AS first_seen_unix,
    toUInt32(max(newest_classified_at)) AS last_seen_unix,
    max(job_id) AS example_job_id
FROM
(
    SELECT
        job_id,
        argMax(signature, version) AS newest_signature,
        argMax(rule, version) AS newest_rule,
        argMax(pattern, version) AS newest_pattern,
        argMax(captures, version) AS newest_captures,
        argMax(head_sha, version) AS newest_head_sha,
        argMax(classified_at, version) AS newest_classified_at
    FROM {database}.job_classification
    WHERE repository_full_name = {repo:String}
      AND classified_at >= toDateTime({since:UInt64}, 'UTC')
      AND classified_at < toDateTime({until:UInt64}, 'UTC')
    GROUP BY job_id
)
WHERE newest_signature != ''
GROUP BY newest_signature
ORDER BY jobs DESC, last_seen_unix DESC, signature
LIMIT {offset:UInt64}, {page_size:UInt64}
