//! One schema in portable types; both dialects' migrations produce it.

diesel::table! {
    provinces (code) {
        code -> Text,
        name_zh -> Text,
        name_en -> Text,
    }
}

diesel::table! {
    halls (id) {
        id -> Text,
        code -> Text,
        name -> Text,
        province -> Text,
        city -> Text,
        address -> Text,
        email -> Nullable<Text>,
        created_at -> Timestamp,
        token_generation -> BigInt,
        version -> BigInt,
        updated_at -> Nullable<Timestamp>,
        deactivated_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    hall_keys (kid) {
        kid -> Text,
        hall_id -> Text,
        alg -> Text,
        public_key_pem -> Text,
        created_at -> Timestamp,
        revoked_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    users (id) {
        id -> Text,
        username -> Text,
        password_hash -> Text,
        role -> Text,
        province -> Nullable<Text>,
        hall_id -> Nullable<Text>,
        email -> Nullable<Text>,
        created_at -> Timestamp,
        disabled_at -> Nullable<Timestamp>,
        token_generation -> BigInt,
        password_change_required -> Bool,
    }
}

diesel::table! {
    subscribers (msisdn) {
        msisdn -> Text,
        home_province -> Text,
        real_name_status -> Text,
        document_type -> Nullable<Text>,
        document_number_masked -> Nullable<Text>,
        document_name_masked -> Nullable<Text>,
        verified_at -> Nullable<Timestamp>,
        work_order_id -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    work_orders (id) {
        id -> Text,
        reference -> Text,
        msisdn -> Text,
        home_province -> Text,
        target_province -> Text,
        target_city -> Text,
        target_hall_id -> Nullable<Text>,
        state -> Text,
        version -> BigInt,
        reason -> Text,
        expected_name -> Nullable<Text>,
        opened_by -> Text,
        claimed_by -> Nullable<Text>,
        claimed_hall_id -> Nullable<Text>,
        due_at -> Timestamp,
        deadline_at -> Timestamp,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        verification_id -> Nullable<Text>,
        receipt -> Nullable<Text>,
        suspend_at -> Nullable<Timestamp>,
        remind_at -> Nullable<Timestamp>,
        reminded_at -> Nullable<Timestamp>,
        escalated_at -> Nullable<Timestamp>,
        expected_name_masked -> Nullable<Text>,
        expected_name_index -> Nullable<Text>,
        flagged -> Bool,
        needs_second_approval -> Bool,
        approved_by -> Nullable<Text>,
        claimed_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    outbox (id) {
        id -> Text,
        work_order_id -> Nullable<Text>,
        event -> Text,
        recipient -> Text,
        facts -> Text,
        state -> Text,
        attempts -> Integer,
        next_attempt_at -> Timestamp,
        lease_owner -> Nullable<Text>,
        lease_until -> Nullable<Timestamp>,
        last_error -> Nullable<Text>,
        created_at -> Timestamp,
        sent_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    clock_offset (id) {
        id -> Integer,
        offset_seconds -> BigInt,
    }
}

diesel::table! {
    verification_results (id) {
        id -> Text,
        work_order_id -> Text,
        jws -> Text,
        result_sha256 -> Text,
        kid -> Text,
        alg -> Text,
        hall_id -> Text,
        staff -> Text,
        outcome -> Text,
        document_type -> Nullable<Text>,
        document_number_masked -> Nullable<Text>,
        document_name_masked -> Nullable<Text>,
        method -> Text,
        evidence -> Text,
        iat -> BigInt,
        jti -> Text,
        submitted_at -> Timestamp,
        document_number_index -> Nullable<Text>,
        document_name_index -> Nullable<Text>,
        quality_flags -> Text,
    }
}

diesel::table! {
    reference_counters (province, day) {
        province -> Text,
        day -> Text,
        last -> BigInt,
    }
}

diesel::table! {
    audit_events (seq) {
        seq -> BigInt,
        at -> Text,
        actor -> Text,
        role -> Text,
        action -> Text,
        work_order -> Nullable<Text>,
        detail -> Text,
        prev_hash -> Text,
        hash -> Text,
    }
}

diesel::table! {
    audit_head (id) {
        id -> Integer,
        size -> BigInt,
        hash -> Text,
        frontier -> Nullable<Text>,
    }
}

diesel::table! {
    audit_tree_nodes (level, idx) {
        level -> Integer,
        idx -> BigInt,
        hash -> Text,
    }
}

diesel::table! {
    audit_checkpoints (size) {
        size -> BigInt,
        head -> Text,
        at -> Timestamp,
        jws -> Text,
    }
}

diesel::table! {
    audit_checkpoint_notes (size) {
        size -> BigInt,
        note -> Text,
        at -> Timestamp,
    }
}

diesel::table! {
    audit_cosignatures (witness, size) {
        witness -> Text,
        size -> BigInt,
        line -> Text,
        at -> Timestamp,
    }
}

diesel::table! {
    audit_witness_lease (id) {
        id -> Integer,
        owner -> Nullable<Text>,
        until -> Nullable<Timestamp>,
    }
}

diesel::table! {
    service_keys (kid) {
        kid -> Text,
        alg -> Text,
        public_jwk -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    service_secrets (name) {
        name -> Text,
        value -> Text,
    }
}

diesel::table! {
    evidence_files (id) {
        id -> Text,
        work_order_id -> Text,
        kind -> Text,
        sha256 -> Text,
        size -> BigInt,
        content_type -> Text,
        hall_id -> Text,
        uploaded_by -> Text,
        uploaded_at -> Timestamp,
        data_key_id -> Nullable<Text>,
        shredded_at -> Nullable<Timestamp>,
        object_deleted -> Bool,
    }
}

diesel::table! {
    data_keys (id) {
        id -> Text,
        msisdn -> Text,
        kek_id -> Text,
        wrapped -> Nullable<Text>,
        created_at -> Timestamp,
        shredded_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    audit_queue (id) {
        id -> BigInt,
        at -> Text,
        actor -> Text,
        role -> Text,
        action -> Text,
        work_order -> Nullable<Text>,
        detail -> Text,
    }
}

diesel::table! {
    audit_msisdn (msisdn, seq) {
        msisdn -> Text,
        seq -> BigInt,
    }
}

diesel::table! {
    token_keys (kid) {
        kid -> Text,
        secret -> Text,
        created_at -> Timestamp,
        retired_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    login_throttle (username, address) {
        username -> Text,
        address -> Text,
        failures -> BigInt,
        last_failed_at -> Timestamp,
        blocked_until -> Nullable<Timestamp>,
    }
}

diesel::table! {
    idempotency_keys (caller, idem_key) {
        caller -> Text,
        idem_key -> Text,
        method -> Text,
        path -> Text,
        attempt -> Text,
        lease_until -> Nullable<Timestamp>,
        request_digest -> Nullable<Text>,
        request_bytes -> Nullable<BigInt>,
        status -> Nullable<Integer>,
        response -> Nullable<Text>,
        created_at -> Timestamp,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    device_key_requests (id) {
        id -> Text,
        kid -> Text,
        alg -> Text,
        hall_id -> Text,
        username -> Text,
        state -> Text,
        public_key_pem -> Text,
        requested_at -> Timestamp,
        decided_by -> Nullable<Text>,
        decided_at -> Nullable<Timestamp>,
        reason -> Nullable<Text>,
    }
}

diesel::joinable!(hall_keys -> halls (hall_id));
diesel::joinable!(device_key_requests -> halls (hall_id));
diesel::joinable!(users -> halls (hall_id));
diesel::allow_tables_to_appear_in_same_query!(
    provinces,
    halls,
    hall_keys,
    device_key_requests,
    users,
    subscribers,
    work_orders,
    verification_results,
    reference_counters,
    audit_events,
    audit_queue,
    audit_head,
    audit_tree_nodes,
    audit_checkpoints,
    audit_checkpoint_notes,
    audit_cosignatures,
    audit_witness_lease,
    service_keys,
    service_secrets,
    evidence_files,
    audit_msisdn,
    token_keys,
    login_throttle,
    data_keys,
    idempotency_keys,
);
