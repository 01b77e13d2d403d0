-- torchci's `log_captures_count`: the most frequent failure captures among the jobs that failed
-- (failure, timed_out, cancelled — torchci's "among failures") in a window, from each job's
-- newest verdict. Read model: `job_failure` (the few percent of workflow_job's versions that
-- are failures, narrow granules) for the jobs and their completion, and the verdicts of only
-- those jobs (`job_classification` is keyed by job id, so `IN` reads their granules): a 7-day
-- window no longer sorts every job version of the repository (1 M jobs: 0.67 → 0.05 s on the
-- server). The window is on the job's completion; `rule` '' means every rule. Params: repo
-- String, since UInt64, until UInt64 (unix seconds), rule String, offset UInt64, page_size
-- UInt64.
SELECT
    failure_captures AS captures,
    count() AS jobs,
    any(failure_rule) AS rule,
    toUInt32(max(completed_at)) AS last_seen_unix,
    groupArray(5)(id) AS example_job_ids
FROM
(
    SELECT id, completed_at
    FROM
    (
        SELECT id, completed_at, conclusion
        FROM {database}.job_failure
        WHERE repository_full_name = {repo:String}
          AND completed_at >= toDateTime({since:UInt64}, 'UTC')
          AND completed_at < toDateTime({until:UInt64}, 'UTC')
        ORDER BY id, version DESC
        LIMIT 1 BY id
    )
    WHERE conclusion IN ('failure', 'timed_out', 'cancelled')
) AS jobs
ALL INNER JOIN
(
    SELECT job_id AS id, rule AS failure_rule, captures AS failure_captures
    FROM
    (
        SELECT job_id, outcome, rule, captures
        FROM {database}.job_classification
        WHERE repository_full_name = {repo:String}
          AND job_id IN
          (
              SELECT id FROM {database}.job_failure
              WHERE repository_full_name = {repo:String}
                AND completed_at >= toDateTime({since:UInt64}, 'UTC')
                AND completed_at < toDateTime({until:UInt64}, 'UTC')
          )
        ORDER BY job_id, version DESC
        LIMIT 1 BY job_id
    )
    WHERE outcome = 'matched' AND ({rule:String} = '' OR rule = {rule:String})
) AS verdicts USING (id)
GROUP BY failure_captures
ORDER BY jobs DESC, last_seen_unix DESC
LIMIT {offset:UInt64}, {page_size:UInt64}
