-- Dr.CI's "similar failure" evidence for many signatures at once: per signature, the jobs in a
-- window whose newest verdict has it, on commits other than the PR's own — how many, on how
-- many commits and which branches (of their workflow runs), first and last seen. Read from
-- job_classification (a row per classified job) and workflow_run (a few rows a commit), so its
-- cost follows the failures, not the jobs. The window is on the verdicts' time. Params: repo
-- String, signatures Array(String), exclude_shas Array(String), since UInt64, until UInt64
-- (unix seconds).
SELECT
    newest_signature AS signature, count() AS jobs, uniqExact(newest_head_sha) AS commits,
    arraySlice(groupUniqArray(branch), 1, 10) AS branches,
    arraySlice(groupArray(job_id), 1, 5) AS example_job_ids,
    toUInt32(min(newest_classified_at)) AS first_seen_unix,
    toUInt32(max(newest_classified_at)) AS last_seen_unix
FROM
(
    SELECT
        job_id,
        argMax(signature, version) AS newest_signature,
        argMax(head_sha, version) AS newest_head_sha,
        argMax(classified_at, version) AS newest_classified_at
    FROM {database}.job_classification
    WHERE repository_full_name = {repo:String}
      AND job_id IN
      (
          SELECT job_id FROM {database}.job_classification
          WHERE repository_full_name = {repo:String}
            AND signature IN (SELECT arrayJoin({signatures:Array(String)}))
            AND classified_at >= toDateTime({since:UInt64}, 'UTC')
      )
    GROUP BY job_id
) AS verdicts
ANY LEFT JOIN
(
    SELECT head_sha AS newest_head_sha, any(head_branch) AS branch
    FROM {database}.workflow_run
    WHERE repository_full_name = {repo:String}
      AND head_sha IN
      (
          SELECT head_sha FROM {database}.job_classification
          WHERE repository_full_name = {repo:String}
            AND signature IN (SELECT arrayJoin({signatures:Array(String)}))
            AND classified_at >= toDateTime({since:UInt64}, 'UTC')
      )
    GROUP BY head_sha
) AS runs USING (newest_head_sha)
WHERE newest_signature IN (SELECT arrayJoin({signatures:Array(String)}))
  AND newest_head_sha NOT IN (SELECT arrayJoin({exclude_shas:Array(String)}))
  AND newest_classified_at >= toDateTime({since:UInt64}, 'UTC')
  AND newest_classified_at <= toDateTime({until:UInt64}, 'UTC')
GROUP BY newest_signature
ORDER BY signature
