-- Open issues titled `UNSTABLE <job name>`: torchci's unstable jobs (their failures neither
-- block a PR nor redden trunk). Each issue at its newest version; the API matches titles to
-- job names. Params: repo String.
SELECT number, title, html_url
FROM
(
    SELECT number, title, state, deleted, html_url
    FROM {database}.issues
    WHERE repository_full_name = {repo:String} AND is_pull_request = 0
    ORDER BY number, version DESC
    LIMIT 1 BY number
)
WHERE state = 'open' AND deleted = 0 AND startsWith(title, 'UNSTABLE ')
ORDER BY number
