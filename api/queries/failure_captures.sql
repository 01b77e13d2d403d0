-- torchci's `log_captures_count`: the most frequent failure captures in a window, from each
-- job's newest verdict joined to the job's newest state. The window is on the job's
-- completion; `rule` '' means every rule. Params: repo String, since UInt64, until UInt64
-- (unix seconds), rule String, offset UInt64, page_size UInt64.
SELECT
    failure_captures AS captures,
    count() AS jobs,
    any(failure_rule) AS rule,
    toUInt32(max(completed_at)) AS last_seen_unix,
    groupArray(5)(id) AS example_job_ids
FROM
(
    SELECT id, completed_at
    FROM {database}.workflow_job
    WHERE repository_full_name = {repo:String}
      AND completed_at >= toDateTime({since:UInt64}, 'UTC')
      AND completed_at < toDateTime({until:UInt64}, 'UTC')
    ORDER BY id, version DESC
    LIMIT 1 BY id
) AS jobs
ALL INNER JOIN
(
    SELECT job_id AS id, rule AS failure_rule, captures AS failure_captures
    FROM
    (
        SELECT job_id, outcome, rule, captures
        FROM {database}.job_classification
        WHERE repository_full_name = {repo:String}
        ORDER BY job_id, version DESC
        LIMIT 1 BY job_id
    )
    WHERE outcome = 'matched' AND ({rule:String} = '' OR rule = {rule:String})
) AS verdicts USING (id)
GROUP BY failure_captures
ORDER BY jobs DESC, last_seen_unix DESC
LIMIT {offset:UInt64}, {page_size:UInt64}
