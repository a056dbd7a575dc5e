-- Citus, part 1 of 2 (opt-in): applied by `orderflow --migrate` after db/migrations and before
-- db/functions, only in a database where the citus extension exists (scripts/citus.sh makes
-- one). Every statement is idempotent: the whole file runs at every start.
--
-- Placement (DESIGN.md "Sharding on Citus"):
--   by order_id, colocated with workflows: workflows, workflow_steps, payments, reservations,
--     effects, outbox, history, finished_count_deltas. Everything one order writes lives on the
--     shard of its order id, so a delegated call runs on one node.
--   by Idempotency-Key, colocated with each other: idempotency_keys, orders. A create touches
--     the key's shard only; GET /orders/{id} knows only the id and asks every shard.
--   by provider, colocated with each other: rate_buckets, circuit_calls. A provider call's lease
--     takes a token and its report counts the outcome on the provider's shard: one row there.
--   reference (a copy on every node, read locally): the rules stored as data, the settings,
--     inventory, faults, and the providers' circuits and webhooks. Writes to them are rare
--     (operators, drills, tracked stock, a circuit's transitions) and cost a two-phase commit
--     on every node; the request path of an untracked item only reads them.
--   local to the coordinator: schema_migrations.
--
-- Citus wants the distribution column in every primary key and unique constraint, so the keys
-- that plain PostgreSQL has on an id alone get it added here. The functions rely only on what
-- both shapes guarantee (an effect's, payment's or event's key starts with its order id).

-- The migration's transaction runs with citus.multi_shard_modify_mode = sequential (src/migrate.cc):
-- DDL on tables with foreign keys to reference tables needs one connection per node.

-- Keys: each constraint named as on plain PostgreSQL where the functions name it.
DO $$
DECLARE
    v_table regclass;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_dist_partition WHERE logicalrelid = 'orderflow.workflows'::regclass) THEN
        ALTER TABLE orderflow.payments DROP CONSTRAINT payments_pkey;
        ALTER TABLE orderflow.payments ADD CONSTRAINT payments_pkey PRIMARY KEY (order_id, id);
        ALTER TABLE orderflow.payments DROP CONSTRAINT payments_idempotency_key_key;
        ALTER TABLE orderflow.payments ADD CONSTRAINT payments_idempotency_key_key UNIQUE (order_id, idempotency_key);

        ALTER TABLE orderflow.effects DROP CONSTRAINT effects_pkey;
        ALTER TABLE orderflow.effects ADD CONSTRAINT effects_pkey PRIMARY KEY (order_id, id);
        ALTER TABLE orderflow.effects DROP CONSTRAINT effects_idempotency_key_key;
        ALTER TABLE orderflow.effects ADD CONSTRAINT effects_idempotency_key_key UNIQUE (order_id, idempotency_key);

        ALTER TABLE orderflow.outbox DROP CONSTRAINT outbox_pkey;
        ALTER TABLE orderflow.outbox ADD CONSTRAINT outbox_pkey PRIMARY KEY (order_id, id);
        ALTER TABLE orderflow.outbox DROP CONSTRAINT outbox_event_key_key;
        ALTER TABLE orderflow.outbox ADD CONSTRAINT outbox_event_key_key UNIQUE (order_id, event_key);

        UPDATE orderflow.finished_count_deltas SET order_id = '' WHERE order_id IS NULL;
        ALTER TABLE orderflow.finished_count_deltas ALTER COLUMN order_id SET NOT NULL;

        -- Orders whose key expired before 015 have no key: they get a placeholder of their own.
        UPDATE orderflow.orders SET idempotency_key = 'order:' || id WHERE idempotency_key IS NULL;
        ALTER TABLE orderflow.orders ALTER COLUMN idempotency_key SET NOT NULL;
        ALTER TABLE orderflow.idempotency_keys DROP CONSTRAINT idempotency_keys_order_id_fkey;
        ALTER TABLE orderflow.idempotency_keys DROP CONSTRAINT idempotency_keys_order_id_key;
        ALTER TABLE orderflow.idempotency_keys ADD CONSTRAINT idempotency_keys_order_id_key UNIQUE (key, order_id);
        ALTER TABLE orderflow.orders DROP CONSTRAINT orders_pkey;
        ALTER TABLE orderflow.orders ADD CONSTRAINT orders_pkey PRIMARY KEY (idempotency_key, id);

        -- One at a time, skipping a table already placed (a reference table's foreign keys
        -- bring the tables they reference along).
        -- Foreign keys between the future reference tables go first and come back once both
        -- ends are placed (Citus would otherwise turn the referencing table into a local one).
        ALTER TABLE orderflow.workflow_transitions DROP CONSTRAINT workflow_transitions_from_status_fkey;
        ALTER TABLE orderflow.workflow_transitions DROP CONSTRAINT workflow_transitions_to_status_fkey;
        ALTER TABLE orderflow.rate_buckets DROP CONSTRAINT rate_buckets_provider_fkey;
        FOREACH v_table IN ARRAY ARRAY[
            'orderflow.workflow_statuses', 'orderflow.workflow_transitions', 'orderflow.settings',
            'orderflow.retry_policies', 'orderflow.step_errors', 'orderflow.currencies',
            'orderflow.effect_policies', 'orderflow.provider_outcomes',
            'orderflow.provider_object_statuses', 'orderflow.providers', 'orderflow.event_types',
            'orderflow.circuit_transitions', 'orderflow.circuits', 'orderflow.webhooks', 'orderflow.faults',
            'orderflow.inventory', 'orderflow.finished_counts']::regclass[] LOOP
            IF NOT EXISTS (SELECT 1 FROM pg_dist_partition p WHERE p.logicalrelid = v_table) THEN
                PERFORM create_reference_table(v_table);
            END IF;
        END LOOP;

        ALTER TABLE orderflow.workflow_transitions ADD CONSTRAINT workflow_transitions_from_status_fkey
            FOREIGN KEY (from_status) REFERENCES orderflow.workflow_statuses (status) ON DELETE CASCADE;
        ALTER TABLE orderflow.workflow_transitions ADD CONSTRAINT workflow_transitions_to_status_fkey
            FOREIGN KEY (to_status) REFERENCES orderflow.workflow_statuses (status) ON DELETE CASCADE;
        PERFORM create_distributed_table('orderflow.workflows', 'order_id');
        PERFORM create_distributed_table(t, 'order_id', colocate_with => 'orderflow.workflows')
           FROM unnest(ARRAY['orderflow.workflow_steps', 'orderflow.payments', 'orderflow.reservations',
                             'orderflow.effects', 'orderflow.outbox', 'orderflow.history',
                             'orderflow.finished_count_deltas']::regclass[]) AS t;

        -- A provider's rate buckets and call counts: by provider, each provider's rows on one
        -- shard. A lease or a report writes one row there (a row lock, SKIP LOCKED as on plain
        -- PostgreSQL) instead of a reference-table row on every node, which Citus serializes
        -- with every other write to that table.
        PERFORM create_distributed_table('orderflow.rate_buckets', 'provider', colocate_with => 'none');
        PERFORM create_distributed_table('orderflow.circuit_calls', 'provider',
                                         colocate_with => 'orderflow.rate_buckets');
        ALTER TABLE orderflow.rate_buckets ADD CONSTRAINT rate_buckets_provider_fkey
            FOREIGN KEY (provider) REFERENCES orderflow.circuits (provider) ON DELETE CASCADE;

        PERFORM create_distributed_table('orderflow.idempotency_keys', 'key', colocate_with => 'none');
        PERFORM create_distributed_table('orderflow.orders', 'idempotency_key',
                                         colocate_with => 'orderflow.idempotency_keys');
        ALTER TABLE orderflow.idempotency_keys ADD CONSTRAINT idempotency_keys_order_id_fkey
            FOREIGN KEY (key, order_id) REFERENCES orderflow.orders (idempotency_key, id)
            DEFERRABLE INITIALLY DEFERRED;
    END IF;
END
$$;
