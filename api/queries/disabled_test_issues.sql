-- Open issues titled `DISABLED …`: torchci's disabled tests (title `DISABLED test_name
-- (__main__.Suite)`, the platforms in the body). Each issue at its newest version; the API
-- parses titles and bodies. Params: repo String.
SELECT number, title, body, labels, toUInt32(created_at) AS created_at_unix,
       toUInt32(updated_at) AS updated_at_unix, html_url
FROM
(
    SELECT number, title, body, state, deleted, labels, created_at, updated_at, html_url
    FROM {database}.issues
    WHERE repository_full_name = {repo:String} AND is_pull_request = 0
    ORDER BY number, version DESC
    LIMIT 1 BY number
)
WHERE state = 'open' AND deleted = 0 AND startsWith(title, 'DISABLED ')
ORDER BY number
