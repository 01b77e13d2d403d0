-- The newest `page_size` failed jobs whose newest verdict carries a failure signature, in a
-- window (`matched` = 1), with the reruns that passed on their commits (`matched` = 0, attempt
-- > 1, success): which commits, branches and PRs, and — the API pairs them by run and job name
-- — whether a later attempt of a failed job passed. The jobs are chosen in job_classification
-- (by signature and verdict time), then read from job_failure (failed jobs and passing reruns,
-- small granules) in one pass over their commits, and their PRs from workflow_run, so the cost
-- follows the page, not the signature's history nor the job table. Params: repo String, signature String, since UInt64, until UInt64
-- (unix seconds), page_size UInt64.
SELECT
    id, matched, head_sha, head_branch, workflow_name, name, conclusion, run_id, run_attempt,
    toUInt32(completed_at) AS completed_at_unix, pull_request_numbers
FROM
(
    SELECT
        id, id IN
              (
                    SELECT job_id FROM
                    (
                        SELECT job_id, argMax(signature, version) AS newest,
                               argMax(classified_at, version) AS newest_at
                        FROM {database}.job_classification
                        WHERE repository_full_name = {repo:String}
                          AND job_id IN
                          (
                              SELECT job_id FROM {database}.job_classification
                              WHERE repository_full_name = {repo:String}
                                AND signature = {signature:String}
                                AND classified_at >= toDateTime({since:UInt64}, 'UTC')
                          )
                        GROUP BY job_id
                    )
                    WHERE newest = {signature:String}
                      AND newest_at >= toDateTime({since:UInt64}, 'UTC')
                      AND newest_at <= toDateTime({until:UInt64}, 'UTC')
                    ORDER BY newest_at DESC, job_id DESC
                    LIMIT {page_size:UInt64}
                ) AS matched,
        head_sha, head_branch, workflow_name, name, conclusion, run_id, run_attempt,
        completed_at
    FROM {database}.job_failure
    WHERE repository_full_name = {repo:String}
      AND head_sha IN
          (
                  SELECT head_sha FROM {database}.job_classification
                  WHERE repository_full_name = {repo:String}
                    AND job_id IN
                    (
                        SELECT job_id FROM
                        (
                            SELECT job_id, argMax(signature, version) AS newest,
                                   argMax(classified_at, version) AS newest_at
                            FROM {database}.job_classification
                            WHERE repository_full_name = {repo:String}
                              AND job_id IN
                              (
                                  SELECT job_id FROM {database}.job_classification
                                  WHERE repository_full_name = {repo:String}
                                    AND signature = {signature:String}
                                    AND classified_at >= toDateTime({since:UInt64}, 'UTC')
                              )
                            GROUP BY job_id
                        )
                        WHERE newest = {signature:String}
                          AND newest_at >= toDateTime({since:UInt64}, 'UTC')
                          AND newest_at <= toDateTime({until:UInt64}, 'UTC')
                        ORDER BY newest_at DESC, job_id DESC
                        LIMIT {page_size:UInt64}
                    )
              )
      AND (matched OR (conclusion = 'success' AND run_attempt > 1))
    ORDER BY id, version DESC
    LIMIT 1 BY id
) AS jobs
ANY LEFT JOIN
(
    SELECT id AS run_id, pull_request_numbers
    FROM {database}.workflow_run
    WHERE repository_full_name = {repo:String}
      AND head_sha IN
          (
                  SELECT head_sha FROM {database}.job_classification
                  WHERE repository_full_name = {repo:String}
                    AND job_id IN
                    (
                        SELECT job_id FROM
                        (
                            SELECT job_id, argMax(signature, version) AS newest,
                                   argMax(classified_at, version) AS newest_at
                            FROM {database}.job_classification
                            WHERE repository_full_name = {repo:String}
                              AND job_id IN
                              (
                                  SELECT job_id FROM {database}.job_classification
                                  WHERE repository_full_name = {repo:String}
                                    AND signature = {signature:String}
                                    AND classified_at >= toDateTime({since:UInt64}, 'UTC')
                              )
                            GROUP BY job_id
                        )
                        WHERE newest = {signature:String}
                          AND newest_at >= toDateTime({since:UInt64}, 'UTC')
                          AND newest_at <= toDateTime({until:UInt64}, 'UTC')
                        ORDER BY newest_at DESC, job_id DESC
                        LIMIT {page_size:UInt64}
                    )
              )
    ORDER BY id, version DESC
    LIMIT 1 BY id
) AS runs USING (run_id)
ORDER BY matched DESC, completed_at_unix DESC, id DESC
