CREATE TABLE provinces (
    code TEXT PRIMARY KEY NOT NULL,
    name_zh TEXT NOT NULL,
    name_en TEXT NOT NULL
);

CREATE TABLE halls (
    id TEXT PRIMARY KEY NOT NULL,
    code TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    province TEXT NOT NULL REFERENCES provinces(code),
    city TEXT NOT NULL,
    address TEXT NOT NULL,
    email TEXT,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX halls_city ON halls (city);

CREATE TABLE hall_keys (
    kid TEXT PRIMARY KEY NOT NULL,
    hall_id TEXT NOT NULL REFERENCES halls(id),
    alg TEXT NOT NULL,
    public_key_pem TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    revoked_at TIMESTAMP
);
CREATE INDEX hall_keys_hall ON hall_keys (hall_id);

CREATE TABLE users (
    id TEXT PRIMARY KEY NOT NULL,
    username TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL,
    province TEXT REFERENCES provinces(code),
    hall_id TEXT REFERENCES halls(id),
    email TEXT,
    created_at TIMESTAMP NOT NULL
);

CREATE TABLE subscribers (
    msisdn TEXT PRIMARY KEY NOT NULL,
    home_province TEXT NOT NULL,
    real_name_status TEXT NOT NULL,
    document_type TEXT,
    document_number_masked TEXT,
    document_name_masked TEXT,
    verified_at TIMESTAMP,
    work_order_id TEXT,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

CREATE TABLE work_orders (
    id TEXT PRIMARY KEY NOT NULL,
    reference TEXT NOT NULL UNIQUE,
    msisdn TEXT NOT NULL,
    home_province TEXT NOT NULL,
    target_province TEXT NOT NULL,
    target_city TEXT NOT NULL,
    target_hall_id TEXT REFERENCES halls(id),
    state TEXT NOT NULL,
    version BIGINT NOT NULL,
    reason TEXT NOT NULL,
    expected_name TEXT,
    opened_by TEXT NOT NULL,
    claimed_by TEXT,
    claimed_hall_id TEXT,
    due_at TIMESTAMP NOT NULL,
    deadline_at TIMESTAMP NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    verification_id TEXT,
    receipt TEXT
);
-- A number has at most one active order, whichever province opened it.
CREATE UNIQUE INDEX work_orders_one_active_per_msisdn ON work_orders (msisdn)
    WHERE state IN ('open', 'claimed', 'submitted');
CREATE INDEX work_orders_msisdn ON work_orders (msisdn);
CREATE INDEX work_orders_home ON work_orders (home_province, id);
CREATE INDEX work_orders_target_hall ON work_orders (target_hall_id, id);
CREATE INDEX work_orders_target_city ON work_orders (target_city, id);
CREATE INDEX work_orders_claimed_hall ON work_orders (claimed_hall_id, id);
CREATE INDEX work_orders_state ON work_orders (state, id);

CREATE TABLE verification_results (
    id TEXT PRIMARY KEY NOT NULL,
    work_order_id TEXT NOT NULL REFERENCES work_orders(id),
    jws TEXT NOT NULL,
    result_sha256 TEXT NOT NULL,
    kid TEXT NOT NULL,
    alg TEXT NOT NULL,
    hall_id TEXT NOT NULL,
    staff TEXT NOT NULL,
    outcome TEXT NOT NULL,
    document_type TEXT,
    document_number_masked TEXT,
    document_name_masked TEXT,
    method TEXT NOT NULL,
    evidence TEXT NOT NULL,
    iat BIGINT NOT NULL,
    -- A replayed result is a unique-index hit in the submitting transaction.
    jti TEXT NOT NULL UNIQUE,
    submitted_at TIMESTAMP NOT NULL
);
CREATE INDEX verification_results_order ON verification_results (work_order_id);

CREATE TABLE reference_counters (
    province TEXT NOT NULL,
    day TEXT NOT NULL,
    last BIGINT NOT NULL,
    PRIMARY KEY (province, day)
);

CREATE TABLE audit_events (
    seq BIGINT PRIMARY KEY NOT NULL,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    role TEXT NOT NULL,
    action TEXT NOT NULL,
    work_order TEXT,
    detail TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX audit_events_work_order ON audit_events (work_order, seq);
CREATE INDEX audit_events_actor ON audit_events (actor, seq);
CREATE INDEX audit_events_action ON audit_events (action, seq);
CREATE INDEX audit_events_at ON audit_events (at);

-- The chain's head: every write transaction updates this row first, which orders the chain
-- and takes the write lock before any read.
CREATE TABLE audit_head (
    id INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    size BIGINT NOT NULL,
    hash TEXT NOT NULL
);
INSERT INTO audit_head (id, size, hash) VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

-- Every signed checkpoint of the log, kept (auditors store copies elsewhere).
CREATE TABLE audit_checkpoints (
    size BIGINT PRIMARY KEY NOT NULL,
    head TEXT NOT NULL,
    at TIMESTAMP NOT NULL,
    jws TEXT NOT NULL
);

-- Public keys of every service instance, so any instance's JWKS verifies any instance's receipts.
CREATE TABLE service_keys (
    kid TEXT PRIMARY KEY NOT NULL,
    alg TEXT NOT NULL,
    public_jwk TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);

-- Secrets every instance sharing the database must agree on (the login token key).
CREATE TABLE service_secrets (
    name TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);

INSERT INTO provinces (code, name_zh, name_en) VALUES
('11', '北京市', 'Beijing'),
('12', '天津市', 'Tianjin'),
('13', '河北省', 'Hebei'),
('14', '山西省', 'Shanxi'),
('15', '内蒙古自治区', 'Inner Mongolia'),
('21', '辽宁省', 'Liaoning'),
('22', '吉林省', 'Jilin'),
('23', '黑龙江省', 'Heilongjiang'),
('31', '上海市', 'Shanghai'),
('32', '江苏省', 'Jiangsu'),
('33', '浙江省', 'Zhejiang'),
('34', '安徽省', 'Anhui'),
('35', '福建省', 'Fujian'),
('36', '江西省', 'Jiangxi'),
('37', '山东省', 'Shandong'),
('41', '河南省', 'Henan'),
('42', '湖北省', 'Hubei'),
('43', '湖南省', 'Hunan'),
('44', '广东省', 'Guangdong'),
('45', '广西壮族自治区', 'Guangxi'),
('46', '海南省', 'Hainan'),
('50', '重庆市', 'Chongqing'),
('51', '四川省', 'Sichuan'),
('52', '贵州省', 'Guizhou'),
('53', '云南省', 'Yunnan'),
('54', '西藏自治区', 'Tibet'),
('61', '陕西省', 'Shaanxi'),
('62', '甘肃省', 'Gansu'),
('63', '青海省', 'Qinghai'),
('64', '宁夏回族自治区', 'Ningxia'),
('65', '新疆维吾尔自治区', 'Xinjiang'),
('71', '台湾省', 'Taiwan'),
('81', '香港特别行政区', 'Hong Kong'),
('82', '澳门特别行政区', 'Macau');

-- The audit trail is append-only: refuse UPDATE and DELETE loudly.
CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only: UPDATE refused');
END;
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only: DELETE refused');
END;
