DROP TABLE audit_msisdn;
