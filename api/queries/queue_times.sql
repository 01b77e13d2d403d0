-- Queue time percentiles per runner label and day (torchci's `queue_times_historical`): each
-- completed job's queue time (created → started), once per label it asked for. One pass, no
-- deduplication: a job delivered twice before ClickHouse merged its rows counts once (the
-- count is of distinct jobs) and weighs twice in the percentiles, with the same value — a
-- completed job's queue time never changes. Params: repo String, since UInt64, until UInt64
-- (unix seconds).
SELECT
    label,
    toUInt32(toStartOfDay(created_at)) AS day_unix,
    uniqExact(id) AS jobs,
    quantilesExact(0.5, 0.9, 0.99)(assumeNotNull(queue_time_s)) AS percentiles,
    max(assumeNotNull(queue_time_s)) AS max_s
FROM {database}.workflow_job
ARRAY JOIN labels AS label
WHERE repository_full_name = {repo:String}
  AND status = 'completed' AND isNotNull(queue_time_s)
  AND created_at >= toDateTime({since:UInt64}, 'UTC')
  AND created_at < toDateTime({until:UInt64}, 'UTC')
GROUP BY label, day_unix
ORDER BY label, day_unix
