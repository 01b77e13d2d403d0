-- Every head a pull request has had, newest first — including heads force-pushed away — from
-- the workflow runs that name the PR (each run keeps its head sha; torchci's `pr_commits`) and
-- the PR's current head. Older pull_request versions are no source: ReplacingMergeTree
-- collapses them. `first_seen` orders the heads; `message` comes from the runs, when any.
-- Params: repo String, number Int64.
SELECT
    sha,
    min(seen_at) AS first_seen,
    max(seen_at) AS last_seen,
    groupUniqArray(source) AS sources,
    max(message) AS message
FROM
(
    SELECT head_sha AS sha, updated_at AS seen_at, 'pull_request' AS source, '' AS message
    FROM
    (
        SELECT head_sha, updated_at
        FROM {database}.pull_request
        WHERE repository_full_name = {repo:String} AND number = {number:Int64}
        ORDER BY version DESC
        LIMIT 1
    )
    WHERE head_sha != ''
    UNION ALL
    SELECT head_sha AS sha, created_at AS seen_at, 'workflow_run' AS source,
           head_commit_message AS message
    FROM
    (
        -- Each run at its newest version, so the answer does not depend on merges.
        SELECT id, head_sha, created_at, head_commit_message
        FROM {database}.workflow_run
        WHERE repository_full_name = {repo:String} AND has(pull_request_numbers, {number:Int64})
        ORDER BY id, version DESC
        LIMIT 1 BY id
    )
)
GROUP BY sha
ORDER BY first_seen DESC, sha
