-- bench/citus_counters.sql: one line of this node's counters for the database orderflow, read by
-- bench/citus.sh before and after a scenario on every node of the Citus cluster (run as the owner).
--
--   conn_new     citus_stat_counters.connection_establishment_succeeded  (needs
--   conn_reused  citus_stat_counters.connection_reused                    citus.enable_stat_counters)
--   single       citus_stat_counters.query_execution_single_shard
--   multi        citus_stat_counters.query_execution_multi_shard
--   prepared     rows of pg_dist_transaction: one per transaction this node PREPAREd on another
--                node for a two-phase commit it coordinated; they stay until 2PC recovery, which
--                bench/citus.sh turns off (citus.recover_2pc_interval = -1), so the count only grows
--   commits      pg_stat_database.xact_commit (every transaction, this query's own included)
SELECT c.connection_establishment_succeeded, c.connection_reused,
       c.query_execution_single_shard, c.query_execution_multi_shard,
       (SELECT count(*) FROM pg_dist_transaction),
       (SELECT xact_commit FROM pg_stat_database WHERE datname = current_database())
  FROM citus_stat_counters c
 WHERE c.name = current_database();
