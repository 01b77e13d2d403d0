-- One pull request, current state, with the labels on it now (label_event's latest action).
-- Params: repo String, number Int64.
SELECT
    pr.number AS number, pr.version AS version, pr.state AS state, pr.draft AS draft,
    pr.merged AS merged, pr.title AS title, pr.author_login AS author_login,
    pr.head_sha AS head_sha, pr.head_ref AS head_ref, pr.base_ref AS base_ref,
    pr.created_at AS created_at, pr.updated_at AS updated_at, pr.closed_at AS closed_at,
    pr.html_url AS html_url, pr.labels AS labels, pr.base_sha AS base_sha
FROM
(
    SELECT *
    FROM {database}.pull_request
    WHERE repository_full_name = {repo:String} AND number = {number:Int64}
    ORDER BY version DESC
    LIMIT 1
) AS pr
