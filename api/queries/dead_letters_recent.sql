-- The latest dead letters of every stage, with their reasons. Params: limit UInt64.
SELECT stage, source_topic, source_partition, source_offset, reason, github_event,
       github_delivery, payload_size, dead_lettered_at
FROM {database}.dead_letter FINAL
ORDER BY dead_lettered_at DESC, stage, source_topic, source_partition, source_offset
LIMIT {limit:UInt64}
