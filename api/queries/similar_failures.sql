-- Jobs whose newest verdict carries a failure signature, completed in a window, newest first:
-- which commits, branches and PRs, and whether a later attempt of the same job passed (a
-- failure that passed on rerun). Candidates come from job_classification by signature, are
-- kept only if their newest verdict still has it, and are looked up in workflow_job by their
-- commits (its key). Params: repo String, signature String, since UInt64, until UInt64 (unix
-- seconds), page_size UInt64.
SELECT
    id, head_sha, head_branch, workflow_name, name, conclusion, run_id, run_attempt,
    toUInt32(completed_at) AS completed_at_unix, html_url,
    passed_attempt, pull_request_numbers
FROM
(
    SELECT
        id, head_sha, head_branch, workflow_name, name, conclusion, run_id, run_attempt,
        completed_at, html_url, passed_attempt
    FROM
    (
        SELECT id, head_sha, head_branch, workflow_name, name, conclusion, run_id, run_attempt,
               completed_at, html_url
        FROM
        (
            SELECT id, head_sha, head_branch, workflow_name, name, conclusion, run_id,
                   run_attempt, completed_at, html_url
            FROM {database}.workflow_job
            WHERE repository_full_name = {repo:String}
              AND head_sha IN
              (
                  SELECT head_sha FROM {database}.job_classification
                  WHERE repository_full_name = {repo:String} AND signature = {signature:String}
              )
              AND id IN
              (
                  SELECT job_id FROM
                  (
                      SELECT job_id, argMax(signature, version) AS newest
                      FROM {database}.job_classification
                      WHERE repository_full_name = {repo:String}
                        AND job_id IN
                        (
                            SELECT job_id FROM {database}.job_classification
                            WHERE repository_full_name = {repo:String}
                              AND signature = {signature:String}
                        )
                      GROUP BY job_id
                  )
                  WHERE newest = {signature:String}
              )
            ORDER BY id, version DESC
            LIMIT 1 BY id
        )
        WHERE completed_at >= toDateTime({since:UInt64}, 'UTC')
          AND completed_at <= toDateTime({until:UInt64}, 'UTC')
    ) AS failed
    ANY LEFT JOIN
    (
        SELECT head_sha, run_id, name, max(run_attempt) AS passed_attempt
        FROM
        (
            SELECT head_sha, run_id, name, run_attempt, conclusion
            FROM {database}.workflow_job
            WHERE repository_full_name = {repo:String}
              AND head_sha IN
              (
                  SELECT head_sha FROM {database}.job_classification
                  WHERE repository_full_name = {repo:String} AND signature = {signature:String}
              )
            ORDER BY id, version DESC
            LIMIT 1 BY id
        )
        WHERE conclusion = 'success'
        GROUP BY head_sha, run_id, name
    ) AS passed USING (head_sha, run_id, name)
) AS jobs
ANY LEFT JOIN
(
    SELECT id AS run_id, pull_request_numbers
    FROM {database}.workflow_run
    WHERE repository_full_name = {repo:String}
      AND head_sha IN
      (
          SELECT head_sha FROM {database}.job_classification
          WHERE repository_full_name = {repo:String} AND signature = {signature:String}
      )
    ORDER BY id, version DESC
    LIMIT 1 BY id
) AS runs USING (run_id)
ORDER BY completed_at_unix DESC, id DESC
LIMIT {page_size:UInt64}
