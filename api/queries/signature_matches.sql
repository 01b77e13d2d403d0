-- Dr.CI's "similar failure" evidence for many signatures at once: per signature, the jobs in a
-- window whose newest verdict has it, on commits other than the PR's own — how many, on how
-- many commits and which branches, first and last seen. Params: repo String, signatures
-- Array(String), exclude_shas Array(String), since UInt64, until UInt64 (unix seconds).
SELECT
    signature, count() AS jobs, uniqExact(head_sha) AS commits,
    arraySlice(groupUniqArray(head_branch), 1, 10) AS branches, groupArray(5)(id) AS example_job_ids,
    toUInt32(min(completed_at)) AS first_seen_unix, toUInt32(max(completed_at)) AS last_seen_unix
FROM
(
    SELECT id, head_sha, head_branch, completed_at
    FROM {database}.workflow_job
    WHERE repository_full_name = {repo:String}
      AND head_sha IN
      (
          SELECT head_sha FROM {database}.job_classification
          WHERE repository_full_name = {repo:String}
            AND signature IN (SELECT arrayJoin({signatures:Array(String)}))
      )
      AND head_sha NOT IN (SELECT arrayJoin({exclude_shas:Array(String)}))
    ORDER BY id, version DESC
    LIMIT 1 BY id
) AS jobs
ALL INNER JOIN
(
    SELECT job_id AS id, newest AS signature
    FROM
    (
        SELECT job_id, argMax(signature, version) AS newest
        FROM {database}.job_classification
        WHERE repository_full_name = {repo:String}
          AND job_id IN
          (
              SELECT job_id FROM {database}.job_classification
              WHERE repository_full_name = {repo:String}
                AND signature IN (SELECT arrayJoin({signatures:Array(String)}))
          )
        GROUP BY job_id
    )
    WHERE newest IN (SELECT arrayJoin({signatures:Array(String)}))
) AS verdicts USING (id)
WHERE completed_at >= toDateTime({since:UInt64}, 'UTC')
  AND completed_at <= toDateTime({until:UInt64}, 'UTC')
GROUP BY signature
ORDER BY signature
