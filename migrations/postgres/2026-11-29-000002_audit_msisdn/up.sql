-- Which audit events name a mobile number in their detail (e.g. subscriber.viewed), so the
-- auditor's `msisdn` filter uses an index instead of scanning every event's detail.
CREATE TABLE audit_msisdn (
    msisdn TEXT NOT NULL,
    seq BIGINT NOT NULL REFERENCES audit_events(seq),
    PRIMARY KEY (msisdn, seq)
);
INSERT INTO audit_msisdn (msisdn, seq)
SELECT detail::jsonb ->> 'msisdn', seq FROM audit_events
WHERE jsonb_typeof(detail::jsonb -> 'msisdn') = 'string';
