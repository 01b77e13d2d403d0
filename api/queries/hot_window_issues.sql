-- Every issue of a repository at its newest version, as the hot window holds it to keep the
-- open `UNSTABLE` ones (unstable_issues.sql's rule) current from the log: the version of each,
-- so an older record read later changes nothing. Params: repo String.
SELECT number, version, title, state, deleted, html_url
FROM {database}.issues
WHERE repository_full_name = {repo:String} AND is_pull_request = 0
ORDER BY number, version DESC
LIMIT 1 BY number
