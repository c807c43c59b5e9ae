DROP INDEX work_orders_state_updated;
