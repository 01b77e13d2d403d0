-- One commit as pushes told us about it (any ref), for the commit page's header. The PR page
-- and the commit page fall back to the workflow runs' head_commit fields when no push was seen.
-- Params: repo String, shas Array(String).
SELECT sha, message, author_name, author_username, timestamp, pushed_at, url
FROM {database}.commit
WHERE repository_full_name = {repo:String}
  AND sha IN (SELECT arrayJoin({shas:Array(String)}))
ORDER BY sha, version DESC
LIMIT 1 BY sha
