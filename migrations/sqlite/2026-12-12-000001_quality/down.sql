DROP INDEX verification_results_submitted;
DROP INDEX work_orders_one_active_per_msisdn;
CREATE UNIQUE INDEX work_orders_one_active_per_msisdn ON work_orders (msisdn)
    WHERE state IN ('open', 'claimed', 'submitted');
ALTER TABLE work_orders DROP COLUMN claimed_at;
ALTER TABLE work_orders DROP COLUMN approved_by;
ALTER TABLE work_orders DROP COLUMN needs_second_approval;
ALTER TABLE work_orders DROP COLUMN flagged;
ALTER TABLE verification_results DROP COLUMN quality_flags;
