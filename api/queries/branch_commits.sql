-- A branch's commits, newest first: the rows of the HUD grid. From our own push stream (torchci
-- asks GitHub for this list). Newest push first, then newest commit within a push: author dates
-- alone misorder rebased or landed commits. Params: repo String, ref String ('refs/heads/main'),
-- page_size UInt64, offset UInt64.
SELECT sha, message, author_name, author_username, timestamp, pushed_at, url
FROM
(
    SELECT sha, version, message, author_name, author_username, timestamp, pushed_at, url
    FROM {database}.commit
    WHERE repository_full_name = {repo:String} AND ref = {ref:String}
    ORDER BY sha, version DESC
    LIMIT 1 BY sha
)
ORDER BY pushed_at DESC, timestamp DESC, sha
LIMIT {offset:UInt64}, {page_size:UInt64}
