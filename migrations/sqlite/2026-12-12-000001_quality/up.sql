-- Automatic quality checks of accepted results and four-eyes completion (docs/quality.md).
-- The flags a result earned, as JSON ([{code, severity, reason: {zh, en}}]): kept with the
-- result, so a returned result keeps its own.
ALTER TABLE verification_results ADD COLUMN quality_flags TEXT NOT NULL DEFAULT '[]';
-- The order's current result earned a flag (the list's ?flagged= filter), and one whose
-- severity needs a second clerk (quality.four_eyes_severities, as set when it was submitted).
ALTER TABLE work_orders ADD COLUMN flagged BOOLEAN NOT NULL DEFAULT 0;
ALTER TABLE work_orders ADD COLUMN needs_second_approval BOOLEAN NOT NULL DEFAULT 0;
-- The clerk whose complete recorded the first approval (state awaiting_second_approval).
ALTER TABLE work_orders ADD COLUMN approved_by TEXT;
-- When the hall last took the order on (claim, or a return to it): how fast a result came.
ALTER TABLE work_orders ADD COLUMN claimed_at TIMESTAMP;
-- An order waiting for its second approval is still active: the number gets no other order.
DROP INDEX work_orders_one_active_per_msisdn;
CREATE UNIQUE INDEX work_orders_one_active_per_msisdn ON work_orders (msisdn)
    WHERE state IN ('open', 'claimed', 'submitted', 'awaiting_second_approval');
-- The 30-day outcome rates by hall province: results by time.
CREATE INDEX verification_results_submitted ON verification_results (submitted_at);
