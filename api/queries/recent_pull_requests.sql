-- The Dr.CI poster's work list: pull requests whose jobs or log verdicts were written in the
-- last `seconds` (by when the rows were written), found through the workflow runs that name
-- them. `repositories` empty means every repository. Params: seconds UInt64, repositories
-- Array(String), page_size UInt64.
SELECT repository_full_name AS repository, number
FROM
(
    SELECT repository_full_name, arrayJoin(newest_numbers) AS number
    FROM
    (
        SELECT repository_full_name, id, argMax(pull_request_numbers, version) AS newest_numbers
        FROM {database}.workflow_run
        WHERE (empty(CAST({repositories:Array(String)} AS Array(String)))
               OR has(CAST({repositories:Array(String)} AS Array(String)), repository_full_name))
          AND head_sha IN
          (
              SELECT head_sha FROM {database}.workflow_job
              WHERE _inserted_at >= now() - {seconds:UInt64}
              UNION ALL
              SELECT head_sha FROM {database}.job_classification
              WHERE _inserted_at >= now() - {seconds:UInt64}
          )
        GROUP BY repository_full_name, id
    )
)
GROUP BY repository_full_name, number
ORDER BY repository_full_name, number
LIMIT {page_size:UInt64}
