-- Queue time percentiles per runner label and day (torchci's `queue_times_historical`): each
-- job's completed version, its queue time (created → started) counted once per label it asked
-- for. Params: repo String, since UInt64, until UInt64 (unix seconds).
SELECT
    label,
    toUInt32(toStartOfDay(created_at)) AS day_unix,
    count() AS jobs,
    quantilesExact(0.5, 0.9, 0.99)(queue_time_s) AS percentiles,
    max(queue_time_s) AS max_s
FROM
(
    SELECT id, labels, created_at, assumeNotNull(queue_time_s) AS queue_time_s
    FROM {database}.workflow_job
    WHERE repository_full_name = {repo:String}
      AND status = 'completed' AND isNotNull(queue_time_s)
      AND created_at >= toDateTime({since:UInt64}, 'UTC')
      AND created_at < toDateTime({until:UInt64}, 'UTC')
    LIMIT 1 BY id
)
ARRAY JOIN labels AS label
GROUP BY label, day_unix
ORDER BY label, day_unix
