-- The commits of a branch each workflow ran on, in a window (from workflow_run: a few rows a
-- commit): broken trunk counts a job's consecutive failures among the commits its workflow ran
-- on. Params: repo String, ref String, since UInt64, until UInt64 (unix seconds).
SELECT name AS workflow, groupUniqArray(head_sha) AS shas
FROM {database}.workflow_run
WHERE repository_full_name = {repo:String}
  AND head_sha IN
  (
      SELECT sha FROM {database}.commit
      WHERE repository_full_name = {repo:String} AND ref = {ref:String}
        AND pushed_at >= toDateTime({since:UInt64}, 'UTC')
        AND pushed_at < toDateTime({until:UInt64}, 'UTC')
  )
GROUP BY name
ORDER BY workflow
